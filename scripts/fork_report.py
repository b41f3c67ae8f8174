"""Issue 30's stage 1 report: the students' paired gains by arm and horizon, with 95% intervals.

    python scripts/fork_report.py runs/forks-100k runs/forks-200k --out docs/figures/forks

Reads each OUT/forks.jsonl that `scripts/forks.py` wrote; writes DEST/forks.md and
DEST/forks.png. What is computed: mjx_cikd/experiments/fork_report.py.
"""

import argparse

from mjx_cikd.experiments import fork_report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outs", nargs="+", help="the forks' --out directories, one per fork point")
    parser.add_argument("--out", required=True, help="where forks.md and forks.png go")
    parser.add_argument("--name", default="forks", help="the files' stem")
    args = parser.parse_args(argv)
    for path in fork_report.report(args.outs, args.out, args.name):
        print(path)


if __name__ == "__main__":
    main()
