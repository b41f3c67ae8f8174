"""n-step returns: what a SAC update reads of the replay rows (`--n_step`, issue 29).

An update's `Sample` holds, per drawn row t of env i, its observation and action, the discounted
sum of up to n rewards of that env, the observation it bootstraps from and the bootstrap's
discount:

    reward = sum_{j<m} gamma^j r_{t+j},  next_obs = s'_{t+m-1},  discount = gamma^m (1 - d_{t+m-1})

where m <= n stops at the first of the n steps that ends its episode: a termination (d = 1:
nothing to bootstrap from) or a truncation by the time limit (bootstrapped from its final
observation, as a one-step target is). n = 1 is SAC's one-step target (Haarnoja et al. 2018,
Eq. 6: discount gamma (1 - d)). As in FastTD3 and PQL, the sum holds the rewards only: the
entropy bonuses of the n - 1 intermediate steps are left out of the soft return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.agent import replay


class Sample(NamedTuple):
    """What a SAC update reads, [..., B] each (`returns.py`: reward and discount over m steps)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # sum_{j<m} gamma^j r_{t+j}
    next_obs: jax.Array  # the observation the target bootstraps from
    discount: jax.Array  # gamma^m (1 - terminated): 0 where the episode terminated within m


def one_step(rows: replay.Batch, gamma: float) -> Sample:
    """The one-step target's sample of stored rows (n = 1)."""
    return Sample(obs=rows.obs, action=rows.action, reward=rows.reward,
                  next_obs=rows.next_obs, discount=gamma * (1.0 - rows.terminated))


def n_step(runs: replay.Batch, gamma: float) -> Sample:
    """`runs`: n consecutive transitions of one env per sample, [n, ...] each (row t first). The
    sum stops after the first transition that ends its episode (terminated or truncated)."""
    n = runs.reward.shape[0]
    ended = jnp.maximum(runs.terminated, runs.truncated)
    # alive[j]: no transition before j ended its episode (alive[0] = 1)
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(ended[:1]), 1.0 - ended[:-1]]), axis=0)
    powers = gamma ** jnp.arange(n, dtype=jnp.float32).reshape((n,) + (1,) * (ended.ndim - 1))
    last = (jnp.sum(alive, axis=0) - 1).astype(jnp.int32)  # m - 1

    def at_last(x: jax.Array) -> jax.Array:
        index = last.reshape((1,) + last.shape + (1,) * (x.ndim - 1 - last.ndim))
        return jnp.take_along_axis(x, index, axis=0)[0]

    steps = (last + 1).astype(jnp.float32)
    return Sample(obs=runs.obs[0], action=runs.action[0],
                  reward=jnp.sum(alive * powers * runs.reward, axis=0),
                  next_obs=at_last(runs.next_obs),
                  discount=gamma ** steps * (1.0 - at_last(runs.terminated)))


Sampler = Callable[[replay.Replay, norm_lib.Normalizer, jax.Array, tuple[int, ...]], Sample]


def make_sampler(n: int, gamma: float, stride: int) -> Sampler:
    """-> sample(buffer, normaliser, key, shape): a `Sample` of `shape` (e.g. [K, B]: one batch
    per member), drawn uniformly, its observations normalised with the shared normaliser's current
    statistics. `stride`: the envs whose rows this buffer holds (one write per vector step)."""
    if n == 1:
        return lambda buf, norm, key, shape: one_step(replay.sample(buf, norm, key, shape),
                                                      gamma)

    def sample(buf: replay.Replay, norm: norm_lib.Normalizer, key: jax.Array,
               shape: tuple[int, ...]) -> Sample:
        first = replay.sample_runs(buf, key, shape, n, stride)
        ahead = stride * jnp.arange(n).reshape((n,) + (1,) * len(shape))
        out = n_step(replay.gather(buf, (first + ahead) % buf.capacity), gamma)
        return out._replace(obs=norm_lib.normalize(norm, out.obs),
                            next_obs=norm_lib.normalize(norm, out.next_obs))

    return sample
