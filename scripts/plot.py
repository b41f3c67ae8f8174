#!/usr/bin/env python
"""Plot run directories like the paper's figures, and tabulate final returns and sample efficiency.

    python scripts/plot.py RUNS --out FIGS [--threshold 300 | --threshold TASK=300,TASK2=2000]

Finds every run directory under RUNS (a directory holding metrics.jsonl, at any depth), groups them
by experiment set and task, and writes per set FIGS/<set>.png (learning curves with 95% bootstrap
CIs), FIGS/<set>-iqm.png and FIGS/<set>-profile.png (rliable's IQM and performance profiles of the
final returns), FIGS/<set>.md (final returns, steps to a threshold, rliable's IQM and probability
of improvement, the election audit) and, for runs that audited their elections,
FIGS/<set>-election.png. What each holds: `mjx_cikd/experiments/analysis.py`.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from mjx_cikd.experiments import analysis


def _threshold(text: str) -> float | dict[str, float]:
    """One return for every task, or TASK=RETURN pairs separated by commas."""
    if "=" not in text:
        return float(text)
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {task.strip(): float(value) for task, value in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", help="root directory of the run directories")
    parser.add_argument("--out", default="figs", help="where the PNGs and tables go")
    parser.add_argument("--threshold", type=_threshold, default=None,
                        help="the return the steps-to-threshold column counts to: one number, or "
                             "TASK=RETURN,... (default: the best baseline's final return)")
    args = parser.parse_args(argv)
    root = pathlib.Path(args.runs)
    if not root.is_dir():
        print(f"error: {root} is not a directory", file=sys.stderr)
        return 2
    runs = analysis.find_runs(root)
    if not runs:
        print(f"error: no run directory with evaluations under {root}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for set_name, group in analysis.by_set(runs).items():
        paths = analysis.report_set(set_name, group, out, args.threshold)
        print(f"[plot] {set_name}: {len(group)} run(s) -> {', '.join(map(str, paths))}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
