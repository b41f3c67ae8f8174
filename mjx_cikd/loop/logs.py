"""What the loop reports: an iteration's log (`IterationLog`, stacked over a chunk by `lax.scan`,
holding its phase point's `PhaseOutcome`, which `cikd/phases.py` fills) and what the host reads
after a chunk (`ChunkLog`, made by `summarise`). Named records, never positional tuples
(`host/records.py` turns them into metrics.jsonl)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.cikd import election
from mjx_cikd.cikd.phases import PhaseOutcome
from mjx_cikd.loop import faults


class IterationLog(NamedTuple):
    learning: jax.Array  # the SAC updates ran
    metrics: dict  # name -> [K]
    phase: PhaseOutcome
    eval_due: jax.Array
    eval_return: jax.Array  # [K], NaN when no evaluation was due
    eval_se: jax.Array  # [K] its standard errors
    finite: jax.Array  # [K] each member's parameters are finite after the iteration


class ChunkLog(NamedTuple):
    """What the host reads after a chunk; per-iteration arrays have a leading [T] axis."""

    metrics: dict  # name -> [K], mean over the chunk's update steps
    recent_return: jax.Array  # [K] R_k (train_returns) at the end of the chunk (NaN: none yet)
    episodes: jax.Array  # [K] full training episodes finished so far
    phase: PhaseOutcome  # [T] each
    eval_due: jax.Array  # [T]
    eval_return: jax.Array  # [T, K]
    eval_se: jax.Array  # [T, K]
    faults: faults.Faults  # [K] each: where a loss, parameter or return turned non-finite
    replicas_agree: jax.Array  # over several devices: they hold the same parameters (else True)


def summarise(logs: IterationLog, ring: election.ReturnRing,
              replicas_agree: jax.Array) -> ChunkLog:
    """A chunk's iteration logs ([T] each) and its final return ring as the host reads them:
    the metrics averaged over the iterations that updated, and where a value turned
    non-finite."""
    weight = logs.learning.astype(jnp.float32)[:, None]
    denom = jnp.maximum(weight.sum(0), 1.0)
    metrics = {name: (v * weight).sum(0) / denom for name, v in logs.metrics.items()}
    # the audit is for the record only: whatever it measures never stops or rolls back a run
    bad_returns = logs.eval_due[:, None] & ~jnp.isfinite(logs.eval_return)
    found = faults.check(logs.metrics, logs.learning, bad_returns, ~logs.finite)
    return ChunkLog(metrics=metrics, recent_return=election.recent_mean(ring),
                    episodes=ring.count, phase=logs.phase, eval_due=logs.eval_due,
                    eval_return=logs.eval_return, eval_se=logs.eval_se, faults=found,
                    replicas_agree=replicas_agree)
