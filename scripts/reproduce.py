#!/usr/bin/env python
"""Run the paper's experiment sets (CIKD, sections 5.2-5.5) as named sets of run directories.

    python scripts/reproduce.py fig1 --tasks CartpoleSwingup,CheetahRun --seeds 5 \\
        --total_steps 1000000 --out RUNS [--profile NAME] [--num_envs 64 ...]
    python scripts/plot.py RUNS --out FIGS

Sets (the variant names are the paper's legends):
  fig1  inter-agent distillation (5.2): Vanilla-SAC (algo sac), Ensemble-SAC (algo ensemble, K=3),
        SAC-CIKD (algo cikd, K=3)
  fig2  distillation vs extra updates (5.3): Vanilla-SAC (extra), Ensemble-SAC (extra) (the same
        D gradient steps on batches of B_d as a distillation phase, as SAC updates), SAC-CIKD
  fig3  ensemble size (5.4): SAC-CIKD with K = 2, 3, 5
  fig4  simple and complex networks (5.5): Vanilla-SAC (256), Vanilla-SAC (1024), and two-member
        ensembles of widths 256 and 1024: Ensemble-SAC (256/1024), SAC-CIKD (256/1024)

Each (set, task, variant) is one run directory RUNS/<set>/<task>/<variant-slug>/, trained
in-process by `mjx_cikd.run.train` with `num_seeds` = --seeds seeds side by side (seed s uses
key(seed + s)). Next to the run's own config.json and metrics.jsonl, `variant.json` names the set,
task and variant (human-readable, in the paper's order) for `scripts/plot.py`.

Tasks. The paper uses the Gym-MuJoCo tasks of the original SAC paper (Hopper, Walker2d,
HalfCheetah, Ant, Humanoid, and rllab's Humanoid) plus two more that its text does not name
(7 in all: "Ensemble-SAC only outperforms Vanilla-SAC in 4 out of 7 tasks"). MJX has the Gym
ones through Brax, so the default --tasks is the five of them that exist there:
halfcheetah, hopper, walker2d, ant, humanoid. rllab's Humanoid has no MJX port, and the two
unnamed tasks cannot be identified from the text; pass any task of `mjx_cikd.envs` (Brax names,
MuJoCo Playground DM Control names such as CheetahRun, or the probe tasks) with --tasks.

Defaults are the paper's: 5 seeds, 1M env steps, with the Config defaults otherwise (64 envs,
evaluation at every log point); `--profile paper` gives the paper's exact single-env SAC
setting (evaluation of 20 episodes every 10k steps). Every other Config field may be passed
through as a flag (`--num_envs 2048 --profile parallel`); the fields the sets define (env, algo,
ensemble_size, widths, extra_updates, and hidden_width in fig4) and run_dir/num_seeds (use --out
and --seeds) are refused.

Re-running the same command continues where it stopped: a finished run directory with the same
config is skipped, an unfinished one resumes from its checkpoint (or restarts if it has none), and
a directory holding a different config is an error. A variant whose config is identical to a
finished run of another set (SAC-CIKD K=3 appears in fig1, fig2 and fig3) copies that run's
metrics instead of training again (variant.json records `reused_from`); --no_reuse disables this.

Bad set names and bad flags print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import re
import shutil
import sys

# replace scripts/ (sys.path[0]) with the repo root: scripts/profile.py must not shadow the
# standard library's `profile`, which warp imports through cProfile
sys.path[0] = str(pathlib.Path(__file__).resolve().parent.parent)

from mjx_cikd import config as config_lib  # noqa: E402
from mjx_cikd.config import Config, ConfigError  # noqa: E402

PAPER_TASKS = ("halfcheetah", "hopper", "walker2d", "ant", "humanoid")
DEFAULT_SEEDS = 5
DEFAULT_TOTAL_STEPS = 1_000_000


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str  # the paper's legend
    values: dict  # Config fields this variant sets

    @property
    def slug(self) -> str:
        """A directory name: the legend without spaces or brackets."""
        return re.sub(r"[^A-Za-z0-9.=+-]+", "_", self.name).strip("_")


def _sac(**extra) -> dict:
    return dict(algo="sac", ensemble_size=1, widths=(), extra_updates=False) | extra


def _ensemble(k: int = 3, **extra) -> dict:
    return dict(algo="ensemble", ensemble_size=k, widths=(), extra_updates=False) | extra


def _cikd(k: int = 3, **extra) -> dict:
    return dict(algo="cikd", ensemble_size=k, widths=(), extra_updates=False) | extra


@dataclasses.dataclass(frozen=True)
class ExperimentSet:
    title: str
    curves: str  # what plot.py draws: best | best+worst | members
    variants: tuple[Variant, ...]
    fixed: tuple[str, ...] = ()  # further Config fields the set defines (refused as flags)


SETS: dict[str, ExperimentSet] = {
    "fig1": ExperimentSet(
        "Performance of inter-agent knowledge distillation (paper Fig. 1)", "best+worst", (
            Variant("Vanilla-SAC", _sac()),
            Variant("Ensemble-SAC", _ensemble(3)),
            Variant("SAC-CIKD", _cikd(3)))),
    "fig2": ExperimentSet(
        "Knowledge distillation vs extra policy updates (paper Fig. 2)", "best", (
            Variant("Vanilla-SAC (extra)", _sac(extra_updates=True)),
            Variant("Ensemble-SAC (extra)", _ensemble(3, extra_updates=True)),
            Variant("SAC-CIKD", _cikd(3)))),
    "fig3": ExperimentSet(
        "Ensemble size (paper Fig. 3)", "best", (
            Variant("SAC-CIKD (K=2)", _cikd(2)),
            Variant("SAC-CIKD (K=3)", _cikd(3)),
            Variant("SAC-CIKD (K=5)", _cikd(5)))),
    "fig4": ExperimentSet(
        "Simple and complex networks, mean return of each member (paper Fig. 4)", "members", (
            Variant("Vanilla-SAC (256)", _sac(hidden_width=256)),
            Variant("Vanilla-SAC (1024)", _sac(hidden_width=1024)),
            Variant("Ensemble-SAC (256/1024)", _ensemble(2, widths=(256, 1024))),
            Variant("SAC-CIKD (256/1024)", _cikd(2, widths=(256, 1024)))),
        fixed=("hidden_width",)),
}

# Config fields every set defines itself, and the ones --out / --seeds replace.
SET_FIELDS = ("env", "algo", "ensemble_size", "widths", "extra_updates")
REPLACED = {"run_dir": "--out", "num_seeds": "--seeds"}
# Fields that may differ between an existing run directory and the planned run without making
# it a different experiment (total_steps: a longer run resumes the shorter one).
IGNORED = ("run_dir", "progress", "tensorboard", "compile_cache", "checkpoint_every",
           "total_steps")


def member_labels(variant: Variant, config: Config) -> list[str]:
    """Curve labels for each member (fig4 plots them): the paper's '(member) X (width)'."""
    widths = config.member_widths
    if config.ensemble_size == 1:
        return [variant.name]
    base = variant.name.split(" (")[0]
    return [f"(member) {base} ({w})" for w in widths]


