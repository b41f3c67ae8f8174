"""Shared fixtures: small configs on the probe tasks, so each compiled loop costs seconds."""

import importlib.util
import os
import pathlib
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from mjx_cikd.config import load_profile, resolve  # noqa: E402

TINY = dict(load_profile("tiny"), progress=False, tensorboard=False, compile_cache="")


def tiny(**overrides):
    """The tiny profile, on a probe task unless `env` says otherwise, validated."""
    values = dict(TINY, env="ProbeTarget", episode_length=0)
    values.update(overrides)
    return resolve(values)



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
