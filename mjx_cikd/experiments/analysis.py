"""Run directories -> learning curves, tables and figures (what scripts/plot.py writes).

A run directory is any directory holding metrics.jsonl, named by its `VariantRecord`
(variant.json); without one, a run at ROOT/.../<set>/<task>/<variant>/ is named by its last three
directories, and a shallower one goes to the set "runs" under its config's env. Per set:
  <set>.png           per task, the seed mean of the best member's evaluation return against env
                      steps with a 95% percentile-bootstrap band (paper, 5.1); best+worst sets add
                      the worst member, dashed; members sets draw every member.
  <set>.md            per curve, the final return with its CI and the env steps to a threshold
                      (default: the best baseline's final return); rliable's IQM of the final
                      returns and P(improvement) of CIKD over the baselines; the election audit.
  <set>-election.png  for the runs that audited their teacher elections (`election_summary`).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import textwrap

import numpy as np

from mjx_cikd.config import ceil_div
from mjx_cikd.experiments import stats
from mjx_cikd.experiments.plan import (
    BEST,
    MEMBER,
    SET_CURVES,
    WORST,
    VariantRecord,
    default_curves,
    member_labels,
)
from mjx_cikd.experiments.stats import fmt, fmt_interval, fmt_steps
from mjx_cikd.host.logger import read_metrics

# The statistics an audited election logs for every member, scored as if each had decided.
STATISTICS = ("train_returns", "reward_rate", "statistic")


@dataclasses.dataclass
class Run:
    dir: pathlib.Path
    record: VariantRecord
    steps: np.ndarray  # [T] evaluation env steps every seed has
    returns: np.ndarray  # [S, T, K] each member's mean evaluation return


@dataclasses.dataclass
class Curve:
    label: str
    variant: str
    kind: str  # BEST | WORST | MEMBER
    baseline: bool
    steps: np.ndarray
    values: np.ndarray  # [S, T]
    band: stats.Band


def eval_arrays(run_dir: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """-> steps [T], returns [S, T, K] over the evaluation points every seed reached. A resumed run
    may log an evaluation twice: the last record wins."""
    per_seed: dict[int, dict[int, list]] = {}
    for row in read_metrics(run_dir, "eval"):
        values = [np.nan if v is None else v for v in row["returns"]]
        per_seed.setdefault(int(row["seed"]), {})[int(row["env_steps"])] = values
    if not per_seed:
        return np.zeros(0, int), np.zeros((0, 0, 0))
    steps = sorted(set.intersection(*(set(d) for d in per_seed.values())))
    seeds = sorted(per_seed)
    returns = np.array([[per_seed[s][t] for t in steps] for s in seeds], dtype=np.float64)
    return np.asarray(steps, dtype=np.int64), returns.reshape(len(seeds), len(steps), -1)


def _infer_record(root: pathlib.Path, run_dir: pathlib.Path, seeds: int,
                  k: int) -> VariantRecord:
    """A record for a run that has none (trained by scripts/train.py): from its path and config."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    parts = run_dir.relative_to(root).parts
    if len(parts) >= 3:
        set_name, task, variant = parts[-3:]
    else:
        set_name, task = "runs", config.get("env", "task")
        variant = parts[-1] if parts else run_dir.name
    widths = tuple(config.get("widths") or [config.get("hidden_width", "?")] * k)
    algo = config.get("algo", "")
    return VariantRecord(set=set_name, task=task, variant=variant, set_title=set_name,
                         curves=default_curves(set_name), baseline=algo != "cikd", algo=algo,
                         ensemble_size=k, widths=widths,
                         member_labels=tuple(member_labels(variant, widths)), seeds=seeds)


def load_run(root: pathlib.Path, run_dir: pathlib.Path) -> Run | None:
    steps, returns = eval_arrays(run_dir)
    if steps.size == 0:
        print(f"[plot] {run_dir}: no evaluation yet, skipped", file=sys.stderr)
        return None
    seeds, _, k = returns.shape
    record = VariantRecord.read(run_dir) or _infer_record(root, run_dir, seeds, k)
    return Run(run_dir, record, steps, returns)


def find_runs(root: pathlib.Path) -> list[Run]:
    runs = (load_run(root, m.parent) for m in sorted(root.rglob("metrics.jsonl")))
    return [r for r in runs if r is not None]


