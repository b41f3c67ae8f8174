"""Run directories read back for the tables and figures: each run's evaluation returns, the curves
it contributes to its set, the final scores rliable aggregates, and the election audit's records.

A run directory is any directory holding metrics.jsonl, named by its `VariantRecord`
(variant.json); without one, a run at ROOT/.../<set>/<task>/<variant>/ is named by its last three
directories, and a shallower one goes to the set "runs" under its config's env.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import numpy as np

from mjx_cikd.experiments import stats
from mjx_cikd.experiments.plan import (
    BEST,
    MEAN,
    MEMBER,
    SET_CURVES,
    WORST,
    VariantRecord,
    default_curves,
    member_labels,
)
from mjx_cikd.experiments.sets import SETS, ExperimentSet
from mjx_cikd.host.run_dir import read_metrics

# The statistics an audited election logs for every member, scored as if each had decided.
STATISTICS = ("train_returns", "reward_rate", "statistic")


@dataclasses.dataclass
class Run:
    dir: pathlib.Path
    record: VariantRecord
    steps: np.ndarray  # [T] evaluation env steps every seed has
    returns: np.ndarray  # [S, T, K] each member's mean evaluation return
    episode_length: int = 0  # from config.json; 0: the task's own


@dataclasses.dataclass
class Curve:
    label: str
    variant: str
    kind: str  # BEST | WORST | MEMBER | MEAN (tables only)
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


def _config(run_dir: pathlib.Path) -> dict:
    path = run_dir / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _infer_record(root: pathlib.Path, run_dir: pathlib.Path, seeds: int,
                  k: int) -> VariantRecord:
    """A record for a run that has none (trained by scripts/train.py): from its path and config."""
    config = _config(run_dir)
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
    return Run(run_dir, record, steps, returns, int(_config(run_dir).get("episode_length") or 0))


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


def mean_member(run: Run) -> list[Curve]:
    """The mean member's curve of a run with several members whose set draws the best (and
    worst) one: what the tables put beside the best member (issue 30); none otherwise."""
    rec = run.record
    if MEMBER in SET_CURVES.get(rec.curves, SET_CURVES["best"]) or run.returns.shape[-1] < 2:
        return []
    values = np.nanmean(run.returns, axis=-1)
    return [Curve(f"{rec.variant} (mean member)", rec.variant, MEAN, rec.baseline, run.steps,
                  values, stats.bootstrap_ci(values))]


def set_of(runs: list[Run]) -> ExperimentSet | None:
    """The experiment set the runs were planned from (its questions and comparisons); None for
    runs of no known set."""
    return SETS.get(runs[0].record.set)


def tasks_of(runs: list[Run]) -> list[str]:
    """Tasks in the planned order, then in order of appearance."""
    names = list(dict.fromkeys(r.record.task for r in runs))
    first = {t: min(r.record.task_order for r in runs if r.record.task == t) for t in names}
    return sorted(names, key=lambda t: (first[t], names.index(t)))


def task_runs(runs: list[Run], task: str) -> list[Run]:
    return sorted((r for r in runs if r.record.task == task),
                  key=lambda r: (r.record.order, r.record.variant))


def final_scores(runs: list[Run]) -> dict[tuple[str, str], np.ndarray]:
    """{(task, variant): [S] the best member's return at the last evaluation, per seed}, in the
    set's order, variants without a finite score left out: what rliable aggregates."""
    ordered = [r for t in tasks_of(runs) for r in task_runs(runs, t)]
    scores = {(r.record.task, r.record.variant): stats.final_best(r.returns) for r in ordered}
    return {k: v for k, v in scores.items() if v.size}


# --------------------------------------------------------------------------------------
# the election audit's records


def audit_records(run_dir: pathlib.Path) -> list[dict]:
    if not (run_dir / "metrics.jsonl").is_file():
        return []
    return [r for r in read_metrics(run_dir, "distill") if r.get("audit") is not None]


def phase_ran(row: dict) -> bool:
    """Whether an audited phase point elected a teacher and distilled (a rule may decline one,
    a statistic may have no value yet): only then is the teacher scored."""
    return row.get("ran", True) and "hit" in row


def as_array(rows: list[dict], key: str) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in r[key]] for r in rows], np.float64)


def _score(rows: list[dict]) -> dict:
    """{phases, and per chooser {phases, hit_rate, mean_regret}}: the teacher over the phases
    that ran, each statistic over every audited phase point (what it would have elected there,
    `stats.election_scores`); where the audit logged its standard errors, each chooser's decided
    hit rate and normalised regret too, and the audit's own noise (`stats.audit_noise`).
    `phases`: the phases that ran; `audited`: every audited phase point, the ones the rule
    declined included."""
    ran = np.array([phase_ran(r) for r in rows], bool)
    regret = [np.nan if r["regret"] is None else r["regret"] for r, on in zip(rows, ran) if on]
    logged = {k: as_array(rows, k) for k in STATISTICS if all(r.get(k) is not None for r in rows)}
    with_se = all(r.get("audit_se") is not None for r in rows)
    audit, audit_se = as_array(rows, "audit"), as_array(rows, "audit_se") if with_se else None
    hits = [r["hit"] for r, on in zip(rows, ran) if on]
    scores = stats.election_scores(audit, hits, regret, logged, audit_se, ran=ran)
    noise = stats.audit_noise(audit, audit_se) if with_se else {}
    return {"phases": int(ran.sum()), "audited": len(rows), **noise, **scores}


def election_summary(run_dir) -> dict | None:
    """`audit_summary` of a run directory's audit records; None if it logged no audit."""
    return audit_summary(audit_records(pathlib.Path(run_dir)))


def audit_summary(rows: list[dict]) -> dict | None:
    """Per seed and over all seeds, how often the election picked the member with the best true
    return: {metric, members, random_hit_rate (1/K), overall, seeds: {seed: ...}}, where each
    score is {phases, teacher: {hit_rate, mean_regret}, train_returns, reward_rate, statistic}.
    None without audit records."""
    if not rows:
        return None
    k = len(rows[0]["audit"])
    seeds = sorted({int(r["seed"]) for r in rows})
    return {"metric": rows[0].get("metric"), "members": k, "random_hit_rate": 1 / k,
            "overall": _score(rows),
            "seeds": {s: _score([r for r in rows if int(r["seed"]) == s]) for s in seeds}}


def run_name(run_dir: pathlib.Path) -> str:
    record = VariantRecord.read(run_dir)
    return f"{record.task} / {record.variant}" if record else run_dir.name
