"""What a run compiles: the persistent compilation cache, the seeds' keys, the trainer's init
and chunk mapped over the seeds (`over_seeds`) and compiled once, ahead of time (`build` ->
`Compiled`), over a device mesh where the run has several devices.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp

from mjx_cikd.agent import batching
from mjx_cikd.config import Config
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host import start_cache
from mjx_cikd.loop import parallel
from mjx_cikd.loop.state import TrainState, env_axis
from mjx_cikd.loop.trainer import ChunkLog, Schedule, Trainer, make_train


def enable_compile_cache(path: str) -> None:
    """Persistent XLA compilation cache: a second identical run skips compilation."""
    if not path:
        return
    path = os.path.expanduser(path)
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@dataclasses.dataclass
class Compiled:
    trainer: Trainer
    starts: start_cache.FirstStates  # the seeds' first env states, from disk or simulated
    init: Callable[[jax.Array, envs.Starts], TrainState]  # compiled, over S seeds
    chunk: Callable[[TrainState, Schedule], tuple[TrainState, Schedule, ChunkLog]]  # S seeds
    compile_s: float
    shardings: Any = None  # of the state over the run's devices (None: one device)

    def start(self, keys: jax.Array) -> TrainState:
        """The training state of the seeds `keys` at t = 0."""
        return self.init(keys, self.starts(keys))

    def place(self, state: TrainState, sched: Schedule) -> tuple[TrainState, Schedule]:
        """A state (e.g. restored) and schedule where the compiled chunk expects them."""
        if self.shardings is None:
            return state, sched
        replicated = parallel.replicated(self.trainer.config)
        return (parallel.place(state, self.shardings),
                parallel.place(sched, jax.tree.map(lambda _: replicated, sched)))


def seed_keys(config: Config) -> jax.Array:
    return jnp.stack([jax.random.key(config.seed + s) for s in range(config.num_seeds)])


def over_seeds(trainer: Trainer, num_seeds: int, keys: jax.Array, starts, state):
    """The trainer's init and chunk mapped over the seeds (`starts`, `state`: their shapes under
    `jax.vmap`). A single seed runs unbatched (`batching.vmap`), leaf by leaf where MuJoCo Warp
    keeps some of its state outside the seed axis (`batching.leaf_axes`)."""
    start_axes = state_axes = 0
    if num_seeds == 1:
        one_start = jax.eval_shape(trainer.starts, keys[0])
        start_axes = batching.leaf_axes(starts, one_start)
        state_axes = batching.leaf_axes(state, jax.eval_shape(trainer.init, keys[0], one_start))
    init = batching.vmap(trainer.init, num_seeds, in_axes=(0, start_axes), out_axes=state_axes)
    chunk = batching.vmap(trainer.chunk, num_seeds, in_axes=(state_axes, None),
                          out_axes=(state_axes, None, 0))
    return init, chunk


def build(config: Config, trainer: Trainer | None = None,
          cache_dir: str | None = None) -> Compiled:
    """Trace and compile init and one chunk (ahead of time: compile time is measured alone).
    `cache_dir` (default: the config's compile cache) also keeps the first env states of tasks
    whose reset is costly (`start_cache`); that reset is compiled only if they are not there."""
    trainer = trainer or make_train(config)
    cache_dir = config.compile_cache if cache_dir is None else cache_dir
    start = time.perf_counter()
    keys = seed_keys(config)
    starts = start_cache.prepare(trainer, keys, cache_dir)
    state_shape = jax.eval_shape(jax.vmap(trainer.init), keys, starts.shape)
    init, chunk = over_seeds(trainer, config.num_seeds, keys, starts.shape, state_shape)
    shardings, sched_sharding, out_shardings = None, None, None
    if config.devices > 1:  # over a device mesh (parallel.py), the state split by its structure
        layout = env_axis(state_shape)
        shardings = parallel.shardings(config, layout)
        sched_sharding = parallel.replicated(config)
        chunk = parallel.sharded_chunk(config, chunk, layout)
        # the state leaves the chunk as it came in (zero-size leaves included): the next takes it
        out_shardings = (shardings, sched_sharding, None)
    # over several processes each builds the whole state and `place` keeps its devices' parts
    init = jax.jit(init, out_shardings=shardings if jax.process_count() == 1 else None)
    chunk = jax.jit(chunk, in_shardings=(shardings, sched_sharding), out_shardings=out_shardings,
                    donate_argnums=0)
    init_c = init.lower(keys, starts.shape).compile()
    chunk_c = chunk.lower(state_shape, trainer.schedule()).compile()
    return Compiled(trainer=trainer, starts=starts, init=init_c, chunk=chunk_c,
                    compile_s=time.perf_counter() - start, shardings=shardings)
