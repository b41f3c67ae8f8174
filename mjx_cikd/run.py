"""The host side of a run: build, compile once, run chunks, log, draw progress.

The host never touches the training state between chunks except to read the small `ChunkLog`;
seeds run side by side as a vmap over the whole chunk (each seed has its own envs, buffer,
ensemble and keys: seed s of a run with `--seed b` uses key(b + s), exactly the key a plain run
with `--seed b+s` uses).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd import checkpoint, envs, replay, start_cache
from mjx_cikd.config import Config
from mjx_cikd.logger import RunLogger
from mjx_cikd.trainer import Trainer, make_train

DEFAULT_CACHE = "~/.cache/mjx_cikd/xla"


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
    init_from: object  # compiled: (keys[S], Starts[S]) -> TrainState[S]
    chunk: object  # compiled: (TrainState[S], Schedule) -> (TrainState[S], Schedule, ChunkLog[S])
    compile_s: float
    starts_shape: object  # Starts[S] as ShapeDtypeStructs
    starts: object = None  # compiled keys[S] -> Starts[S]; None when build found them on disk
    start_dir: str = ""  # where `start_cache` keeps the starts ("": nowhere)

    def init(self, keys: jax.Array):
        """The training state of `keys`: its env starts from the start cache when a run of the
        same task and keys saved them, else simulated (and saved, where the cache is on)."""
        config, task = self.trainer.config, self.trainer.task
        file = (start_cache.path(self.start_dir, config, task, keys)
                if start_cache.enabled(self.start_dir, task.impl) else None)
        first = start_cache.load(file, self.starts_shape) if file else None
        if first is None:
            simulate = self.starts or jax.jit(jax.vmap(self.trainer.starts))
            first = simulate(keys)
            if file:
                start_cache.save(file, first)
        return self.init_from(keys, first)


def seed_keys(config: Config) -> jax.Array:
    return jnp.stack([jax.random.key(config.seed + s) for s in range(config.num_seeds)])


def build(config: Config, trainer: Trainer | None = None,
          cache_dir: str | None = None) -> Compiled:
    """Trace and compile init and one chunk (ahead of time: compile time is measured alone).
    `cache_dir` (default: the config's compile cache) also holds the Warp env starts; the reset
    that makes them is compiled only if they are not there yet."""
    trainer = trainer or make_train(config)
    cache_dir = config.compile_cache if cache_dir is None else cache_dir
    starts = jax.jit(jax.vmap(trainer.starts))
    init_from = jax.jit(jax.vmap(trainer.init_from))
    chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, None), out_axes=(0, None, 0)),
                    donate_argnums=0)
    start = time.perf_counter()
    keys = seed_keys(config)
    starts_shape = jax.eval_shape(starts, keys)
    cached = (start_cache.enabled(cache_dir, trainer.task.impl)
              and start_cache.path(cache_dir, config, trainer.task, keys).exists())
    starts_c = None if cached else starts.lower(keys).compile()
    init_c = init_from.lower(keys, starts_shape).compile()
    state_shape = jax.eval_shape(init_from, keys, starts_shape)
    chunk_c = chunk.lower(state_shape, trainer.schedule()).compile()
    return Compiled(trainer, init_c, chunk_c, time.perf_counter() - start, starts_shape,
                    starts_c, cache_dir)


def phase_cost_note(config: Config) -> str | None:
    """A warning when the distillation phases would outweigh the SAC updates between them: the
    interval I is in env steps (as in the paper), so at a large N it holds few updates."""
    if config.algo != "cikd" and not config.extra_updates:
        return None
    updates = config.phase_period * config.updates_per_step
    if config.distill_steps <= updates:
        return None
    return (f"a phase of D={config.distill_steps} distillation steps comes every "
            f"{config.phase_period} vector step(s) of {config.num_envs} envs, i.e. every "
            f"{updates} SAC updates per member: the phases will take a large share of the run "
            f"(docs/benchmarks.md). Raise --distill_interval (e.g. "
            f"{config.distill_steps * config.num_envs // config.updates_per_step * 10:,} keeps "
            f"D at a tenth of the updates) or use --profile parallel at 2048 envs.")


def default_run_dir(config: Config) -> pathlib.Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return pathlib.Path("runs") / f"{config.env}-{config.algo}-k{config.ensemble_size}-{stamp}"


def describe_device() -> dict:
    import mujoco

    dev = jax.devices()[0]
    return {"device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
            "jax": jax.__version__, "mujoco": mujoco.__version__}


def _chunk_records(config: Config, log, seed: int, env_steps: int, wall: float, sps: float,
                   first_iteration: int) -> list[dict]:
    """The host-side view of one seed's ChunkLog, as metrics.jsonl records."""
    pick = lambda x: np.asarray(x)[seed]  # noqa: E731
    n = config.num_envs
    rows = [dict(event="log", seed=seed, env_steps=env_steps, wall_s=wall, sps=sps,
                 R=pick(log.recent_return), episodes=pick(log.episodes),
                 **{name: pick(v) for name, v in log.metrics.items()})]
    for t in np.flatnonzero(pick(log.eval_due)):
        ret = pick(log.eval_return)[t]
        rows.append(dict(event="eval", seed=seed, env_steps=(first_iteration + t + 1) * n,
                         returns=ret, best=ret.max(), worst=ret.min(), mean=ret.mean()))
    for t in np.flatnonzero(pick(log.phase_due)):
        s = jax.tree.map(lambda x: pick(x)[t], log.phase_stats)
        rows.append(dict(event="distill", seed=seed, env_steps=(first_iteration + t + 1) * n,
                         ran=bool(pick(log.phase_ran)[t]), teacher=int(pick(log.teacher)[t]),
                         R=pick(log.phase_returns)[t], kl_before=s.kl_before,
                         kl_after=s.kl_after, critic_before=s.critic_before,
                         critic_after=s.critic_after,
                         mean_kl_before=_student_mean(s.kl_before, pick(log.teacher)[t]),
                         mean_kl_after=_student_mean(s.kl_after, pick(log.teacher)[t]),
                         mean_critic_before=_student_mean(s.critic_before, pick(log.teacher)[t]),
                         mean_critic_after=_student_mean(s.critic_after, pick(log.teacher)[t])))
    return rows


def _write(logger: RunLogger, row: dict, seed: int, sps: float) -> None:
    """One record to metrics.jsonl, and its headline scalars to TensorBoard."""
    logger.write(row)
    step = row["env_steps"]
    if row["event"] == "log":
        logger.scalars(f"seed{seed}/train", {k: row[k] for k in (
            "R", "critic_loss", "actor_loss", "alpha", "entropy")}, step)
        logger.scalars(f"seed{seed}/perf", {"sps": sps}, step)
    elif row["event"] == "eval":
        logger.scalars(f"seed{seed}/eval", {"returns": row["returns"], "best": row["best"]}, step)
    elif row["event"] == "distill" and row["ran"]:
        logger.scalars(f"seed{seed}/distill", {"teacher": row["teacher"], "kl_before":
                                               row["mean_kl_before"], "kl_after":
                                               row["mean_kl_after"]}, step)


def _student_mean(values: np.ndarray, teacher: int) -> float:
    mask = np.arange(values.shape[0]) != teacher
    return float(np.mean(values[mask])) if mask.any() else float("nan")


def train(config: Config, run_dir: str | pathlib.Path | None = None, quiet: bool = False,
          resume: bool = False) -> dict:
    """Run `config` to completion; returns a summary (also the last `run` record).
    With `resume`, continue from the run directory's checkpoint (a fresh start if none)."""
    enable_compile_cache(config.compile_cache)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    task = envs.make_task(config)
    nbytes = replay.check_fits(config.buffer_rows, task.obs_size, task.action_size,
                               config.num_seeds)
    say(f"[mjx_cikd] {config.env} (impl={task.impl}, obs {task.obs_size}, act "
        f"{task.action_size}, T={task.episode_length}), algo={config.algo}, K="
        f"{config.ensemble_size}, num_envs={config.num_envs}, seeds={config.num_seeds}; replay "
        f"buffer {config.buffer_rows:,} transitions = {nbytes / 2**20:.1f} MiB "
        f"({nbytes / config.num_seeds / 2**20:.1f} MiB per seed)")
    note = phase_cost_note(config)
    if note:
        say(f"[mjx_cikd] note: {note}")
    run_dir = pathlib.Path(run_dir or config.run_dir or default_run_dir(config))
    logger = RunLogger(run_dir, config.to_dict(), config.tensorboard)
    start = time.perf_counter()
    compiled = build(config, make_train(config, task))
    say(f"[mjx_cikd] compiled in {compiled.compile_s:.1f}s; run dir {run_dir}")
    logger.write(dict(event="run", phase="start", compile_s=compiled.compile_s,
                      replay_bytes=nbytes, **describe_device()))

    state = compiled.init(seed_keys(config))
    sched = compiled.trainer.schedule()
    if resume and checkpoint.exists(run_dir):
        state, sched = checkpoint.restore(run_dir, state, sched)
        say(f"[mjx_cikd] resumed from {checkpoint.path(run_dir)} at "
            f"{int(sched.iteration) * config.num_envs:,} env steps")
    n, ipc = config.num_envs, config.iters_per_chunk
    iteration = first = int(sched.iteration)  # host-side mirror of the schedule's counter
    ckpt_every = max(1, config.checkpoint_every // (ipc * n)) if config.checkpoint_every else 0
    bar = None
    if config.progress and not quiet:
        from tqdm import tqdm

        bar = tqdm(total=max(config.total_iters, first) * n, initial=first * n, unit="step",
                   unit_scale=True, dynamic_ncols=True, file=sys.stderr)
    loop_start = time.perf_counter()
    last_eval, chunks = None, 0
    while iteration < config.total_iters:
        t0 = time.perf_counter()
        with jax.transfer_guard("disallow"):
            state, sched, log = compiled.chunk(state, sched)
        log = jax.device_get(log)
        sps = ipc * n * config.num_seeds / (time.perf_counter() - t0)
        wall = time.perf_counter() - start
        for s in range(config.num_seeds):
            for row in _chunk_records(config, log, s, (iteration + ipc) * n, wall, sps, iteration):
                _write(logger, row, s, sps)
                if row["event"] == "eval":
                    last_eval = row
        iteration += ipc
        chunks += 1
        if bar is not None:
            r = np.asarray(log.recent_return)[0]
            post = {"sps": f"{sps:,.0f}",
                    "R": "/".join("-" if np.isnan(x) else f"{x:.0f}" for x in r)}
            if last_eval is not None:
                post["eval"] = f"{last_eval['best']:.0f}"
            bar.set_postfix(post, refresh=False)
            bar.update(ipc * n)
        if (ckpt_every and chunks % ckpt_every == 0) or iteration >= config.total_iters:
            checkpoint.save(run_dir, state, sched)
    if bar is not None:
        bar.close()
    loop_s = time.perf_counter() - loop_start
    ran = (iteration - first) * n
    summary = dict(event="run", phase="end", env_steps=iteration * n, loop_s=loop_s,
                   wall_s=time.perf_counter() - start, compile_s=compiled.compile_s,
                   sps=ran * config.num_seeds / max(loop_s, 1e-9),
                   final_eval_best=None if last_eval is None else last_eval["best"],
                   run_dir=str(run_dir))
    logger.write(summary)
    logger.close()
    say(f"[mjx_cikd] done: {ran:,} env steps x {config.num_seeds} seed(s) in {loop_s:.1f}s "
        f"({summary['sps']:,.0f} steps/s) + {compiled.compile_s:.1f}s compile")
    return summary
