"""The study of issue 29: does Vanilla-SAC learn at thousands of envs, and with which update budget
and which parts of the massively parallel recipe (the choice of `profiles/parallel.toml`).

Every arm is a `bench.baseline.System`: one seed per process, Brax's SAC among them at the same N
with its batch and updates scaled by our rule (`scripts/brax_sac.py --num_envs`), the systems of
a seed run one after another so that all see the same machine, a finished run skipped on a re-run
(`baseline.run`); the report is `baseline.report`'s (final returns with bootstrap intervals, IQM,
env steps and wall-clock to each threshold, each arm's probability of improvement over Brax at
its N). The plan, its costs and its rules were written before any result: docs/results.md,
"Thousands of envs (issue 29): the plan".

The arms at N envs (B: batch, U: updates of it per vector step; the replay ratio U * B / N):
  old      B = 512, U = 8: the defaults before the budget followed N (ratio 32 * 128 / N)
  batch    the derivation shipped when the study began: the ratio of 32 kept by the batch first
           (up to 2,048), then U
  updates  the ratio kept by U at B = 512 (the updates per env step of 128 envs)
  recipe   `batch` with every part of the recipe (RECIPE)
  brax     Brax's SAC in Playground's config, B and U as `batch`
  recipe-<part>   the recipe less one part; ensemble, cikd: K = 3 at the shipped budget

Every stage writes under one root, so an arm an earlier stage ran (same task, N and seed) is not
run again. `decide` applies the plan's rules 2-4 to what has finished: which arms learn, the
budget, whether the recipe enters `parallel` and which of its parts stay.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from mjx_cikd.bench import baseline
from mjx_cikd.bench.baseline import System
from mjx_cikd.experiments import stats
from mjx_cikd.experiments.decision import LEVEL, WINS, outcome
from mjx_cikd.experiments.stats import fmt

# issue 29's bar (every seed's best evaluation at least 600 on CartpoleSwingup) beside issue 21's
THRESHOLDS = {"CartpoleSwingup": (200.0, 600.0, 700.0), "ReacherEasy": (700.0,)}
BARS = {"CartpoleSwingup": 600.0, "ReacherEasy": 700.0}  # rule 2: every seed's best reaches it
# a multiple of 128, 512 and 2048: every arm evaluates at a log point, on one grid
EVAL_EVERY = 100_352
# FastTD3's and FastSAC's parts, each a flag (README); the per-env scale multiplies the policy's
# std (PQL draws its noise from U[0.05, 0.8], FastTD3 from U[0.001, 0.4], both as absolute
# stds of a deterministic policy; a multiplier around 1 keeps SAC's own entropy-tuned scale)
RECIPE = ("--n_step", "3", "--critic_atoms", "101", "--twin_q", "mean", "--policy_delay", "2",
          "--explore_std_min", "0.5", "--explore_std_max", "2", "--weight_decay", "1e-3")
PARTS = {"n-step": ("--n_step",), "C51": ("--critic_atoms",), "twin mean": ("--twin_q",),
         "policy delay": ("--policy_delay",),
         "per-env scale": ("--explore_std_min", "--explore_std_max"),
         "AdamW": ("--weight_decay",)}


def without(recipe: tuple[str, ...], flags: tuple[str, ...]) -> tuple[str, ...]:
    """`recipe` less the flags named (each flag with its value)."""
    pairs = list(zip(recipe[::2], recipe[1::2]))
    return tuple(x for flag, value in pairs if flag not in flags for x in (flag, value))


def arms(n: int) -> dict[str, System]:
    """The study's arms at N = `n`, by short name."""
    def arm(short: str, name: str, argv: tuple[str, ...] = ()) -> System:
        return System(f"{name} (N={n})", f"{short}-n{n}", argv, num_envs=n, eval_every=EVAL_EVERY)

    # the ratio kept by the batch, up to 2,048 (the derivation shipped when the study began),
    # spelled out so that these arms stay what they ran whatever the study makes the default
    by_batch = ("--batch_size", str(max(512, min(2048, 512 * n // 128))))
    return {
        "old": arm("old", "Vanilla-SAC, B 512 U 8", ("--batch_size", "512",
                                                     "--updates_per_step", "8")),
        "batch": arm("batch", "Vanilla-SAC, ratio kept by B", by_batch),
        "updates": arm("updates", "Vanilla-SAC, ratio kept by U", ("--batch_size", "512")),
        "recipe": arm("recipe", "Vanilla-SAC, recipe", by_batch + RECIPE),
        "brax": arm("brax", "Brax SAC, ratio kept by B", by_batch),
        # K = 3 at the shipped budget, whatever the screen made it (and the recipe's flags, if it
        # chose them)
        "ensemble": arm("ensemble", "Ensemble-SAC (K=3), shipped budget", ("--algo", "ensemble")),
        "cikd": arm("cikd", "SAC-CIKD (K=3), shipped budget", ("--algo", "cikd")),
        **{f"recipe-{part}": arm(f"recipe-no-{part.replace(' ', '-')}",
                                 f"Vanilla-SAC, recipe less {part}", by_batch + without(RECIPE,
                                                                                       flags))
           for part, flags in PARTS.items()},
    }


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of the plan: tasks at their budgets, N, the arms run at each N."""

    question: str
    budgets: dict  # task -> env steps
    envs: tuple[int, ...]
    arms: tuple[str, ...]
    seeds: int = 3

    def systems(self, chosen: tuple[str, ...] | None = None) -> tuple[System, ...]:
        """The stage's arms (or `chosen` ones) at each of its N."""
        return tuple(arms(n)[a] for n in self.envs for a in chosen or self.arms)


STAGES = {
    "screen": Stage("Which update budget lets 2048 envs learn, and does the recipe add to it?",
                    {"CartpoleSwingup": 1_000_000}, (2048,),
                    ("brax", "old", "batch", "updates", "recipe")),
    "across": Stage("Does the choice hold at 128 and 512 envs and on a second task?",
                    {"CartpoleSwingup": 1_000_000, "ReacherEasy": 300_000}, (128, 512, 2048),
                    ("brax", "updates")),  # `updates`: the screen's choice by rule 3
    "k3": Stage("Do Ensemble-SAC and SAC-CIKD (K = 3) learn at 2048 envs with the chosen profile?",
                {"CartpoleSwingup": 1_000_000}, (2048,), ("ensemble", "cikd")),
    "ablate": Stage("Which parts of the recipe carry it (run only if the recipe wins the screen)?",
                    {"CartpoleSwingup": 1_000_000}, (2048,),
                    tuple(f"recipe-{p}" for p in PARTS)),
}


# --------------------------------------------------------------------------------------
# the plan's rules 2-4 applied to the records (docs/results.md), so that the choice of the
# `parallel` profile is the program's and not the reader's


def _beats(x: np.ndarray, y: np.ndarray) -> tuple[str, str]:
    """Rule 1 on final returns [S]: (verdict of X over Y, "P = p [low, high]")."""
    p, low, high = stats.improvement_ci({"x": (x[:, None], y[:, None])})["x"]
    return outcome(low, high), f"P = {fmt(p)} [{fmt(low)}, {fmt(high)}]"


def decide(root: pathlib.Path, task: str = "CartpoleSwingup", n: int = 2048) -> list[str]:
    """Rules 2-4 at N = `n` on `task` from the finished runs under `root`: which arms learn, the
    budget (`batch` unless `updates` beats it), whether the recipe enters (only if it beats the
    chosen budget) and which of its parts stay (only those whose removal loses to the whole
    recipe). A rule whose arms have not all finished says what it waits for."""
    by_name = arms(n)
    runs = baseline.collect(root, (task,), tuple(by_name.values()))
    seeds = {name: runs[task, s.slug] for name, s in by_name.items() if (task, s.slug) in runs}
    final = {name: np.array([s.returns[-1] for s in v]) for name, v in seeds.items()}
    bar = BARS[task]
    lines = [f"Rule 2 ({task}, N = {n}; learns: every seed's best evaluation >= {bar:.0f}):"]
    for name, v in seeds.items():
        best = [float(s.returns.max()) for s in v]
        lines.append(f"- {by_name[name].name}: best {', '.join(fmt(b) for b in best)} -> "
                     f"{'learns' if min(best) >= bar else 'does not learn'}")
    if not {"batch", "updates"} <= final.keys():
        return lines + ["Rule 3 waits for the `batch` and `updates` arms."]
    verdict, p = _beats(final["updates"], final["batch"])
    budget = "updates" if verdict == WINS else "batch"
    lines.append(f"Rule 3: `updates` over `batch`, {p}: {verdict} -> the budget is `{budget}`"
                 + (" (the batch cap drops to 512, U carries the ratio)" if budget == "updates"
                    else " (shipped)"))
    if "recipe" not in final:
        return lines + ["Rule 4 waits for the `recipe` arm."]
    verdict, p = _beats(final["recipe"], final[budget])
    lines.append(f"Rule 4: `recipe` over `{budget}`, {p}: {verdict} -> "
                 + ("the recipe enters `parallel`; `ablate` runs" if verdict == WINS
                    else "the recipe stays out of `parallel`; `ablate` does not run"))
    if verdict != WINS:
        return lines
    for part in PARTS:
        name = f"recipe-{part}"
        if name not in final:
            lines.append(f"- {part}: waits for the `{name}` arm")
            continue
        verdict, p = _beats(final["recipe"], final[name])
        lines.append(f"- {part}: the recipe over the recipe less it, {p}: {verdict} -> "
                     + ("stays" if verdict == WINS else "goes" if verdict == LEVEL else
                        "goes (the recipe is worse with it)"))
    return lines
