"""Teacher election (paper section 4.4): the statistic R_k each member is ranked by, and the rule
that turns it into a teacher.

Statistics (`--election_metric`):
  - train_returns, the paper's: the mean return of member k's last M finished training episodes
    (a ring per member). An env slot's first episode under staggered clocks is shortened, so it
    never enters the ring. Each entry remembers the phase point at which its episode began, so
    the age of the policies behind R_k is measured (`staleness`), not guessed: at N envs an
    episode lasts N * T env steps and may span many phases.
  - reward_rate: member k's mean reward per env step over the steps its policy acted since the
    last phase point, times T to read as a return. It exists at any N and any interval.
  - eval: a deterministic evaluation before the phase (the authors' `--cpo-distill-perf-metric
    eval`); computed by the trainer, which owns the evaluation envs.
A member without a value (NaN) cannot win. The rule (`--teacher`): best (argmax, ties to the
lowest index), worst (argmin: the authors' `--cpo-bad-distill`) or random (uniform over the
eligible members: `--cpo-random-distill`). The authors' adaptive schedule distils only when the
best member's softmax weight softmax(R / temperature) reaches a threshold
(`train_ensemble_sac.py:407-414`, `--cpo-distill-schedule ada`; teacher rules: :429-437).
Line numbers are of pfnet-research/piekd at ddd9cc5.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_cikd.agent.masks import nan_argmax


@struct.dataclass
class ReturnRing:
    returns: jax.Array  # [K, M]
    start_phase: jax.Array  # [K, M] the phase point count when each episode began
    count: jax.Array  # [K] full episodes finished so far


def init_ring(ensemble_size: int, window: int) -> ReturnRing:
    return ReturnRing(returns=jnp.zeros((ensemble_size, window)),
                      start_phase=jnp.zeros((ensemble_size, window)),
                      count=jnp.zeros(ensemble_size, jnp.int32))


def record(ring: ReturnRing, member: jax.Array, ep_return: jax.Array, finished: jax.Array,
           start_phase: jax.Array) -> ReturnRing:
    """Insert every finished episode's return (and the phase count at its start) into its
    member's ring, vectorised.

    Episodes of one member finishing in the same step are ordered by env index (a lower index
    counts as earlier); if more than M finish at once, only the last M land. Each landing
    episode gets its own ring slot, so the scatter has no repeated index.
    """
    k, m = ring.returns.shape
    onehot = jax.nn.one_hot(member, k, dtype=jnp.int32) * finished[:, None]  # [N, K]
    rank = (jnp.cumsum(onehot, axis=0) - onehot)[jnp.arange(member.shape[0]), member]  # [N]
    n_new = onehot.sum(0)  # [K]
    lands = finished & (rank >= n_new[member] - m)
    slot = (ring.count[member] + rank) % m
    row = jnp.where(lands, member, k)  # k is out of bounds: dropped
    return ReturnRing(returns=ring.returns.at[row, slot].set(ep_return, mode="drop"),
                      start_phase=ring.start_phase.at[row, slot].set(
                          start_phase.astype(jnp.float32), mode="drop"),
                      count=ring.count + n_new)


def _ring_mean(ring: ReturnRing, values: jax.Array) -> jax.Array:
    m = values.shape[1]
    filled = jnp.minimum(ring.count, m)
    valid = jnp.arange(m)[None, :] < filled[:, None]
    total = jnp.sum(jnp.where(valid, values, 0.0), axis=1)
    return jnp.where(filled > 0, total / jnp.maximum(filled, 1), jnp.nan)


def recent_mean(ring: ReturnRing) -> jax.Array:
    """R_k (train_returns): mean of the last min(count, M) returns; NaN for a member with none."""
    return _ring_mean(ring, ring.returns)


def recent_se(ring: ReturnRing) -> jax.Array:
    """The standard error of R_k (train_returns): the sample std (ddof 1) of the last min(count,
    M) returns over the square root of their number; NaN below two."""
    m = ring.returns.shape[1]
    filled = jnp.minimum(ring.count, m)
    valid = jnp.arange(m)[None, :] < filled[:, None]
    mean = _ring_mean(ring, ring.returns)
    sq = jnp.sum(jnp.where(valid, (ring.returns - mean[:, None]) ** 2, 0.0), axis=1)
    return jnp.where(filled > 1, jnp.sqrt(sq / jnp.maximum(filled - 1, 1) / jnp.maximum(
        filled, 1)), jnp.nan)


def staleness(ring: ReturnRing, phases: jax.Array) -> jax.Array:
    """How many phase points ago, on average, the episodes behind R_k began; NaN without any."""
    return phases - _ring_mean(ring, ring.start_phase)


@struct.dataclass
class RewardRate:
    reward: jax.Array  # [K] reward summed over member k's env steps since the last phase point
    steps: jax.Array  # [K] those env steps


def init_rate(ensemble_size: int) -> RewardRate:
    return RewardRate(reward=jnp.zeros(ensemble_size), steps=jnp.zeros(ensemble_size))


def accumulate(rate: RewardRate, member: jax.Array, reward: jax.Array,
               acting: jax.Array) -> RewardRate:
    """Add one vector step's rewards to the member that acted in each env (`acting`: the
    members' policies chose the actions, i.e. past the uniform random warm-up)."""
    onehot = jax.nn.one_hot(member, rate.reward.shape[0]) * acting  # [N, K]
    return RewardRate(reward=rate.reward + reward @ onehot, steps=rate.steps + onehot.sum(0))


