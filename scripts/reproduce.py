#!/usr/bin/env python
"""Run an experiment set of the paper (or one of its controls) as run directories.

    python scripts/reproduce.py fig1 --tasks CartpoleSwingup,CheetahRun --seeds 5 \\
        --total_steps 1000000 --out RUNS [--profile NAME] [--num_envs 64 ...]
    python scripts/reproduce.py fig1 ... --out RUNS --cluster ray[=ADDRESS] [--cpus_per_run 1]
    python scripts/plot.py RUNS --out FIGS

The sets, their variants and the skip / resume / reuse rules: `mjx_cikd/experiments/plan.py`.
Every Config field below may be passed as a flag, except the ones a set varies itself (e.g.
--teacher in the teacher set); env, algo, ensemble_size, widths and extra_updates are every set's
own, and --out / --seeds replace run_dir / num_seeds. Re-running the same command continues where
it stopped. Bad set names and bad flags print one line and exit with status 2. With --cluster,
each run is a Ray task (`mjx_cikd/experiments/cluster.py`, docs/cluster.md); runs that failed
there are named and the status is 1.
"""

from __future__ import annotations

import functools
import pathlib
import sys

from mjx_cikd import config as config_lib
from mjx_cikd.config import ConfigError
from mjx_cikd.experiments import cluster
from mjx_cikd.experiments import plan as experiments

TASKS = ",".join(experiments.PAPER_TASKS)
RERUN = "it is train.py's; re-run the same reproduce command to continue its runs"
# what reproduce.py does not take (left out of its parser and --help), and what to use instead
INSTEAD = {**{f"--{name}": f"use {flag}" for name, flag in experiments.REPLACED.items()},
           **{f"--{name}": "every experiment set defines it" for name in experiments.SET_FIELDS},
           **{flag: RERUN for flag in config_lib.TRAIN_FLAGS}}


def _add_args(parser) -> None:
    sets = "\n".join(f"  {name}: {s.title}" for name, s in experiments.SETS.items())
    parser.add_argument("set", choices=list(experiments.SETS), metavar="SET",
                        help=f"the experiment set:\n{sets}")
    parser.add_argument("--tasks", default=TASKS, help=f"comma-separated tasks (default: {TASKS})")
    parser.add_argument("--seeds", default=str(experiments.DEFAULT_SEEDS),
                        help=f"seeds per run, side by side (default {experiments.DEFAULT_SEEDS})")
    parser.add_argument("--out", default="runs/reproduce", help="root of the run directories")
    parser.add_argument("--variants", metavar="NAMES",
                        help="comma-separated variants to run, by their directory names (e.g. "
                             "SAC-CIKD_eval_argmax; default: all of the set's, in its order)")
    parser.add_argument("--no_reuse", action="store_true",
                        help="train every run even if an identical finished run exists")
    parser.add_argument("--cluster", metavar="ray[=ADDRESS]",
                        help="one Ray task per run: on a Ray instance started here (ray), or on "
                             "the cluster at ADDRESS (ray=HOST:6379, ray=auto); docs/cluster.md")
    parser.add_argument("--cpus_per_run", help="CPUs each run's Ray task asks for (default 1)")


def main(argv: list[str] | None = None) -> int:
    try:
        flags, profile, args = config_lib.parse_flags(argv, _add_args, description=__doc__,
                                                      train_flags=False, instead=INSTEAD)
        profile = config_lib.shadowed(profile, flags)  # flags override the profile, as train.py
        spec = cluster.parse(args.cluster, args.cpus_per_run)
        out = pathlib.Path(args.out)
        plan = functools.partial(  # absolute on a cluster: a worker's working dir is not ours
            experiments.plan, args.set, [t.strip() for t in args.tasks.split(",") if t.strip()],
            config_lib.coerce("seeds", args.seeds, int), out.absolute() if spec else out, flags,
            profile or None, reuse=not args.no_reuse,
            variants=None if args.variants is None else
            [v.strip() for v in args.variants.split(",") if v.strip()])
        if spec:
            planned, failed = cluster.run(spec, plan)
        else:
            planned, failed = plan(), []
            for i, p in enumerate(planned, 1):
                experiments.execute(p, i, len(planned))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if failed:
        print(f"error: {cluster.failure_line(failed, len(planned))}", file=sys.stderr)
        return 1
    print(f"[reproduce] {args.set}: {len(planned)} run(s) under {pathlib.Path(args.out) / args.set}"
          f"; plot with: python scripts/plot.py {args.out} --out FIGS", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
