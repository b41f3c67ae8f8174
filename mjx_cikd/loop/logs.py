"""What the loop reports: one iteration's phase point (`PhaseOutcome`), an iteration's log
(`IterationLog`, stacked over a chunk by `lax.scan`) and what the host reads after a chunk
(`ChunkLog`). Named records, never positional tuples (`host/records.py` turns them into
metrics.jsonl)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.cikd import distillation
from mjx_cikd.loop import faults


class PhaseOutcome(NamedTuple):
    """What one iteration's phase point did; `skipped(k)` is every iteration without one."""

    due: jax.Array  # a phase point fell on this iteration
    ran: jax.Array  # the students moved (a teacher existed and the schedule wanted it)
    teacher: jax.Array  # the elected member, -1 when none was eligible (or "(extra)")
    statistic: jax.Array  # [K] the R_k the election ranked
    statistic_se: jax.Array  # [K] its standard error (NaN for reward_rate)
    confident: jax.Array  # the elected member led beyond its noise (--election_rule confident)
    train_returns: jax.Array  # [K] every cheap statistic, so one run scores each of them
    reward_rate: jax.Array  # [K]
    staleness: jax.Array  # [K] phase points since the train_returns episodes began (mean)
    audit: jax.Array  # [K] each member's deterministic return before the phase (--audit_election)
    audit_se: jax.Array  # [K] its standard error over --audit_episodes
    stats: distillation.PhaseStats  # [K] each, and the steps taken

    @staticmethod
    def skipped(k: int) -> "PhaseOutcome":
        nan = jnp.full(k, jnp.nan)
        return PhaseOutcome(
            due=jnp.asarray(False), ran=jnp.asarray(False), teacher=jnp.asarray(-1, jnp.int32),
            statistic=nan, statistic_se=nan, confident=jnp.asarray(False), train_returns=nan,
            reward_rate=nan, staleness=nan, audit=nan, audit_se=nan,
            stats=distillation.PhaseStats(nan, nan, nan, nan, jnp.asarray(0, jnp.int32)))


class IterationLog(NamedTuple):
    learning: jax.Array  # the SAC updates ran
    metrics: dict  # name -> [K]
    phase: PhaseOutcome
    eval_due: jax.Array
    eval_return: jax.Array  # [K], NaN when no evaluation was due
    finite: jax.Array  # [K] each member's parameters are finite after the iteration


class ChunkLog(NamedTuple):
    """What the host reads after a chunk; per-iteration arrays have a leading [T] axis."""

    metrics: dict  # name -> [K], mean over the chunk's update steps
    recent_return: jax.Array  # [K] R_k (train_returns) at the end of the chunk (NaN: none yet)
    episodes: jax.Array  # [K] full training episodes finished so far
    phase: PhaseOutcome  # [T] each
    eval_due: jax.Array  # [T]
    eval_return: jax.Array  # [T, K]
    faults: faults.Faults  # [K] each: where a loss, parameter or return turned non-finite
    replicas_agree: jax.Array  # over several devices: they hold the same parameters (else True)
