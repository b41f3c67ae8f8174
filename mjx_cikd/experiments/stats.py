"""Statistics over seeds for plots and tables: the mean and a bootstrap confidence band (scipy's
BCa), rliable's interquartile mean, probability of improvement and performance profiles, the
election audit's hit rates, and how the tables write these numbers.

The paper (section 5.1) plots the mean over 5 seeds with a bootstrapped confidence interval.
`bootstrap_ci` asks `scipy.stats.bootstrap` for the bias-corrected and accelerated (BCa) interval
of the mean over seeds, independently at every point of the curve. No bootstrap is honest at 2-5
seeds: on normal data a nominal 95% interval of the mean covers the truth about 73% of the time at
3 seeds and 83% at 5 (BCa and percentile alike; tests/test_stats_and_seeds.py measures it), so
the bands and tables say how many seeds they rest on. With one seed there is nothing to resample:
the band collapses to the line.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import NamedTuple

import jax
import numpy as np
import scipy.stats
from rliable import library as rl_library
from rliable import metrics as rl_metrics

from mjx_cikd.cikd import election

BOOTSTRAP_METHOD = "BCa"  # scipy's default: corrects the percentile interval's bias and skew


class Band(NamedTuple):
    mean: np.ndarray  # the mean over seeds
    low: np.ndarray  # lower end of the confidence interval
    high: np.ndarray  # upper end


def _interval(x: np.ndarray, confidence: float, n_resamples: int, seed: int,
              method: str = BOOTSTRAP_METHOD) -> tuple[np.ndarray, np.ndarray]:
    """scipy's bootstrap interval of the mean over axis 0 of a NaN-free x [S, P], S >= 2. Where
    the seeds agree exactly the interval is the point (scipy returns NaN there); where BCa cannot
    be computed otherwise, the percentile interval stands in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's DegenerateDataWarning: handled below
        ci = scipy.stats.bootstrap((x,), np.mean, axis=0, confidence_level=confidence,
                                   n_resamples=n_resamples, method=method,
                                   rng=np.random.default_rng(seed)).confidence_interval
    low, high = np.array(ci.low, np.float64), np.array(ci.high, np.float64)
    flat = np.ptp(x, axis=0) == 0
    low[flat] = high[flat] = x[0, flat]
    failed = ~flat & ~(np.isfinite(low) & np.isfinite(high))
    if failed.any() and method != "percentile":
        low[failed], high[failed] = _interval(x[:, failed], confidence, n_resamples, seed,
                                              "percentile")
    return low, high


