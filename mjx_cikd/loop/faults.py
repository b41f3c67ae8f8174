"""Numeric faults: where a run's losses, parameters or returns turn non-finite.

The check runs inside the compiled chunk, on values the chunk has anyway (the per-iteration
losses and evaluation returns of its log) and on one reduction of the members' parameters per
iteration (per iteration, so that a member whose parameters turned NaN is named before its NaN
actions reach the shared buffer and every member's losses), and comes back as one small
`Faults` record per seed: the first iteration of the chunk at which each quantity of each member
was non-finite. The host turns it into a message naming the env step, the seed, the member
and the quantity (`describe`), and the run stops or rolls back.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

NONE = -1  # no fault


class Faults(NamedTuple):
    """Per member [K]: the chunk's first iteration with a non-finite value, NONE if none."""

    loss: jax.Array  # a SAC loss, the temperature, the entropy or the Q estimate
    params: jax.Array  # a parameter of its actor, critics or temperature
    returns: jax.Array  # an evaluation return (never the audit's: it is for the record only)


def first_bad(bad: jax.Array) -> jax.Array:
    """[T, K] bool -> [K]: the first t where bad, NONE where never."""
    return jnp.where(bad.any(0), jnp.argmax(bad, axis=0), NONE).astype(jnp.int32)


def check(metrics: dict, learning: jax.Array, bad_returns: jax.Array,
          bad_params: jax.Array) -> Faults:
    """metrics: name -> [T, K] per iteration, read where `learning` [T]; bad_returns [T, K]: a
    measured return was non-finite; bad_params [T, K]: a parameter was, after the iteration."""
    bad_loss = jnp.zeros(bad_returns.shape, bool)
    for v in metrics.values():
        bad_loss = bad_loss | (~jnp.isfinite(v) & learning[:, None])
    return Faults(loss=first_bad(bad_loss), params=first_bad(bad_params),
                  returns=first_bad(bad_returns))


def any_fault(faults: Faults) -> np.ndarray:
    """Host side: [S] whether each seed had a fault in the chunk."""
    return np.stack([np.asarray(f) != NONE for f in faults]).any(axis=(0, 2))


def describe(faults: Faults, seed: int, first_iteration: int, num_envs: int) -> dict:
    """The earliest fault of seed `seed` (a Faults over seeds, on the host) as a record:
    env_steps, seed, member, quantity. At one iteration a parameter comes first: a NaN member
    makes every member's losses NaN through the shared buffer."""
    found = []
    for rank, (quantity, at) in enumerate(faults._asdict().items()):
        at = np.asarray(at)[seed]
        for member in np.flatnonzero(at != NONE):
            found.append(((first_iteration + int(at[member]) + 1) * num_envs,
                          quantity != "params", rank, int(member), quantity))
    env_steps, _, _, member, quantity = min(found)
    return dict(event="fault", env_steps=env_steps, seed=seed, member=member, quantity=quantity)