def reward_rate(rate: RewardRate, episode_length: int) -> jax.Array:
    """Mean reward per env step x T; NaN for a member that has not acted since the last phase."""
    return jnp.where(rate.steps > 0, rate.reward / jnp.maximum(rate.steps, 1) * episode_length,
                     jnp.nan)


def elect_teacher(scores: jax.Array, rule: str = "best",
                  key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """-> (teacher index, whether any member is eligible). NaN scores are not eligible."""
    eligible = ~jnp.isnan(scores)
    if rule == "best":
        teacher = nan_argmax(scores)
    elif rule == "worst":
        teacher = jnp.argmin(jnp.where(eligible, scores, jnp.inf))
    elif rule == "random":
        teacher = jax.random.choice(key, scores.shape[0], p=eligible / jnp.maximum(
            eligible.sum(), 1))
    else:
        raise ValueError(f"unknown teacher rule {rule!r}")
    return teacher.astype(jnp.int32), eligible.any()


def runner_up(scores: jax.Array, teacher: jax.Array) -> jax.Array:
    """The best eligible member other than `teacher` (-1 when there is none)."""
    others = jnp.where(jnp.arange(scores.shape[-1]) == teacher, jnp.nan, scores)
    return jnp.where(jnp.isfinite(others).any(-1), nan_argmax(others), -1).astype(jnp.int32)


def leads(scores: jax.Array, se: jax.Array, teacher: jax.Array, z: float) -> jax.Array:
    """`--election_rule confident`: the teacher leads the runner-up by more than z standard
    errors of the difference, sqrt(se_t^2 + se_r^2) (a lone eligible member leads; a NaN
    standard error never does)."""
    second = runner_up(scores, teacher)
    r = jnp.maximum(second, 0)
    gap = scores[teacher] - scores[r]
    return (second < 0) | (gap > z * jnp.sqrt(se[teacher] ** 2 + se[r] ** 2))


def softmax_weights(scores: jax.Array, temperature: float) -> jax.Array:
    """softmax(R / temperature) over the eligible members (the authors' selection weights);
    uniform when none is eligible."""
    eligible = ~jnp.isnan(scores)
    logits = jnp.where(eligible, scores / temperature, -jnp.inf)
    weights = jax.nn.softmax(jnp.where(eligible.any(), logits, 0.0))
    return weights


def ada_wants_phase(scores: jax.Array, temperature: float, threshold: float) -> jax.Array:
    """The authors' adaptive schedule: distil when one member's softmax weight >= threshold."""
    return (softmax_weights(scores, temperature).max() >= threshold) & (~jnp.isnan(scores)).any()


def audit_score(audit, chosen) -> tuple[np.ndarray, np.ndarray]:
    """On the host, against the audit ([K], or [P, K] for P phases): whether the `chosen` member
    was the audited best (argmax, NaN never, ties to the lowest index) and its regret, the best
    audited return minus the chosen member's."""
    audit = np.asarray(audit, dtype=np.float64)
    chosen = np.asarray(chosen, dtype=np.int64)
    picked = np.take_along_axis(audit, chosen[..., None], axis=-1)[..., 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a phase with no audit at all: NaN
        regret = np.nanmax(audit, axis=-1) - picked
    return chosen == np.argmax(np.where(np.isnan(audit), -np.inf, audit), axis=-1), regret


def decided(audit, audit_se, z: float = 2.0) -> bool:
    """On the host, for one phase's audit ([K] means and standard errors): whether the audited
    best leads the runner-up by more than z standard errors of the difference, i.e. whether the
    audit can tell who is best at all (a hit means something only then)."""
    audit, se = np.asarray(audit, np.float64), np.asarray(audit_se, np.float64)
    order = np.argsort(np.where(np.isnan(audit), -np.inf, audit))[::-1]
    if np.isfinite(audit).sum() < 2:
        return False
    best, second = order[0], order[1]
    return bool(audit[best] - audit[second] > z * np.sqrt(se[best] ** 2 + se[second] ** 2))


def regret_normalized(audit, regret) -> float:
    """Regret over the audited best-worst spread (0: the best was chosen, 1: the worst); NaN
    when the members' audited returns do not differ."""
    audit = np.asarray(audit, np.float64)
    if not np.isfinite(audit).any():  # no audit at all (a non-finite one is for the record)
        return float("nan")
    spread = np.nanmax(audit) - np.nanmin(audit)
    return float(regret / spread) if spread > 0 else float("nan")