def bootstrap_ci(samples, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> Band:
    """Mean over axis 0 (the seeds) of `samples` [S, ...] and its bootstrap interval (scipy, BCa).

    NaN entries (a seed without a value at that point) are left out of the mean and the interval
    of that point; a point with one value has the value as its interval, one with none is NaN.
    Deterministic for a given `seed`.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("bootstrap_ci needs at least one sample along axis 0")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    shape = x.shape[1:]
    flat = x.reshape(x.shape[0], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points give NaN, quietly
        mean = np.nanmean(flat, axis=0)
    low, high = mean.copy(), mean.copy()
    counts = np.sum(~np.isnan(flat), axis=0)
    full = counts == flat.shape[0]
    if flat.shape[0] > 1 and full.any():  # every seed has a value: one vectorised call
        low[full], high[full] = _interval(flat[:, full], confidence, n_resamples, seed)
    for p in np.flatnonzero(~full & (counts > 1)):  # some seeds missing: that point alone
        values = flat[~np.isnan(flat[:, p]), p][:, None]
        (low[p],), (high[p],) = _interval(values, confidence, n_resamples, seed)
    return Band(mean.reshape(shape), low.reshape(shape), high.reshape(shape))


def first_reach(steps, curve, threshold: float):
    """The first of `steps` at which `curve` >= `threshold`, or None if it never does."""
    steps, curve = np.asarray(steps), np.asarray(curve, dtype=np.float64)
    hits = np.flatnonzero(np.nan_to_num(curve, nan=-np.inf) >= threshold)
    return None if hits.size == 0 else steps[hits[0]].item()


# --------------------------------------------------------------------------------------
# aggregates over seeds (rliable: Agarwal et al. 2021, "Deep RL at the edge of the statistical
# precipice"): score matrices are [runs, tasks], here [seeds, 1] per task


@contextlib.contextmanager
def _global_seed(seed: int):
    """rliable's stratified bootstrap draws from numpy's global generator (np.random.choice),
    whatever random_state it is given: seed it so that tables are reproducible, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _iqm(scores: np.ndarray) -> np.ndarray:
    return np.array([rl_metrics.aggregate_iqm(scores)])


def final_best(returns) -> np.ndarray:
    """returns [S, T, K] -> [S]: the best member's return at the last evaluation, per seed (seeds
    without one dropped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed with no return: NaN, dropped
        best = np.nanmax(np.asarray(returns, dtype=np.float64)[:, -1], axis=-1)
    return best[np.isfinite(best)]


def iqm_ci(scores: dict, reps: int = 2000, confidence: float = 0.95,
           seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """{name: [runs, tasks]} -> {name: (IQM, low, high)}: the interquartile mean with its
    stratified-bootstrap percentile interval."""
    with _global_seed(seed):
        point, ci = rl_library.get_interval_estimates(
            scores, _iqm, reps=reps, confidence_interval_size=confidence)
    return {k: (float(point[k][0]), float(ci[k][0, 0]), float(ci[k][1, 0])) for k in scores}


def improvement_ci(pairs: dict, reps: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """{name: (x [runs_x, tasks], y [runs_y, tasks])} -> {name: (P(X > Y), low, high)}: the
    probability of improvement averaged over tasks, with its independent stratified-bootstrap
    interval."""
    with _global_seed(seed):
        point, ci = rl_library.get_interval_estimates(
            {k: list(v) for k, v in pairs.items()}, rl_metrics.probability_of_improvement,
            reps=reps, confidence_interval_size=confidence)
    return {k: (float(point[k]), float(np.ravel(ci[k])[0]), float(np.ravel(ci[k])[1]))
            for k in pairs}


def performance_profile(scores: dict, taus, reps: int = 2000, confidence: float = 0.95,
                        seed: int = 0) -> dict[str, Band]:
    """{name: [runs, tasks]} -> {name: Band over `taus`}: rliable's score distribution, the share
    of runs scoring above each tau, with its stratified-bootstrap percentile interval."""
    taus = np.asarray(taus, dtype=np.float64)
    with _global_seed(seed):
        point, ci = rl_library.create_performance_profile(
            scores, taus, reps=reps, confidence_interval_size=confidence)
    return {k: Band(np.asarray(point[k], np.float64), np.asarray(ci[k][0], np.float64),
                    np.asarray(ci[k][1], np.float64)) for k in scores}


def improvement_pairs(tasks: list[str], scores: dict, baseline: dict,
                      comparisons=()) -> dict:
    """The comparisons of a set for `improvement_ci`. scores: {(task, variant): [S] final
    returns}; baseline: {variant: is a baseline}, in the set's order; comparisons: the set's own
    (x, y) pairs (`sets.ExperimentSet.comparisons`), if it names them. -> {(task, x, y): (scores
    of x [S_x, 1], of y [S_y, 1])} for those pairs, else for every CIKD variant x and baseline y
    (with no baseline in the set: every other variant x and the set's first y), and ("all
    tasks", x, y) with [S, tasks] arrays where every task has both, with the same numbers of
    seeds."""
    refs = [v for v, is_baseline in baseline.items() if is_baseline] or list(baseline)[:1]
    named = [(x, y) for x, y in comparisons if x in baseline and y in baseline]
    pairs = {}
    for x, y in named or [(x, y) for x in baseline if x not in refs for y in refs]:
        per_task = {t: (scores[t, x][:, None], scores[t, y][:, None]) for t in tasks
                    if (t, x) in scores and (t, y) in scores}
        pairs.update({(t, x, y): p for t, p in per_task.items()})
        shapes = {(a.shape, b.shape) for a, b in per_task.values()}
        if len(tasks) > 1 and len(per_task) == len(tasks) and len(shapes) == 1:
            pairs["all tasks", x, y] = tuple(np.hstack(a) for a in zip(*per_task.values()))
    return pairs


# --------------------------------------------------------------------------------------
# election audit: did the elected member have the best true return?


def elect(statistic) -> np.ndarray:
    """argmax over the last axis, NaN as -inf, ties to the lowest index (as the election)."""
    x = np.asarray(statistic, dtype=np.float64)
    return np.argmax(np.where(np.isnan(x), -np.inf, x), axis=-1)


def hit_regret(chosen, audit) -> tuple[np.ndarray, np.ndarray]:
    """chosen [P] member indices, audit [P, K] true returns -> per phase: whether the chosen
    member had the best true return, and how much return it fell short of the best by."""
    return election.audit_score(audit, chosen)


DECIDED = "teacher"  # the score of the member the election actually chose


def election_scores(audit, decided_hit, decided_regret, statistics: dict,
                    audit_se=None, ran=None) -> dict:
    """audit [P, K] true returns at P audited phase points; the logged hit and regret of the
    elected teacher at the phases that ran (`ran` [P], default all); and {name: [P, K]}
    statistics -> {DECIDED or name: {phases, hit_rate, mean_regret}}, each statistic scored on
    the member it would have elected, over the phase points where it had a value for some member
    (a statistic with none would have run no phase), whether or not the run's own rule ran a phase
    there. With the audit's standard
    errors `audit_se` [P, K], each score also holds `decided_phases`, `hit_rate_decided` (hits
    over the phases whose audit could tell the best from the runner-up, `election.decided`) and
    `regret_normalized` (regret over the audited best-worst spread, mean over phases)."""
    audit = np.asarray(audit, dtype=np.float64)
    ran = np.ones(audit.shape[0], bool) if ran is None else np.asarray(ran, bool)
    scores = {DECIDED: (np.asarray(decided_hit, bool), np.asarray(decided_regret, np.float64),
                        ran)}
    for name, values in statistics.items():
        values = np.asarray(values, dtype=np.float64)
        has = ~np.isnan(values).all(-1)
        scores[name] = (*hit_regret(elect(values[has]), audit[has]), has)
    out = {k: {"phases": int(hit.size),
               "hit_rate": float(np.mean(hit)) if hit.size else np.nan,
               "mean_regret": float(np.nanmean(regret)) if np.isfinite(regret).any() else np.nan}
           for k, (hit, regret, _) in scores.items()}
    if audit_se is None:
        return out
    audit_se = np.asarray(audit_se, dtype=np.float64)
    decided = np.array([election.decided(a, se) for a, se in zip(audit, audit_se)], bool)
    for k, (hit, regret, has) in scores.items():
        normalized = np.array([election.regret_normalized(a, r)
                               for a, r in zip(audit[has], regret)], np.float64)
        on = decided[has]
        out[k].update(
            decided_phases=int(on.sum()),
            hit_rate_decided=float(np.mean(hit[on])) if on.any() else np.nan,
            regret_normalized=(float(np.nanmean(normalized)) if np.isfinite(normalized).any()
                               else np.nan))
    return out


def simulated_election(audit, audit_se, audit_episodes: int, episodes: int,
                       rule: str = "argmax", z: float = 2.0, draws: int = 1000,
                       seed: int = 0) -> dict:
    """What an `eval` election of `episodes` episodes per member would elect at the audited
    phases, taking the audit ([P, K] means of `audit_episodes` episodes, standard errors
    `audit_se`) as the truth: each member's election mean is drawn as its audited mean plus
    normal noise of its per-episode spread (audit_se * sqrt(audit_episodes)) over
    sqrt(episodes), `draws` times. Under `confident` a phase distils only when the drawn leader
    leads its runner-up by more than z standard errors of the difference (`election.leads`,
    given the true ones: the rule in a run estimates them from its own episodes).
    -> {phases, distilled (share of phases that ran), hit_rate_decided (over decided phases that
    ran), regret_normalized (over phases that ran)}."""
    audit, se = np.asarray(audit, np.float64), np.asarray(audit_se, np.float64)
    keep = np.isfinite(audit).all(-1) & np.isfinite(se).all(-1)
    audit, se = audit[keep], se[keep]
    if not len(audit):
        return {"phases": 0, "distilled": np.nan, "hit_rate_decided": np.nan,
                "regret_normalized": np.nan}
    noise = se * np.sqrt(audit_episodes / episodes)  # the election mean's standard error
    drawn = audit + np.random.default_rng(seed).normal(size=(draws, *audit.shape)) * noise
    chosen = np.argmax(drawn, -1)  # [draws, P]
    if rule == "confident":  # the loop's own rule, at every draw and phase
        leads = jax.vmap(jax.vmap(election.leads, (0, 0, 0, None)), (0, None, 0, None))
        ran = np.asarray(leads(drawn, noise, chosen, z))
    else:
        ran = np.ones(chosen.shape, bool)
    hit, regret = election.audit_score(np.broadcast_to(audit, drawn.shape), chosen)
    spread = audit.max(-1) - audit.min(-1)
    normalized = np.where(spread > 0, regret / np.where(spread > 0, spread, 1.0), np.nan)
    decided = np.array([election.decided(a, e) for a, e in zip(audit, se)], bool)
    on = ran & decided
    valid = ran & np.isfinite(normalized)
    return {"phases": int(len(audit)), "distilled": float(ran.mean()),
            "hit_rate_decided": float(hit[on].mean()) if on.any() else np.nan,
            "regret_normalized": float(normalized[valid].mean()) if valid.any() else np.nan}


def audit_noise(audit, audit_se) -> dict:
    """The audit's own noise against what it must tell apart, medians over phases: the standard
    error of a member's audited mean, and the audited best-worst spread."""
    audit, se = np.asarray(audit, np.float64), np.asarray(audit_se, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(audit, -1) - np.nanmin(audit, -1)
        return {"audit_se": float(np.nanmedian(se)), "spread": float(np.nanmedian(spread))}


# --------------------------------------------------------------------------------------
# numbers in the tables


def fmt_steps(steps) -> str:
    if steps is None:
        return "—"
    if steps >= 1e6:
        return f"{steps / 1e6:.3g}M"
    if steps >= 1e4:
        return f"{steps / 1e3:.4g}k"
    return f"{steps:,}"


def fmt(x: float) -> str:
    if not np.isfinite(x):
        return "nan"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def fmt_interval(point: float, low: float, high: float) -> str:
    return f"{fmt(point)} | [{fmt(low)}, {fmt(high)}]"