@dataclasses.dataclass
class Planned:
    set_name: str
    task: str
    order: int
    variant: Variant
    config: Config
    run_dir: pathlib.Path
    task_order: int = 0  # position in --tasks: the panel order of plot.py
    action: str = "train"  # train | resume | restart | skip | reuse
    source: pathlib.Path | None = None  # for reuse


def _add_args(parser) -> None:
    parser.add_argument("set", choices=sorted(SETS), help="experiment set")
    parser.add_argument("--tasks", default=",".join(PAPER_TASKS),
                        help=f"comma-separated tasks (default: {','.join(PAPER_TASKS)})")
    parser.add_argument("--seeds", default=str(DEFAULT_SEEDS),
                        help=f"seeds per run, side by side (default {DEFAULT_SEEDS})")
    parser.add_argument("--out", default="runs/reproduce", help="root of the run directories")
    parser.add_argument("--no_reuse", action="store_true",
                        help="train every run even if an identical finished run exists")


# Distillation fields a run that does not distil never reads: a finished baseline stays the same
# experiment when only they change ("(extra)" runs read all but the distillation's own lr).
DISTILL_FIELDS = ("distill_interval", "distill_warmup", "distill_steps", "distill_batch_size",
                  "distill_lr")


def _comparable(config_dict: dict) -> dict:
    unread = () if config_dict.get("algo") == "cikd" else (
        ("distill_lr",) if config_dict.get("extra_updates") else DISTILL_FIELDS)
    return {k: v for k, v in config_dict.items() if k not in IGNORED + unread}


def _json_roundtrip(config: Config) -> dict:
    return json.loads(json.dumps(config.to_dict()))


