"""The Markdown tables of a set (<set>.md): per curve the final return with its interval and the
env steps to a threshold; rliable's IQM and probability of improvement of the final returns; the
election audit's hit rates and regrets."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from mjx_cikd.experiments import stats
from mjx_cikd.experiments.plan import BEST, MEAN, MEMBER, WORST
from mjx_cikd.experiments.runs import (
    STATISTICS,
    Curve,
    Run,
    as_array,
    audit_records,
    audit_summary,
    curves_of,
    final_scores,
    mean_member,
    run_name,
    set_of,
    task_runs,
    tasks_of,
)
from mjx_cikd.experiments.stats import fmt, fmt_interval, fmt_steps


def threshold_of(task: str, curves: list[Curve], given=None) -> tuple[float | None, str]:
    """The return a task's steps-to-threshold column counts to, and a note saying where it comes
    from: `given` (one number, or {task: number}), else the best baseline's final return."""
    if isinstance(given, dict):
        given = given.get(task)
    if given is not None:
        return float(given), f"- {task}: threshold {fmt(float(given))} (given)"
    ref = [c for c in curves if c.baseline and c.kind in (BEST, MEMBER)]
    if not ref:
        return None, f"- {task}: no baseline (non-CIKD variant) in this set"
    best = max(ref, key=lambda c: c.band.mean[-1])
    return float(best.band.mean[-1]), (f"- {task}: best baseline {best.label}, final return "
                                       f"{fmt(best.band.mean[-1])} at "
                                       f"{fmt_steps(int(best.steps[-1]))} steps")


def final_table(runs: list[Run], threshold=None) -> list[str]:
    """Per task and curve: the final return with its bootstrap CI, and the steps to threshold."""
    what = "each" if any(r.record.curves == "members" for r in runs) else "the best"
    reach_to = "the threshold" if threshold is not None else "the best baseline's final return"
    lines = [
        f"Final return: the mean over seeds of {what} member's deterministic evaluation return at "
        "the last evaluation, with its 95% bootstrap confidence interval over seeds (BCa, "
        "`scipy.stats.bootstrap`; at 2-5 seeds such an interval covers less than its nominal 95%). "
        f"Steps: the first evaluation at which the seed-mean curve reaches {reach_to} (baselines: "
        "the non-CIKD variants of this set; — if it never does).", "",
        "| Task | Variant | Curve | Seeds | Last eval (env steps) | Final return | 95% CI | "
        f"Steps to {reach_to} | Area under the curve | 95% CI |", "|---" * 10 + "|"]
    notes = []
    for task in tasks_of(runs):
        # each run's curves (the mean member's too) built once, a bootstrap each, for both the
        # threshold and the rows
        curves = [c for r in task_runs(runs, task) for c in curves_of(r) + mean_member(r)]
        value, note = threshold_of(task, curves, threshold)
        notes.append(note)
        for c in curves:
            reach = "n/a" if value is None else fmt_steps(
                stats.first_reach(c.steps, c.band.mean, value))
            curve = {BEST: "best member", WORST: "worst member",
                     MEAN: "mean member"}.get(c.kind, c.label)
            lines.append(f"| {task} | {c.variant} | {curve} | {c.values.shape[0]} | "
                         f"{fmt_steps(int(c.steps[-1]))} | "
                         f"{fmt_interval(c.band.mean[-1], c.band.low[-1], c.band.high[-1])} | "
                         f"{reach} | {fmt_interval(*stats.bootstrap_ci(area(c)))} |")
    return lines + ["", AREA_NOTE, *notes]


AREA_NOTE = ("Area under the curve: each seed's mean over the evaluations (equally spaced in env "
             "steps), so that learning early counts and one last evaluation does not decide "
             "alone; its 95% interval over seeds as above. Beside the best member, the mean "
             "member of every run with several: the best of K on the reported evaluation "
             "rewards a spread between members that CIKD shrinks.")


def area(curve: Curve) -> np.ndarray:
    """[S] each seed's mean of the curve over its evaluations (NaN ones left out)."""
    return np.nanmean(curve.values, axis=-1)


def aggregate_table(runs: list[Run], reps: int = 2000) -> list[str]:
    """rliable on the final returns: the IQM per task and variant, and the probability of
    improvement of `stats.improvement_pairs`."""
    scores = final_scores(runs)
    if not scores:
        return []
    iqm = stats.iqm_ci({k: v[:, None] for k, v in scores.items()}, reps=reps)
    lines = ["", "## Aggregate over seeds (rliable)", "",
             "The best member's final return per seed. IQM: the interquartile mean over seeds "
             "(25% trimmed mean) with its 95% stratified-bootstrap CI. P(improvement): the "
             "probability that a seed of the variant ends above a seed of the reference "
             "(Mann-Whitney U / (S_x S_y)), averaged over tasks, with its 95% CI: each CIKD "
             "variant over each baseline, or, in a set of several questions, each variant over "
             "the references of its question drawn before it (`sets.Panel`).", "",
             "| Task | Variant | Seeds | IQM | 95% CI |", "|---|---|---|---|---|"]
    lines += [f"| {t} | {v} | {scores[t, v].size} | {fmt_interval(*iqm[t, v])} |"
              for t, v in scores]
    baseline = {r.record.variant: r.record.baseline
                for t in tasks_of(runs) for r in task_runs(runs, t)}
    known = set_of(runs)
    pairs = stats.improvement_pairs(tasks_of(runs), scores, baseline,
                                    known.comparisons if known else ())
    if pairs:
        prob = stats.improvement_ci(pairs, reps=reps)
        lines += ["", "| Task | Variant | Over | P(improvement) | 95% CI |", "|---" * 5 + "|"]
        lines += [f"| {' | '.join(key)} | {fmt_interval(*prob[key])} |" for key in pairs]
    return lines


