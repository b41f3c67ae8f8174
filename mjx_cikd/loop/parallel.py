"""One run over several devices: a one-axis device mesh, and what the loop does on it.

`--devices D --parallel data`: the N envs, their episode bookkeeping and the replay buffer's rows
are split over the mesh's `data` axis (`state_specs`, chosen by the state's structure:
`state.env_axis`); the whole chunk runs under one `shard_map`, so every device steps its N/D
envs and writes its own buffer shard of C/D rows. Each member's batch of B is drawn as B/D rows
on every device from its own shard, and the gradients are averaged over `data` before the
optimiser (`optimizer`), so every device holds the same parameters; the ensemble axis never
mixes members. What the election, the policy selection and the normaliser
read is gathered from all devices (`gather`); the distillation is data-parallel the same way;
the evaluation runs whole on every device (same keys, same result). Randomness that must differ
per device (actions, resets, member draws, batches) folds in the device's index (`local_key`).

`--parallel seeds`: whole seeds on devices (S divisible by D), no collectives at all.

Several hosts: every process runs this same program after `join` (jax.distributed); the mesh
spans all processes' devices, each process builds the state locally and `place` hands every
device its part; only process 0 logs (`primary`), every process takes part in a checkpoint.

Outside a data-parallel chunk every function here is the identity: the 1-device loop traces
exactly what it traced before.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mjx_cikd.config import Config, ConfigError

AXIS = "data"


def join(coordinator: str, num_processes: int, process_id: int) -> None:
    """Make this process one of a run's `num_processes` (jax.distributed, before any other JAX
    call); `coordinator` "auto": the cluster's own environment says (SLURM, Open MPI, ...)."""
    try:
        if coordinator == "auto":
            jax.distributed.initialize()
        else:
            jax.distributed.initialize(coordinator_address=coordinator,
                                       num_processes=num_processes, process_id=process_id)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"--coordinator {coordinator}: cannot join the run "
                          f"({str(err).splitlines()[0][:160]})") from None


def primary() -> bool:
    """Whether this process logs and reports (process 0 of a run over several)."""
    return jax.process_index() == 0


def place(tree, shardings):
    """`tree` (the same values on every process) as arrays laid out by `shardings`; over
    several processes each builds only its own devices' parts."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def put(x, sharding):
        key = jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        host = np.asarray(jax.random.key_data(x) if key else x)
        out = jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
        return jax.random.wrap_key_data(out) if key else out

    return jax.tree.map(put, tree, shardings)


def data_parallel(config: Config) -> bool:
    return config.devices > 1 and config.parallel == "data"


def devices_of(config: Config) -> list:
    """The run's devices, or a ConfigError when this process does not see that many."""
    found = jax.devices()
    if config.devices > len(found):
        raise ConfigError(f"--devices {config.devices}: JAX sees {len(found)} device(s) "
                          f"({found[0].platform}); on a CPU, XLA_FLAGS="
                          f"--xla_force_host_platform_device_count={config.devices} makes more")
    return found[:config.devices]


def check(config: Config, task) -> None:
    """A ConfigError, before anything is built, for a device layout this run cannot have."""
    if config.devices > 1:
        devices_of(config)
    if config.devices > 1 and task.fixed_starts:  # envs.resolve_impl refuses it before this
        raise ConfigError("MuJoCo Warp runs on one device: use --impl jax with --devices")


def mesh(config: Config) -> Mesh:
    return Mesh(np.asarray(devices_of(config)), (AXIS,))


# --- inside the chunk ----------------------------------------------------------------------


