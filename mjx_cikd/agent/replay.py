"""The shared replay buffer: a fixed-size ring on the device, pure init/add/sample.

One write of N rows per vector step at a modulo index (`dynamic_update_slice`); the capacity is a
multiple of N so a write never wraps. Observations are stored raw: the shared normaliser is
applied at sampling time, with its current statistics (`sample`, the one sampler of the SAC
updates and the distillation). Each member draws its own batch. The rows are one pytree
(`Replay.data`, a `Batch` of [C, ...] arrays): what splits, saves or moves them maps over it.
Env i's consecutive transitions lie N rows apart (row t N + i of the ring, modulo C), so n of
them in a row can be read where all n have been written (`sample_runs`: n-step returns).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.config import ConfigError


class Batch(NamedTuple):
    """Transitions, [..., B] each: what a SAC update and a distillation step read."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array  # float: 1 stops the bootstrap, truncation does not
    truncated: jax.Array  # float: 1 where the time limit ended the episode (n-step returns stop)


@struct.dataclass
class Replay:
    """The ring: `data` holds every transition field as one pytree of [C, ...] rows (shaped by
    a dummy `Batch`, as Brax's `UniformSamplingQueue(dummy_data_sample=...)` is), so that code
    which splits, saves or moves the rows maps over `data` and never names its fields."""

    data: Batch  # [C, ...] each
    ptr: jax.Array  # next row to write
    size: jax.Array  # rows holding data

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def dummy(obs_size: int, action_size: int) -> Batch:
    """One transition of zeros: the shapes and dtypes of a row (float32 everywhere)."""
    zeros = lambda *shape: jnp.zeros(shape, jnp.float32)  # noqa: E731
    return Batch(obs=zeros(obs_size), action=zeros(action_size), reward=zeros(),
                 next_obs=zeros(obs_size), terminated=zeros(), truncated=zeros())


def nbytes(capacity: int, obs_size: int, action_size: int) -> int:
    """Bytes the buffer's arrays take on the device."""
    row = jax.eval_shape(lambda: dummy(obs_size, action_size))
    return capacity * int(sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(row)))


def init(capacity: int, obs_size: int, action_size: int) -> Replay:
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *x.shape), x.dtype),
                        dummy(obs_size, action_size))
    return Replay(data=data, ptr=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(buf: Replay, rows: Batch) -> Replay:
    """Write N rows at `ptr`; the oldest rows are overwritten once the ring is full."""
    n = rows.reward.shape[0]
    data = jax.tree.map(lambda dst, src: jax.lax.dynamic_update_slice_in_dim(
        dst, src.astype(dst.dtype), buf.ptr, axis=0), buf.data, rows)
    return buf.replace(data=data, ptr=(buf.ptr + n) % buf.capacity,
                       size=jnp.minimum(buf.size + n, buf.capacity))


def sample_indices(buf: Replay, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.randint(key, shape, 0, jnp.maximum(buf.size, 1))


def sample_runs(buf: Replay, key: jax.Array, shape: tuple[int, ...], n: int,
                stride: int) -> jax.Array:
    """First rows of runs of n transitions of one env (rows `stride` = N apart), uniform over the
    rows whose n - 1 successors have been written: counted from the oldest row (`ptr - size`,
    modulo C), all but the newest (n - 1) N rows."""
    span = jnp.maximum(buf.size - (n - 1) * stride, 1)
    return (buf.ptr - buf.size + jax.random.randint(key, shape, 0, span)) % buf.capacity


def gather(buf: Replay, idx: jax.Array) -> Batch:
    """The rows `idx` as stored (raw observations)."""
    return jax.tree.map(lambda x: x[idx], buf.data)


def sample(buf: Replay, norm: norm_lib.Normalizer, key: jax.Array, shape) -> Batch:
    """A batch of `shape` (e.g. [K, B]: one batch per member) drawn uniformly from the filled
    rows, its observations normalised with the shared normaliser's current statistics."""
    rows = gather(buf, sample_indices(buf, key, shape))
    return rows._replace(obs=norm_lib.normalize(norm, rows.obs),
                         next_obs=norm_lib.normalize(norm, rows.next_obs))


def check_fits(capacity: int, obs_size: int, action_size: int, copies: int = 1,
               devices: int = 1) -> int:
    """Bytes of `copies` buffers, spread over `devices`; a ConfigError if a device cannot hold
    its share."""
    total = copies * nbytes(capacity, obs_size, action_size)
    limit = device_memory_bytes()
    if limit is not None and total / devices > 0.9 * limit:
        raise ConfigError(f"replay buffer needs {total / devices / 2**30:.2f} GiB per device but "
                          f"the device has {limit / 2**30:.2f} GiB; lower --buffer_size or "
                          f"--num_seeds")
    return total


def device_memory_bytes() -> int | None:
    dev = jax.devices()[0]
    try:
        stats = dev.memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory stats
        stats = {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    if dev.platform == "cpu":
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    return None


def arrays_nbytes(buf: Replay) -> int:
    """Bytes actually held by the buffer's data arrays (for the benchmark's check)."""
    return int(sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(buf.data)))
