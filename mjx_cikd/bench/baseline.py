"""Vanilla-SAC against Brax's SAC in MuJoCo Playground's tuned config, seed for seed (issue 21).

Every (task, system, seed) is one process and one run directory OUT/<task>/<system>/seed<k>/:
Brax's trainer through `scripts/brax_sac.py`, ours through `scripts/train.py`. The runs of a seed
alternate between the systems, so that both see the same machine; each is one seed in one process,
compile included, with no persistent compilation cache on either side, and both evaluate
`EVAL_EPISODES` deterministic episodes every `EVAL_EVERY` env steps. A finished run (its end
record written) is skipped, an unfinished one is started again: re-running resumes the study.

What differs between `--profile playground` and Brax's trainer in Playground's config (the loop
cannot express these, or we chose otherwise):

| | Brax + Playground | ours (`--profile playground`) |
|---|---|---|
| training restarts | each env slot restarts from its first state (`wrap_for_brax_training`, `full_reset=False`) | a fresh random start every episode |
| time limit | the truncated transition is masked out of the critic loss | bootstrapped through (a truncation is not a termination) |
| replay warm-up | 8,192 steps of the initial policy | 8,192 steps of uniform random actions |
| temperature loss | on alpha, `alpha * (-log pi - H)` | on log alpha (Haarnoja et al. Eq. 18) |
| policy scale | softplus(x) + 0.001 | log std squashed smoothly into [-5, 2] |
| initialisation | LeCun uniform | LeCun normal (flax's default) |
| updates per env step | 8 per 128-env step: 1/16 | 8 per 128-env step: 1/16 |
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

from mjx_cikd.experiments import stats

TASKS = ("CartpoleSwingup", "ReacherEasy", "BallInCup")
SEEDS = 5
TOTAL_STEPS = 200_000
EVAL_EVERY = 10_000
EVAL_EPISODES = 10
REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class System:
    name: str  # the legend
    slug: str  # the directory
    argv: tuple[str, ...]  # the command's own flags (task, seed, steps and out are added)

    def command(self, task: str, seed: int, total_steps: int, out: pathlib.Path) -> list[str]:
        if self.slug == "brax":
            return [sys.executable, str(REPO / "scripts" / "brax_sac.py"), "--env", task,
                    "--seed", str(seed), "--total_steps", str(total_steps), "--eval_every",
                    str(EVAL_EVERY), "--eval_episodes", str(EVAL_EPISODES), "--out", str(out)]
        return [sys.executable, str(REPO / "scripts" / "train.py"), *self.argv, "--algo", "sac",
                "--impl", "jax", "--env", task, "--seed", str(seed), "--total_steps",
                str(total_steps), "--log_every", str(EVAL_EVERY), "--eval_episodes",
                str(EVAL_EPISODES), "--run_dir", str(out), "--compile_cache", "",
                "--checkpoint_every", "0", "--checkpoint_buffer", "false", "--tensorboard",
                "false", "--progress", "false"]


SYSTEMS = (
    System("Brax SAC (Playground config)", "brax", ()),
    System("Vanilla-SAC (--profile playground)", "ours-playground", ("--profile", "playground")),
    System("Vanilla-SAC (old defaults)", "ours-old", ()),
)


def finished(run_dir: pathlib.Path) -> bool:
    path = run_dir / "metrics.jsonl"
    return path.is_file() and any('"phase": "end"' in line for line in path.open())


def run(out: pathlib.Path, tasks=TASKS, seeds=SEEDS, total_steps=TOTAL_STEPS,
        systems=SYSTEMS) -> None:
    """Train every (task, seed, system) not yet finished, seed by seed, the systems alternating."""
    for task in tasks:
        for seed in range(seeds):
            for system in systems:
                run_dir = out / task / system.slug / f"seed{seed}"
                if finished(run_dir):
                    continue
                if run_dir.exists():
                    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                print(f"[baseline] {task} {system.slug} seed {seed}", flush=True)
                t0 = time.perf_counter()
                with open(run_dir.parent / f"seed{seed}.log", "w") as log:
                    proc = subprocess.run(system.command(task, seed, total_steps, run_dir),
                                          stdout=log, stderr=subprocess.STDOUT,
                                          env=dict(os.environ, PYTHONUNBUFFERED="1"))
                if proc.returncode:
                    raise SystemExit(f"[baseline] {run_dir} failed ({proc.returncode}); see "
                                     f"{run_dir.parent / f'seed{seed}.log'}")
                subprocess.run(["rm", "-rf", str(run_dir / "checkpoints")], check=True)
                print(f"[baseline]   done in {time.perf_counter() - t0:.0f}s", flush=True)