def election_table(run_dirs: list[pathlib.Path]) -> list[str]:
    audited = {d: rows for d in run_dirs if (rows := audit_records(d))}
    summaries = [(d, audit_summary(rows)) for d, rows in audited.items()]
    if not summaries:
        return []
    keys = (stats.DECIDED, *STATISTICS)
    lines = ["", "## Election audit", "",
             "At each phase point every member's true (deterministic) return was measured just "
             "before the election. Hit: the member chosen had the best true return; regret: the "
             "best true return minus the chosen member's. `teacher` is the member the run "
             "elected, over the phases that ran (Phases); the statistics are counterfactual: the "
             "member each would have elected (NaN as -inf, ties to the lowest index), over the "
             "audited phase points where it had a value (their number in brackets), the ones "
             "the run's rule declined included. "
             "A random teacher hits 1/K of the time.", "",
             "| Run | Metric | Phases | " + " | ".join(f"{k} hit / regret" for k in keys)
             + " | random 1/K |", "|---" * (len(keys) + 4) + "|"]
    for run_dir, s in summaries:
        o = s["overall"]
        cells = [f"{fmt(o[k]['hit_rate'])} / {fmt(o[k]['mean_regret'])} ({o[k]['phases']})"
                 if k in o else "—" for k in keys]
        lines.append(f"| {run_name(run_dir)} | {s['metric']} | {o['phases']} | "
                     + " | ".join(cells) + f" | {fmt(s['random_hit_rate'])} |")
    return lines + decided_table(summaries) + simulated_table(audited)


SIMULATED_EPISODES = (5, 10, 30, 100)


def simulated_table(audited: dict[pathlib.Path, list[dict]],
                    episodes=SIMULATED_EPISODES) -> list[str]:
    """What an `eval` election of n episodes per member would have elected at each run's audited
    phase points ({run directory: its audit records}), the audit taken as the truth
    (`stats.simulated_election`), under argmax and under the confident rule. Runs audited
    without standard errors have no row."""
    lines = []
    for run_dir, rows in audited.items():
        saved = run_dir / "config.json"  # the audit's episode count and the rule's z
        if not saved.is_file() or any(r.get("audit_se") is None for r in rows):
            continue
        config = json.loads(saved.read_text())
        audit, audit_se = as_array(rows, "audit"), as_array(rows, "audit_se")
        for n in episodes:
            plain = stats.simulated_election(audit, audit_se, config["audit_episodes"], n)
            sure = stats.simulated_election(audit, audit_se, config["audit_episodes"], n,
                                            rule="confident", z=config["election_z"])
            lines.append(f"| {run_name(run_dir)} | {n} | {plain['phases']} | "
                         f"{fmt(plain['hit_rate_decided'])} / {fmt(plain['regret_normalized'])} | "
                         f"{fmt(sure['distilled'])} | {fmt(sure['hit_rate_decided'])} / "
                         f"{fmt(sure['regret_normalized'])} |")
    if not lines:
        return []
    return ["", "### What an evaluation of n episodes would elect (simulated from the audit)", "",
            "Each audited phase point, the audit's means taken as the truth and its standard "
            "errors as the noise of the election's episodes (times sqrt(audit episodes / n)), "
            "1,000 draws: the hit rate over the decided phases and the normalised regret of an "
            "`eval` election of n episodes per member, under argmax and under the confident rule "
            "(which distils only the share of phases given, and is scored on those).", "",
            "| Run | n | Phase points | argmax: decided hit / norm. regret | confident: share "
            "distilled | confident: decided hit / norm. regret |", "|---" * 6 + "|", *lines]


def decided_table(summaries: list[tuple[pathlib.Path, dict]]) -> list[str]:
    """The audit against its own noise: per chooser the hit rate over the decided phases (the
    audited best led the runner-up by more than 2 standard errors of the difference) and the
    regret over the audited best-worst spread. Runs audited without standard errors (before
    `--audit_episodes`) have no row."""
    rows = [(d, s) for d, s in summaries if "audit_se" in s["overall"]]
    if not rows:
        return []
    keys = (stats.DECIDED, *STATISTICS)
    lines = ["", "### Decided phases and normalised regret", "",
             "Decided: the audit's best led its runner-up by more than twice the standard error "
             "of the difference, so a hit there means something. Normalised regret: the regret "
             "over the audited best-worst spread (0: the best chosen, 1: the worst), mean over "
             "the phases that ran. Audit SE and spread: medians over phases.", "",
             "| Run | Metric | Audited | Ran | Audit SE | Spread | "
             + " | ".join(f"{k} decided hit (n) / norm. regret" for k in keys) + " |",
             "|---" * (len(keys) + 6) + "|"]
    for run_dir, s in rows:
        o = s["overall"]
        cells = [f"{fmt(o[k]['hit_rate_decided'])} ({o[k]['decided_phases']}) / "
                 f"{fmt(o[k]['regret_normalized'])}" if k in o else "—" for k in keys]
        lines.append(f"| {run_name(run_dir)} | {s['metric']} | {o['audited']} | {o['phases']} | "
                     f"{fmt(o['audit_se'])} | {fmt(o['spread'])} | " + " | ".join(cells) + " |")
    return lines
