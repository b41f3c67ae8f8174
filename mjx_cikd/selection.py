"""Policy selection by index masks, and the recent-return statistic R_k (paper section 4.3).

`member[N]` says which member runs each env slot; a slot draws a new member uniformly when it
starts an episode. Acting computes all K members' actions and picks with a one-hot mask, so every
shape is static. Each member keeps the returns of its last M finished training episodes in a ring;
R_k is their mean (undefined, NaN, before its first episode).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


def draw_members(key: jax.Array, num_envs: int, ensemble_size: int) -> jax.Array:
    return jax.random.randint(key, (num_envs,), 0, ensemble_size)


def redraw_finished(key, member: jax.Array, finished: jax.Array, ensemble_size: int):
    """Slots whose episode just ended draw their next member uniformly."""
    return jnp.where(finished, draw_members(key, member.shape[0], ensemble_size), member)


def select_actions(actions: jax.Array, member: jax.Array) -> jax.Array:
    """actions[K, N, A], member[N] -> [N, A] via a one-hot mask over K."""
    mask = jax.nn.one_hot(member, actions.shape[0], dtype=actions.dtype)  # [N, K]
    return jnp.einsum("nk,kna->na", mask, actions)


@struct.dataclass
class ReturnRing:
    returns: jax.Array  # [K, M]
    count: jax.Array  # [K] episodes finished so far


def init_ring(ensemble_size: int, window: int) -> ReturnRing:
    return ReturnRing(returns=jnp.zeros((ensemble_size, window)),
                      count=jnp.zeros(ensemble_size, jnp.int32))


def record(ring: ReturnRing, member: jax.Array, ep_return: jax.Array, finished: jax.Array):
    """Insert every finished episode's return into its member's ring, vectorised.

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
    returns = ring.returns.at[row, slot].set(ep_return, mode="drop")
    return ReturnRing(returns=returns, count=ring.count + n_new)


def recent_mean(ring: ReturnRing) -> jax.Array:
    """R_k: mean of the last min(count, M) returns; NaN for a member with none."""
    m = ring.returns.shape[1]
    filled = jnp.minimum(ring.count, m)
    valid = jnp.arange(m)[None, :] < filled[:, None]
    total = jnp.sum(jnp.where(valid, ring.returns, 0.0), axis=1)
    return jnp.where(filled > 0, total / jnp.maximum(filled, 1), jnp.nan)
