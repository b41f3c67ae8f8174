"""Issue 29's study: Vanilla-SAC at 128-2048 envs, its update budgets and the recipe, against
Brax's SAC at the same N.

    python scripts/scaling_study.py run screen OUT     # train what is missing (re-run to resume)
    python scripts/scaling_study.py report screen OUT --out FIGS   # FIGS/screen-<task>.md, .png

The stages, arms and what differs between them: mjx_cikd/experiments/scaling.py; the plan and
its rules: docs/results.md.
"""

import argparse
import pathlib

from mjx_cikd.bench import baseline
from mjx_cikd.experiments import scaling


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("stage", choices=list(scaling.STAGES))
    parser.add_argument("root", type=pathlib.Path, help="the study's run directories")
    parser.add_argument("--seeds", type=int, help="seeds per arm (default: the stage's)")
    parser.add_argument("--arms", help="comma-separated arm names (default: the stage's), e.g. "
                                       "the screen's choice for the `across` stage")
    parser.add_argument("--out", type=pathlib.Path, help="report: where tables and figures go")
    args = parser.parse_args(argv)
    stage = scaling.STAGES[args.stage]
    chosen = tuple(args.arms.split(",")) if args.arms else stage.arms
    unknown = set(chosen) - set(scaling.arms(128))
    if unknown:
        parser.error(f"unknown arms {sorted(unknown)}; known: {', '.join(scaling.arms(128))}")
    systems = stage.systems(chosen)
    for task, steps in stage.budgets.items():
        if args.command == "run":
            baseline.run(args.root, (task,), args.seeds or stage.seeds, steps, systems)
        else:
            paths = baseline.report(args.root, args.out or args.root, (task,), systems,
                                    steps, name=f"{args.stage}-{task}",
                                    thresholds=scaling.THRESHOLDS)
            if task in scaling.BARS:  # the plan's rules, applied to what has finished
                rules = scaling.decide(args.root, task)
                with paths[0].open("a") as f:
                    f.write("\n" + "\n".join(rules) + "\n")
                print("\n".join(rules))
            for path in paths:
                print(path)


if __name__ == "__main__":
    main()