class Parallel:
    """What the loop body calls where devices meet; the identity on one device."""

    def __init__(self, config: Config):
        self.on = data_parallel(config)
        self.count = config.devices if self.on else 1

    def local_key(self, key: jax.Array) -> jax.Array:
        """A key of this device's own (for its envs, actions and batches)."""
        return jax.random.fold_in(key, jax.lax.axis_index(AXIS)) if self.on else key

    def local(self, size: int) -> int:
        """This device's share of a global batch or env count."""
        return size // self.count

    def gather(self, tree):
        """Per-env arrays of this device -> of all N envs, in device order."""
        if not self.on:
            return tree
        return jax.tree.map(lambda x: jax.lax.all_gather(x, AXIS, axis=0, tiled=True), tree)

    def mean(self, tree):
        return jax.tree.map(lambda x: jax.lax.pmean(x, AXIS), tree) if self.on else tree

    def total(self, x):
        return jax.lax.psum(x, AXIS) if self.on else x

    def optimizer(self, tx: optax.GradientTransformation) -> optax.GradientTransformation:
        """`tx` on gradients averaged over the devices (each device's batch is a part of B).
        The same chain on one device (without the average), so that an optimiser state, and a
        checkpoint, has one structure whatever the number of devices."""
        def update(grads, state, params=None):
            return (jax.lax.pmean(grads, AXIS) if self.on else grads), state

        return optax.chain(optax.GradientTransformation(lambda params: optax.EmptyState(),
                                                        update), tx)


# --- around the chunk ---------------------------------------------------------------------


def state_specs(layout) -> Any:
    """A PartitionSpec per state leaf (seeds on the leading axis), from the state's layout (a
    pytree of bools beside it, `state.env_axis`): the leaves over env slots or replay rows
    split over `data` on their second axis, everything else replicated."""
    return jax.tree.map(lambda split: P(None, AXIS) if split else P(), layout)


def shardings(config: Config, layout) -> Any:
    """NamedShardings of the state (`layout` as in `state_specs`): by `state_specs` (data) or
    by seed (seeds)."""
    m = mesh(config)
    if config.parallel == "seeds":
        return jax.tree.map(lambda _: NamedSharding(m, P(AXIS)), layout)
    return jax.tree.map(lambda s: NamedSharding(m, s), state_specs(layout),
                        is_leaf=lambda s: isinstance(s, P))


def replicated(config: Config) -> NamedSharding:
    return NamedSharding(mesh(config), P())


def sharded_chunk(config: Config, chunk, layout):
    """The seeds-vmapped chunk over the mesh: under `shard_map` (data; the schedule and the log
    replicated), or as it is, the state's seed axis placed on the devices (seeds). To jit, with
    the state's shardings as its output's too (`compiled.build`): XLA otherwise hands back the
    zero-size leaves (MJX's empty `history`, `mocap_pos`, ... of a DM Control task) replicated,
    and the next chunk, compiled for them split, refuses them."""
    if config.parallel == "seeds":
        return chunk
    specs = state_specs(layout)
    return jax.shard_map(chunk, mesh=mesh(config), in_specs=(specs, P()),
                         out_specs=(specs, P(), P()), check_vma=False)


def shards(config: Config) -> int:
    """How many shards the replay buffer is kept in (its rows' layout in a checkpoint)."""
    return config.devices if data_parallel(config) else 1


def relayout(buffer, num_envs: int, old: int, new: int):
    """A replay buffer [S, C, ...] saved in `old` shards as it is laid out in `new`. Each shard
    keeps its own ring of N/D rows per vector step, so the saved array is device-major
    [D, steps, N/D]; the 1-device ring is [steps, N] with the envs in device order. Rows, `ptr`
    and `size` are mapped exactly; which rows a resumed run then samples depends on its layout."""
    if old == new:
        return buffer

    def rows(x):
        s, c, rest = x.shape[0], x.shape[1], x.shape[2:]
        steps = c // num_envs
        ring = np.swapaxes(np.asarray(x).reshape(s, old, steps, num_envs // old, *rest), 1, 2)
        ring = ring.reshape(s, steps, new, num_envs // new, *rest)
        return jnp.asarray(np.swapaxes(ring, 1, 2).reshape(s, c, *rest))

    return buffer.replace(data=jax.tree.map(rows, buffer.data), ptr=buffer.ptr * old // new,
                          size=buffer.size * old // new)


def replicas_agree(members) -> jax.Array:
    """Inside the data-parallel chunk: whether every device holds the same parameters (a sum of
    their bits, all-gathered and compared)."""
    bits = [jnp.sum(jax.lax.bitcast_convert_type(x, jnp.uint32).astype(jnp.uint32))
            for x in jax.tree.leaves(members) if x.dtype == jnp.float32]
    digest = jnp.stack(bits)
    every = jax.lax.all_gather(digest, AXIS)
    return jnp.all(every == every[0])
