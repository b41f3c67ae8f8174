"""What a chunk's log becomes on the host: `metrics.jsonl` records and TensorBoard scalars.

One `log` record per seed and chunk, an `eval` record per evaluation, a `distill` record per
phase point (with the audit's hit and regret when the election is audited); the formats are in
`run_dir`. `end_summary` is the run's end-of-run view, over the whole run (a resumed one too:
it reads the records the run directory holds): every seed's final evaluation and the audited
elections' hit rate and regret over all seeds.
"""

from __future__ import annotations

import jax
import numpy as np

from mjx_cikd.cikd import election
from mjx_cikd.config import Config
from mjx_cikd.host.run_dir import RunLogger
from mjx_cikd.loop import parallel


def chunk_records(config: Config, log, seed: int, env_steps: int, wall: float, sps: float,
                  first_iteration: int) -> list[dict]:
    """The host-side view of one seed's ChunkLog, as metrics.jsonl records."""
    pick = lambda x: np.asarray(x)[seed]  # noqa: E731
    n = config.num_envs
    rows = [dict(event="log", seed=seed, env_steps=env_steps, wall_s=wall, sps=sps,
                 R=pick(log.recent_return), episodes=pick(log.episodes),
                 **{name: pick(v) for name, v in log.metrics.items()})]
    if parallel.data_parallel(config):  # every device holds the same members
        rows[0]["replicas_agree"] = bool(pick(log.replicas_agree))
    for t in np.flatnonzero(pick(log.eval_due)):
        ret = pick(log.eval_return)[t]
        rows.append(dict(event="eval", seed=seed, env_steps=(first_iteration + t + 1) * n,
                         returns=ret, se=pick(log.eval_se)[t], best=ret.max(), worst=ret.min(),
                         mean=ret.mean()))
    phases = jax.tree.map(pick, log.phase)
    for t in np.flatnonzero(phases.due):
        rows.append(phase_record(config, jax.tree.map(lambda x: x[t], phases), seed,
                                 (first_iteration + t + 1) * n))
    return rows


def phase_record(config: Config, p, seed: int, env_steps: int) -> dict:
    """One phase point (a PhaseOutcome of one seed and iteration) as a `distill` record; with
    the audit, whether the election hit the truly best member and what it cost not to."""
    teacher = int(p.teacher)
    row = dict(event="distill", seed=seed, env_steps=env_steps, ran=bool(p.ran), teacher=teacher,
               metric=config.election_metric, rule=config.teacher, statistic=p.statistic,
               statistic_se=p.statistic_se, R=p.statistic, train_returns=p.train_returns,
               reward_rate=p.reward_rate, staleness=p.staleness, steps=int(p.stats.steps))
    if config.election_rule == "confident":  # a phase the rule declined: the lead was noise
        row["declined"] = bool(teacher >= 0 and not p.confident)
    s = p.stats
    for name in ("kl_before", "kl_after", "critic_before", "critic_after"):
        row[name] = getattr(s, name)
        row[f"mean_{name}"] = _student_mean(getattr(s, name), teacher)
    if config.audit_election and teacher >= 0 and np.isfinite(p.audit).any():
        hit, regret = election.audit_score(p.audit, teacher)
        row.update(audit=p.audit, audit_se=p.audit_se, hit=bool(hit), regret=float(regret),
                   decided=election.decided(p.audit, p.audit_se),
                   regret_normalized=election.regret_normalized(p.audit, regret))
    elif config.audit_election:  # an audit without a finite value scores nothing, but is said
        row.update(audit=p.audit, audit_se=p.audit_se)
    return row


def election_summary(rows: list[dict]) -> dict:
    """The audited phases that elected a teacher, over all seeds: hit rate and mean regret; the
    phases the audit could decide (its best ahead beyond twice the standard error of the
    difference) and the hit rate on those alone; the mean regret over the audited best-worst
    spread. A hit rate over undecided phases scores the election against noise. With no such
    phase (e.g. `train_returns` before any episode finished), 0 phases and nothing scored.
    Beside them the coverage: the share of the phase points with a teacher that distilled (a
    rule that declines can meet a hit rate by abstaining; 1 under argmax)."""
    elected = [r for r in rows if r.get("event") == "distill" and r.get("teacher", -1) >= 0]
    audited = [r for r in rows if r.get("event") == "distill" and "hit" in r]
    decided = [r for r in audited if r.get("decided")]
    normalized = [r["regret_normalized"] for r in audited
                  if r.get("regret_normalized") is not None
                  and np.isfinite(r["regret_normalized"])]
    return dict(election_coverage=(float(np.mean([r["ran"] for r in elected])) if elected
                                   else None),
                election_phases=len(audited),
                election_hit_rate=(float(np.mean([r["hit"] for r in audited])) if audited
                                   else None),
                election_regret=(float(np.nanmean([np.nan if r["regret"] is None else r["regret"]
                                                   for r in audited])) if audited else None),
                election_decided_phases=len(decided),
                election_hit_rate_decided=(float(np.mean([r["hit"] for r in decided]))
                                           if decided else None),
                election_regret_normalized=(float(np.mean(normalized)) if normalized
                                            else None))


def final_evals(rows: list[dict], num_seeds: int) -> dict:
    """Every seed's last evaluation: the best, worst and mean member's return and its env step,
    one entry per seed in seed order (None for a seed not yet evaluated)."""
    last: dict[int, dict] = {}
    for r in rows:
        if r.get("event") == "eval":
            last[r["seed"]] = r

    def pick(key):
        return [last[s][key] if s in last else None for s in range(num_seeds)]

    return dict(final_eval_env_steps=pick("env_steps"), final_eval_best=pick("best"),
                final_eval_worst=pick("worst"), final_eval_mean=pick("mean"))


def end_summary(rows: list[dict], num_seeds: int, audited: bool = False) -> dict:
    """The end record's summaries of the eval and distill records `rows` (the whole run's); with
    `audited` (--audit_election) the election's, even when no phase ran."""
    return {**final_evals(rows, num_seeds), **(election_summary(rows) if audited else {})}


def write(logger: RunLogger, row: dict, seed: int, sps: float) -> None:
    """One record to metrics.jsonl, and its headline scalars to TensorBoard."""
    logger.write(row)
    step = row["env_steps"]
    if row["event"] == "log":
        logger.scalars(f"seed{seed}/train", {k: row[k] for k in (
            "R", "critic_loss", "actor_loss", "alpha", "entropy")}, step)
        logger.scalars(f"seed{seed}/perf", {"sps": sps}, step)
    elif row["event"] == "eval":
        logger.scalars(f"seed{seed}/eval", {"returns": row["returns"], "best": row["best"]}, step)
    elif row["event"] == "distill" and row["ran"]:
        logger.scalars(f"seed{seed}/distill", {"teacher": row["teacher"], "kl_before":
                                               row["mean_kl_before"], "kl_after":
                                               row["mean_kl_after"]}, step)
        if "hit" in row:
            logger.scalars(f"seed{seed}/election", {"hit": float(row["hit"]),
                                                    "regret": row["regret"]}, step)


def _student_mean(values: np.ndarray, teacher: int) -> float:
    mask = np.arange(values.shape[0]) != teacher
    return float(np.mean(values[mask])) if mask.any() else float("nan")
