"""Shared fixtures: small configs on the probe tasks, so each compiled loop costs seconds."""

import importlib.util
import os
import pathlib
import sys
from typing import Any, NamedTuple

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from mjx_cikd.config import load_profile, resolve  # noqa: E402

TINY = dict(load_profile("tiny"), progress=False, tensorboard=False, compile_cache="")


def tiny(**overrides):
    """The tiny profile, on a probe task unless `env` says otherwise, validated."""
    values = dict(TINY, env="ProbeTarget", episode_length=0)
    values.update(overrides)
    return resolve(values)


class Ran(NamedTuple):
    """What `run_chunks` hands back."""

    trainer: Any  # the `loop.trainer.Trainer`
    state: Any  # the state after the last chunk
    logs: list  # every chunk's ChunkLog, on the host
    traces: int  # how many times the chunk was traced (1: compiled once)


def run_chunks(config, chunks) -> Ran:
    """`chunks` chunks of a fresh trainer from seed key 0, the chunk jitted with its state
    donated and every call held under transfer_guard("disallow") (no host transfer inside)."""
    import jax

    from mjx_cikd.loop.trainer import make_train

    trainer = make_train(config)
    traces = []

    def chunk(state, sched):
        traces.append(1)
        return trainer.chunk(state, sched)

    run_chunk = jax.jit(chunk, donate_argnums=0)
    state, sched = jax.jit(trainer.init)(jax.random.key(0)), trainer.schedule()
    logs = []
    for _ in range(chunks):
        with jax.transfer_guard("disallow"):
            state, sched, log = run_chunk(state, sched)
        logs.append(jax.device_get(log))
    return Ran(trainer=trainer, state=state, logs=logs, traces=len(traces))


def stepwise(config, iterations):
    """One iteration per chunk (log_every = N): (trainer, the states before and after every
    iteration, the logs)."""
    import jax

    from mjx_cikd.loop.trainer import make_train

    trainer = make_train(config)
    run_chunk = jax.jit(trainer.chunk)
    state, sched = jax.jit(trainer.init)(jax.random.key(0)), trainer.schedule()
    states, logs = [state], []
    for _ in range(iterations):
        state, sched, log = run_chunk(state, sched)
        states.append(state)
        logs.append(jax.device_get(log))
    return trainer, states, logs


def script(name: str):
    """scripts/NAME.py as a module (its `main(argv)` called in-process)."""
    path = pathlib.Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
