"""Vanilla-SAC against Brax's SAC in Playground's config, 5 seeds, three tasks (issue 21).

    python scripts/baseline_study.py run OUT       # train what is missing (re-run to resume)
    python scripts/baseline_study.py report OUT --out FIGS   # FIGS/baseline.md, baseline.png

The plan, the systems and what differs between them: mjx_cikd/bench/baseline.py.
"""

import argparse
import pathlib

from mjx_cikd.bench import baseline


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("root", type=pathlib.Path, help="the study's run directories")
    parser.add_argument("--tasks", default=",".join(baseline.TASKS))
    parser.add_argument("--seeds", type=int, default=baseline.SEEDS)
    parser.add_argument("--total_steps", type=int, default=baseline.TOTAL_STEPS)
    parser.add_argument("--systems", default=",".join(s.slug for s in baseline.SYSTEMS))
    parser.add_argument("--out", type=pathlib.Path, help="report: where the table and figure go")
    args = parser.parse_args(argv)
    tasks = tuple(t for t in args.tasks.split(",") if t)
    systems = tuple(s for s in baseline.SYSTEMS if s.slug in args.systems.split(","))
    if args.command == "run":
        baseline.run(args.root, tasks, args.seeds, args.total_steps, systems)
    else:
        baseline.report(args.root, args.out or args.root, tasks, systems)


if __name__ == "__main__":
    main()
