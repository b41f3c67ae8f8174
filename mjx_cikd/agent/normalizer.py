"""The observation normaliser shared by all members.

Running mean and variance over every observation the envs produced (Chan et al.'s parallel
update, one batch of N rows per step). Members see the same normalised inputs, which is what lets
distillation compare them state by state. Disabled, it is the identity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

CLIP = 10.0


@struct.dataclass
class Normalizer:
    mean: jax.Array
    var: jax.Array
    count: jax.Array
    enabled: bool = struct.field(pytree_node=False, default=True)


def init(obs_size: int, enabled: bool = True) -> Normalizer:
    return Normalizer(mean=jnp.zeros(obs_size), var=jnp.ones(obs_size),
                      count=jnp.asarray(1e-4), enabled=enabled)


def update(norm: Normalizer, obs: jax.Array) -> Normalizer:
    if not norm.enabled:
        return norm
    b_mean, b_var, b_count = obs.mean(0), obs.var(0), obs.shape[0]
    total = norm.count + b_count
    delta = b_mean - norm.mean
    mean = norm.mean + delta * b_count / total
    m2 = norm.var * norm.count + b_var * b_count + delta**2 * norm.count * b_count / total
    return norm.replace(mean=mean, var=m2 / total, count=total)


def normalize(norm: Normalizer, obs: jax.Array) -> jax.Array:
    if not norm.enabled:
        return obs
    return jnp.clip((obs - norm.mean) / jnp.sqrt(norm.var + 1e-8), -CLIP, CLIP)