def finished_steps(run_dir: pathlib.Path) -> int | None:
    """Env steps of the run's last `run`/`end` record, or None if it never finished."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    steps = None
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("event") == "run" and row.get("phase") == "end":
            steps = row.get("env_steps")
    return steps


def _target_steps(config: Config) -> int:
    return config.total_iters * config.num_envs


def plan(argv: list[str] | None) -> tuple[list[Planned], argparse.Namespace]:
    args = config_lib.build_parser(_add_args).parse_args(argv)
    types = config_lib.field_types()
    given = {k: config_lib.coerce(k, getattr(args, k), types[k])
             for k in types if getattr(args, k) is not None}
    exp = SETS[args.set]
    if args.resume:
        raise ConfigError("--resume is not used here: re-run the same reproduce command to "
                          "continue its runs")
    for name in SET_FIELDS + exp.fixed:
        if name in given:
            raise ConfigError(f"--{name} is defined by the experiment set {args.set}; it "
                              f"cannot be passed to reproduce.py")
    for name, instead in REPLACED.items():
        if name in given:
            raise ConfigError(f"--{name} is not used by reproduce.py; use {instead}")
    seeds = config_lib.coerce("seeds", args.seeds, int)
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise ConfigError("--tasks is empty")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"--tasks lists a task twice: {args.tasks}")
    base = dict(total_steps=DEFAULT_TOTAL_STEPS)
    base.update(config_lib.load_profile(args.profile) if args.profile else {})
    base.update(given, num_seeds=seeds)

    from mjx_cikd import envs

    out = pathlib.Path(args.out)
    planned = []
    for task_order, task in enumerate(tasks):
        for order, variant in enumerate(exp.variants):
            run_dir = out / args.set / task / variant.slug
            values = dict(base, **variant.values, env=task, run_dir=str(run_dir))
            try:
                config = config_lib.resolve(values)
            except ConfigError as err:
                raise ConfigError(f"{args.set}/{task}/{variant.name}: {err}") from None
            envs.resolve_impl(task, config.impl)
            planned.append(Planned(args.set, task, order, variant, config, run_dir, task_order))
    for p in planned:
        _decide(p, out, reuse=not args.no_reuse)
    return planned, args



def _decide(p: Planned, out: pathlib.Path, reuse: bool) -> None:
    """What to do with one planned run, given what is already on disk."""
    saved = p.run_dir / "config.json"
    want = _comparable(_json_roundtrip(p.config))
    if saved.is_file():
        have = _comparable(json.loads(saved.read_text()))
        if have != want:
            diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            raise ConfigError(f"{p.run_dir} holds a run with a different config ({', '.join(diff)}"
                              f"); use another --out or remove it")
        done = finished_steps(p.run_dir)
        if done is not None and done >= _target_steps(p.config):
            p.action = "skip"
            return
        if _has_checkpoint(p.run_dir) and not _reused_from(p.run_dir):
            p.action = "resume"
            return
        p.action = "restart"  # nothing to resume from (or a copy that is too short)
    elif (p.run_dir / "metrics.jsonl").exists():
        p.action = "restart"
    if reuse:
        for other in sorted(out.glob(f"*/{p.task}/*/config.json")):
            run_dir = other.parent
            if run_dir == p.run_dir or _reused_from(run_dir):
                continue
            if _comparable(json.loads(other.read_text())) == want and \
                    finished_steps(run_dir) == _target_steps(p.config):
                p.action, p.source = "reuse", run_dir
                return


def _has_checkpoint(run_dir: pathlib.Path) -> bool:
    try:
        from mjx_cikd import checkpoint
    except ImportError:  # a tree without checkpoints: unfinished runs start over
        return False
    return checkpoint.exists(run_dir)


def _reused_from(run_dir: pathlib.Path) -> str | None:
    meta = run_dir / "variant.json"
    return json.loads(meta.read_text()).get("reused_from") if meta.is_file() else None


def write_variant(p: Planned, **extra) -> None:
    meta = dict(set=p.set_name, set_title=SETS[p.set_name].title, curves=SETS[p.set_name].curves,
                task=p.task, task_order=p.task_order, variant=p.variant.name, order=p.order,
                baseline=p.config.algo != "cikd", algo=p.config.algo,
                ensemble_size=p.config.ensemble_size, widths=list(p.config.member_widths),
                member_labels=member_labels(p.variant, p.config), seeds=p.config.num_seeds,
                **extra)
    p.run_dir.mkdir(parents=True, exist_ok=True)
    (p.run_dir / "variant.json").write_text(json.dumps(meta, indent=2) + "\n")


def execute(p: Planned, index: int, total: int) -> None:
    say = lambda msg: print(f"[reproduce {index}/{total}] {p.set_name}/{p.task}/"  # noqa: E731
                            f"{p.variant.name}: {msg}", file=sys.stderr, flush=True)
    if p.action == "skip":
        say(f"finished already in {p.run_dir}, skipped")
        source = _reused_from(p.run_dir)
        write_variant(p, **({"reused_from": source} if source else {}))
        return
    if p.action in ("restart", "reuse"):  # what an unfinished, unresumable run left behind
        for name in ("metrics.jsonl", "tb", "checkpoint"):
            target = p.run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if p.action == "reuse":
        say(f"identical to the finished run {p.source}, its metrics copied")
        p.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p.source / "metrics.jsonl", p.run_dir / "metrics.jsonl")
        config_dict = p.config.to_dict()
        (p.run_dir / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
        write_variant(p, reused_from=str(p.source))
        return
    write_variant(p)
    say(("resuming" if p.action == "resume" else "training") + f" into {p.run_dir}")
    import jax

    from mjx_cikd.run import train

    if p.action == "resume":
        train(p.config, p.run_dir, resume=True)
    else:
        train(p.config, p.run_dir)
    jax.clear_caches()  # the next variant compiles its own programs


def main(argv: list[str] | None = None) -> int:
    try:
        planned, args = plan(argv)
        for i, p in enumerate(planned, 1):
            execute(p, i, len(planned))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    print(f"[reproduce] {args.set}: {len(planned)} run(s) under {out / args.set}; plot with: "
          f"python scripts/plot.py {out} --out FIGS", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