def by_set(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by set, sets in order of appearance."""
    names = dict.fromkeys(r.record.set for r in runs)
    return {name: [r for r in runs if r.record.set == name] for name in names}


def curves_of(run: Run) -> list[Curve]:
    """The curves a run contributes to its set's figure and table."""
    rec = run.record

    def curve(label, kind, values):
        return Curve(label, rec.variant, kind, rec.baseline, run.steps, values,
                     stats.bootstrap_ci(values))

    kinds = SET_CURVES.get(rec.curves, SET_CURVES["best"])
    k = run.returns.shape[-1]
    if MEMBER in kinds:
        return [curve(rec.member_labels[i] if i < len(rec.member_labels) else
                      f"{rec.variant} [{i}]", MEMBER, run.returns[..., i]) for i in range(k)]
    out = [curve(rec.variant, BEST, np.nanmax(run.returns, axis=-1))]
    if WORST in kinds and k > 1:
        out.append(curve(f"{rec.variant} (worst)", WORST, np.nanmin(run.returns, axis=-1)))
    return out


def _tasks(runs: list[Run]) -> list[str]:
    """Tasks in the planned order, then in order of appearance."""
    names = list(dict.fromkeys(r.record.task for r in runs))
    first = {t: min(r.record.task_order for r in runs if r.record.task == t) for t in names}
    return sorted(names, key=lambda t: (first[t], names.index(t)))


def _task_runs(runs: list[Run], task: str) -> list[Run]:
    return sorted((r for r in runs if r.record.task == task),
                  key=lambda r: (r.record.order, r.record.variant))


# --------------------------------------------------------------------------------------
# tables


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
        f"Final return: the mean over seeds of {what} member's evaluation return at the last "
        "evaluation, with its 95% percentile-bootstrap confidence interval over seeds. Steps: the "
        f"first evaluation at which the seed-mean curve reaches {reach_to} (baselines: the "
        "non-CIKD variants of this set; — if it never does).", "",
        "| Task | Variant | Curve | Seeds | Last eval (env steps) | Final return | 95% CI | "
        f"Steps to {reach_to} |", "|---|---|---|---|---|---|---|---|"]
    notes = []
    for task in _tasks(runs):
        curves = [c for r in _task_runs(runs, task) for c in curves_of(r)]
        value, note = threshold_of(task, curves, threshold)
        notes.append(note)
        for c in curves:
            reach = "n/a" if value is None else fmt_steps(
                stats.first_reach(c.steps, c.band.mean, value))
            curve = {BEST: "best member", WORST: "worst member"}.get(c.kind, c.label)
            lines.append(f"| {task} | {c.variant} | {curve} | {c.values.shape[0]} | "
                         f"{fmt_steps(int(c.steps[-1]))} | "
                         f"{fmt_interval(c.band.mean[-1], c.band.low[-1], c.band.high[-1])} | "
                         f"{reach} |")
    return lines + ["", *notes]


def aggregate_table(runs: list[Run], reps: int = 2000) -> list[str]:
    """rliable on the final returns: the IQM per task and variant, and the probability of
    improvement of `stats.improvement_pairs`."""
    tasks = _tasks(runs)
    runs = [r for t in tasks for r in _task_runs(runs, t)]
    scores = {(r.record.task, r.record.variant): stats.final_best(r.returns) for r in runs}
    scores = {k: v for k, v in scores.items() if v.size}
    if not scores:
        return []
    iqm = stats.iqm_ci({k: v[:, None] for k, v in scores.items()}, reps=reps)
    lines = ["", "## Aggregate over seeds (rliable)", "",
             "The best member's final return per seed. IQM: the interquartile mean over seeds "
             "(25% trimmed mean) with its 95% stratified-bootstrap CI. P(improvement): the "
             "probability that a seed of the variant ends above a seed of the reference "
             "(Mann-Whitney U / (S_x S_y)), averaged over tasks, with its 95% CI.", "",
             "| Task | Variant | Seeds | IQM | 95% CI |", "|---|---|---|---|---|"]
    lines += [f"| {t} | {v} | {scores[t, v].size} | {fmt_interval(*iqm[t, v])} |"
              for t, v in scores]
    baseline = {r.record.variant: r.record.baseline for r in runs}
    pairs = stats.improvement_pairs(tasks, scores, baseline)
    if pairs:
        prob = stats.improvement_ci(pairs, reps=reps)
        lines += ["", "| Task | Variant | Over | P(improvement) | 95% CI |", "|---" * 5 + "|"]
        lines += [f"| {' | '.join(key)} | {fmt_interval(*prob[key])} |" for key in pairs]
    return lines


