"""Time to the first step of a fresh process, with a cold and then a warm persistent compilation
cache.

`cache_check(config)` launches `python -m mjx_cikd.bench.first_step` twice on one cache
directory: the first process fills it, the second reads it. Each child builds the config's task,
compiles (or loads) init and one chunk with `compiled.build`, initialises and runs that chunk, and
reports the wall time from its launch to the end of the chunk, with the stages that make it up:
interpreter and imports, task (model load), compilation (tracing and lowering included: the
cache skips only XLA's compile), init (env resets, buffer allocation) and the chunk itself.
The cache directory holds XLA's executables and, under MuJoCo Warp, the env starts
(`start_cache`): the compile stage differs between the two processes, and under Warp the init
stage too (and the warm process compiles no reset).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import jax

import mjx_cikd
from mjx_cikd.config import from_dict
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host.compiled import build, enable_compile_cache, seed_keys
from mjx_cikd.loop.trainer import make_train

# the folder that holds the package: the child imports the very code the parent runs, installed
# or not
PACKAGE_PARENT = pathlib.Path(mjx_cikd.__file__).resolve().parent.parent
FIELDS = ("first_step_cold_s", "first_step_warm_s", "first_step_ratio")
STAGES = ("startup_s", "task_s", "compile_s", "init_s", "chunk_s")


def first_step(config, cache_dir: str, timeout: float = 1800) -> dict:
    """One fresh process on `config` with the persistent cache in `cache_dir` -> its timings:
    `first_step_s` (launch to the end of the first chunk) and the STAGES that sum to it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT),
                                                       env.get("PYTHONPATH")]))
    launched = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "mjx_cikd.bench.first_step", cache_dir,
         json.dumps(config.to_dict()), repr(launched)],
        check=False, env=env, capture_output=True, text=True, timeout=timeout)
    process_s = time.time() - launched
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"first-step process failed (rc {proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    return dict(json.loads(lines[-1]), process_s=process_s)


def _child(cache_dir: str, config_json: str, launched: str) -> int:
    marks = [time.time()]
    config = from_dict(json.loads(config_json))
    enable_compile_cache(cache_dir)
    task = envs.make_task(config)
    marks.append(time.time())
    compiled = build(config, make_train(config, task), cache_dir=cache_dir)
    marks.append(time.time())
    state = jax.block_until_ready(compiled.start(seed_keys(config)))
    marks.append(time.time())
    state, _, log = compiled.chunk(state, compiled.trainer.schedule())
    jax.block_until_ready((state, log))
    marks.append(time.time())
    stages = [marks[0] - float(launched)] + [b - a for a, b in zip(marks, marks[1:])]
    print(json.dumps({"first_step_s": marks[-1] - float(launched),
                      **dict(zip(STAGES, stages))}), flush=True)
    return 0


def cache_check(config, cache_dir: str | None = None) -> dict:
    """Time to first step with a fresh cache directory, then again with the cache it filled."""
    owned = cache_dir is None
    cache_dir = cache_dir or tempfile.mkdtemp(prefix="mjx_cikd_xla_")
    try:
        cold = first_step(config, cache_dir)
        entries = sum(len(files) for _, _, files in os.walk(cache_dir))
        warm = first_step(config, cache_dir)
    finally:
        if owned:
            shutil.rmtree(cache_dir, ignore_errors=True)
    return {"first_step_cold_s": cold["first_step_s"], "first_step_warm_s": warm["first_step_s"],
            "first_step_ratio": cold["first_step_s"] / warm["first_step_s"],
            "compile_cold_s": cold["compile_s"], "compile_warm_s": warm["compile_s"],
            "stages_cold_s": {k: cold[k] for k in STAGES},
            "stages_warm_s": {k: warm[k] for k in STAGES},
            "cache_entries": entries,
            "config": {"num_envs": config.num_envs, "ensemble_size": config.ensemble_size,
                       "algo": config.algo, "chunk_iters": config.iters_per_chunk}}


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
