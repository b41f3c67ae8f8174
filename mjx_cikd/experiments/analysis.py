"""Everything scripts/plot.py writes for one experiment set, from its run directories.

Per set, under the output directory:
  <set>.png           per task, the seed mean of the evaluation return (the best member's, or
                      every member's) against env steps, with 95% bootstrap CIs (scipy's BCa);
                      best+worst sets add the worst member, dashed; a set of several
                      questions (`sets.Panel`) draws a row of tasks per question, each with
                      its own legend (`figures.plot_set`).
  <set>-iqm.png       rliable's IQM of the final returns per variant, with its 95% stratified-
                      bootstrap CI (`figures.plot_intervals`).
  <set>-profile.png   rliable's performance profiles of the final returns (`figures.plot_profiles`).
  <set>.md            per curve, the final return with its CI and the env steps to a threshold
                      (default: the best baseline's final return); rliable's IQM and P(improvement)
                      of CIKD over the baselines; the election audit (`tables`); for a set that
                      decides defaults (the study), what its pre-registered rules choose
                      (`decision`).
  <set>-election.png  for the runs that audited their teacher elections (`election_figure`).
Reading the runs: `mjx_cikd.experiments.runs`.
"""

from __future__ import annotations

import pathlib

from mjx_cikd.experiments import decision, figures, tables
from mjx_cikd.experiments.election_figure import plot_election
from mjx_cikd.experiments.runs import (
    Run,
    by_set,
    final_scores,
    find_runs,
    set_of,
    task_runs,
    tasks_of,
)

__all__ = ["by_set", "find_runs", "report_set"]


def report_set(set_name: str, runs: list[Run], out: pathlib.Path,
               threshold=None) -> list[pathlib.Path]:
    """Writes a set's figures and table under `out`; -> their paths, the learning curves first."""
    paths = [figures.plot_set(set_name, runs, out)]
    run_dirs = [r.dir for t in tasks_of(runs) for r in task_runs(runs, t)]
    title = runs[0].record.set_title
    heading = f"# {set_name}: {title}" if title != set_name else f"# {set_name}"
    lines = [heading, "", *tables.final_table(runs, threshold),
             *tables.aggregate_table(runs), *tables.election_table(run_dirs)]
    experiment_set = set_of(runs)
    if experiment_set is not None and experiment_set.decides_defaults:
        lines += decision.decision_lines(decision.decide(final_scores(runs), tasks_of(runs)))
    lines.append("")
    md = out / f"{set_name}.md"
    md.write_text("\n".join(lines))
    paths.append(md)
    paths += [p for p in (figures.plot_intervals(set_name, runs, out),
                          figures.plot_profiles(set_name, runs, out),
                          plot_election(run_dirs, out / f"{set_name}-election.png")) if p]
    return paths