# --------------------------------------------------------------------------------------
# the election audit


def _audit_records(run_dir: pathlib.Path) -> list[dict]:
    if not (run_dir / "metrics.jsonl").is_file():
        return []
    return [r for r in read_metrics(run_dir, "distill") if r.get("audit") is not None]


def _as_array(rows: list[dict], key: str) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in r[key]] for r in rows], np.float64)


def _score(rows: list[dict]) -> dict:
    """{phases, and per chooser {phases, hit_rate, mean_regret}} over the phases that ran."""
    ran = [r for r in rows if r.get("ran", True)]
    if not ran:
        return {"phases": 0}
    regret = [np.nan if r["regret"] is None else r["regret"] for r in ran]
    logged = {k: _as_array(ran, k) for k in STATISTICS if all(r.get(k) is not None for r in ran)}
    scores = stats.election_scores(_as_array(ran, "audit"), [r["hit"] for r in ran], regret, logged)
    return {"phases": len(ran), **scores}


def election_summary(run_dir) -> dict | None:
    """Per seed and over all seeds, how often the election picked the member with the best true
    return: {metric, members, random_hit_rate (1/K), overall, seeds: {seed: ...}}, where each
    score is {phases, teacher: {hit_rate, mean_regret}, train_returns, reward_rate, statistic}.
    None if the run logged no audit."""
    rows = _audit_records(pathlib.Path(run_dir))
    if not rows:
        return None
    k = len(rows[0]["audit"])
    seeds = sorted({int(r["seed"]) for r in rows})
    return {"metric": rows[0].get("metric"), "members": k, "random_hit_rate": 1 / k,
            "overall": _score(rows),
            "seeds": {s: _score([r for r in rows if int(r["seed"]) == s]) for s in seeds}}


def _run_name(run_dir: pathlib.Path) -> str:
    record = VariantRecord.read(run_dir)
    return f"{record.task} / {record.variant}" if record else run_dir.name


def election_table(run_dirs) -> list[str]:
    summaries = [(d, s) for d in run_dirs if (s := election_summary(d)) is not None]
    if not summaries:
        return []
    keys = (stats.DECIDED, *STATISTICS)
    lines = ["", "## Election audit", "",
             "Each phase that ran, every member's true (deterministic) return was measured just "
             "before it. Hit: the member chosen had the best true return; regret: the best true "
             "return minus the chosen member's. `teacher` is the member the run elected; the "
             "statistics are counterfactual: the member each would have elected (NaN as -inf, ties "
             "to the lowest index), over the phases where it had a value (their number in brackets). "
             "A random teacher hits 1/K of the time.", "",
             "| Run | Metric | Phases | " + " | ".join(f"{k} hit / regret" for k in keys)
             + " | random 1/K |", "|---" * (len(keys) + 4) + "|"]
    for run_dir, s in summaries:
        o = s["overall"]
        cells = [f"{fmt(o[k]['hit_rate'])} / {fmt(o[k]['mean_regret'])} ({o[k]['phases']})"
                 if k in o else "—" for k in keys]
        lines.append(f"| {_run_name(run_dir)} | {s['metric']} | {o['phases']} | "
                     + " | ".join(cells) + f" | {fmt(s['random_hit_rate'])} |")
    return lines


def plot_election(run_dirs, out_png) -> pathlib.Path | None:
    """Per run: every member's audited return over the phases (each seed), the elected teacher
    marked (a dot: it was the best; a cross: it was not), and the hit rate of each statistic."""
    audited = [(d, rows) for d in map(pathlib.Path, run_dirs) if (rows := _audit_records(d))]
    if not audited:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(audited), 2, figsize=(11, 3.2 * len(audited)), squeeze=False,
                             gridspec_kw={"width_ratios": (3, 1)})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (left, right), (run_dir, rows) in zip(axes, audited):
        for seed in sorted({int(r["seed"]) for r in rows}):
            mine = [r for r in rows if int(r["seed"]) == seed and r.get("ran", True)]
            steps, audit = np.array([r["env_steps"] for r in mine]), _as_array(mine, "audit")
            for m in range(audit.shape[1]):
                left.plot(steps, audit[:, m], color=colors[m % len(colors)], linewidth=1.2,
                          alpha=1.0 if seed == 0 else 0.45,
                          label=f"member {m}" if seed == 0 else None)
            picked = audit[np.arange(len(mine)), [int(r["teacher"]) for r in mine]]
            hit = np.array([bool(r["hit"]) for r in mine], dtype=bool)
            left.scatter(steps[hit], picked[hit], marker="o", color="black", s=14, zorder=3,
                         label="teacher (best)" if seed == 0 else None)
            left.scatter(steps[~hit], picked[~hit], marker="x", color="red", s=22, zorder=3,
                         label="teacher (not best)" if seed == 0 else None)
        left.set(title=f"{_run_name(run_dir)}: audited returns at each phase",
                 xlabel="env steps", ylabel="true return")
        left.grid(alpha=0.3)
        left.legend(fontsize=8, frameon=False)
        summary = election_summary(run_dir)
        names = [k for k in (stats.DECIDED, *STATISTICS) if k in summary["overall"]]
        right.bar(range(len(names)), [summary["overall"][k]["hit_rate"] for k in names],
                  color="0.55")  # grey: the colours on the left are the members
        right.axhline(summary["random_hit_rate"], color="red", linestyle="--", label="random 1/K")
        right.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        right.set(ylim=(0, 1), title=f"hit rate (metric: {summary['metric']})")
        right.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return pathlib.Path(out_png)


