"""The accelerator's memory running out (XLA's RESOURCE_EXHAUSTED) as one line that says what
fixes it, instead of a traceback.

The usual causes: XLA preallocates 75% of a GPU's memory per process, so a second run (or a
notebook) on the same device finds it taken; or the run's state and its temporaries do not fit
(`replay.check_fits` sizes the buffer before allocating, not the chunk's temporaries).
"""

from __future__ import annotations

import contextlib

import jax

from mjx_cikd.config import Config, ConfigError

HINT = ("another process may hold the device's memory (XLA preallocates 75% per process: run "
        "with XLA_PYTHON_CLIENT_PREALLOCATE=false, or XLA_PYTHON_CLIENT_MEM_FRACTION=.40 for each "
        "of two runs), or this run does not fit: lower --num_envs, --num_seeds or --buffer_size")


@contextlib.contextmanager
def accelerator_memory(config: Config):
    """Inside: XLA's RESOURCE_EXHAUSTED becomes a ConfigError with the hint."""
    try:
        yield
    except jax.errors.JaxRuntimeError as err:
        text = str(err)
        if "RESOURCE_EXHAUSTED" not in text:
            raise
        first = text.strip().splitlines()[0][:200]
        raise ConfigError(f"the accelerator ran out of memory ({first}) at --num_envs "
                          f"{config.num_envs}, --num_seeds {config.num_seeds}, --buffer_size "
                          f"{config.buffer_size}: {HINT}") from None