# --------------------------------------------------------------------------------------
# the set's figure, and everything written for a set


def _pyplot():
    # matplotlib takes a while to load and is only needed to draw: imported here, headless
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_set(set_name: str, runs: list[Run], out: pathlib.Path) -> pathlib.Path:
    plt = _pyplot()
    tasks = _tasks(runs)
    ncols = min(len(tasks), 4)
    nrows = ceil_div(len(tasks), ncols)
    width = max(4.2 * ncols, 7.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 3.4 * nrows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    palette: dict[str, str] = {}
    handles: dict[str, object] = {}
    for ax, task in zip(axes.flat, tasks):
        for c in (c for run in _task_runs(runs, task) for c in curves_of(run)):
            color = palette.setdefault(c.variant if c.kind in (BEST, WORST) else c.label,
                                       colors[len(palette) % len(colors)])
            dashed = c.kind == WORST
            (line,) = ax.plot(c.steps, c.band.mean, color=color, linewidth=1.5, label=c.label,
                              marker="o" if c.steps.size < 3 else None,
                              linestyle="--" if dashed else "-")
            if c.steps.size == 1:  # a band needs two points: an error bar instead
                ax.errorbar(c.steps, c.band.mean, yerr=[c.band.mean - c.band.low,
                                                       c.band.high - c.band.mean],
                            color=color, capsize=3, linewidth=1)
            else:
                ax.fill_between(c.steps, c.band.low, c.band.high, color=color,
                                alpha=0.10 if dashed else 0.22, linewidth=0)
            handles.setdefault(c.label, line)
        ax.set(title=task, xlabel="env steps", ylabel="average return")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    seeds = sorted({r.returns.shape[0] for r in runs})
    suptitle = (f"{set_name}: {runs[0].record.set_title} — mean over "
                f"{'/'.join(map(str, seeds))} seed(s), 95% bootstrap CI")
    fig.suptitle(textwrap.fill(suptitle, int(width * 13)), fontsize=10)
    ncol = min(len(handles), max(2, int(width / 2.2)))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol,
               frameon=False, fontsize=9)
    # the figure grows by what the legend (bottom) and the title (top) take, in inches
    legend_in = 0.25 * ceil_div(len(handles), ncol) + 0.15
    title_in = 0.2 * len(textwrap.wrap(suptitle, int(width * 13))) + 0.1
    height = 3.4 * nrows + legend_in + title_in
    fig.set_size_inches(width, height)
    fig.tight_layout(rect=(0, legend_in / height, 1, 1 - title_in / height))
    path = out / f"{set_name}.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def report_set(set_name: str, runs: list[Run], out: pathlib.Path,
               threshold=None) -> list[pathlib.Path]:
    """<set>.png, <set>.md and, for audited runs, <set>-election.png under `out`."""
    paths = [plot_set(set_name, runs, out)]
    run_dirs = [r.dir for t in _tasks(runs) for r in _task_runs(runs, t)]
    lines = [f"# {set_name}: {runs[0].record.set_title}", "", *final_table(runs, threshold),
             *aggregate_table(runs), *election_table(run_dirs), ""]
    md = out / f"{set_name}.md"
    md.write_text("\n".join(lines))
    paths.append(md)
    election = plot_election(run_dirs, out / f"{set_name}-election.png")
    return paths + ([election] if election else [])
