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
from typing import Callable

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from tqdm import tqdm

from mjx_cikd import checkpoint, election, envs, replay, start_cache
from mjx_cikd.config import Config, ceil_div
from mjx_cikd.logger import RunLogger
from mjx_cikd.trainer import ChunkLog, Schedule, Starts, Trainer, TrainState, make_train


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
    init_from: Callable[[jax.Array, Starts], TrainState]  # compiled, over S seeds
    chunk: Callable[[TrainState, Schedule], tuple[TrainState, Schedule, ChunkLog]]  # S seeds
    compile_s: float
    starts_shape: Starts  # Starts[S] as ShapeDtypeStructs
    starts: Callable[[jax.Array], Starts] | None = None  # compiled; None: build found them on disk
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
    """A warning when the distillation phases would outweigh the SAC updates between them: an
    interval given in env steps (`--distill_interval`) holds few updates at a large N."""
    if not config.phases_on:
        return None
    updates = config.phase_period * config.updates_per_step
    steps = (ceil_div(int(config.distill_epochs * config.buffer_rows), config.distill_batch_size)
             if config.distill_epochs > 0 else config.distill_steps)
    if steps <= updates:
        return None
    return (f"a phase of up to {steps} distillation steps comes every {updates} SAC updates per "
            f"member: the phases will take a large share of the run (docs/benchmarks.md). Count "
            f"the interval in updates (--distill_interval_updates, default 5000, the paper's) or "
            f"raise --distill_interval.")


def default_run_dir(config: Config) -> pathlib.Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return pathlib.Path("runs") / f"{config.env}-{config.algo}-k{config.ensemble_size}-{stamp}"


def describe_device() -> dict:
    dev = jax.devices()[0]
    return {"device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
            "jax": jax.__version__, "mujoco": mujoco.__version__}


def run_facts(task: envs.Task) -> dict:
    """What a run actually ran with, beside the config as given (`impl: auto`, `episode_length:
    0`): the resolved implementation and time limit, the device and the libraries' versions."""
    return dict(impl=task.impl, episode_length=task.episode_length, **describe_device(),
                versions=envs.library_versions())


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
    phases = jax.tree.map(pick, log.phase)
    for t in np.flatnonzero(phases.due):
        rows.append(phase_record(config, jax.tree.map(lambda x: x[t], phases), seed,
                                 (first_iteration + t + 1) * n))
    return rows


def phase_record(config: Config, p, seed: int, env_steps: int) -> dict:
    """One phase point (a PhaseOutcome of one seed and iteration) as a `distill` record; with
    the audit, whether the election hit the truly best member and what it cost not to."""
    teacher = int(p.teacher)
    row = dict(event="distill", seed=seed, env_steps=env_steps, ran=bool(p.ran), teacher=teacher,
               metric=config.election_metric, rule=config.teacher, statistic=p.statistic,
               R=p.statistic, train_returns=p.train_returns, reward_rate=p.reward_rate,
               staleness=p.staleness, steps=int(p.stats.steps))
    s = p.stats
    for name in ("kl_before", "kl_after", "critic_before", "critic_after"):
        row[name] = getattr(s, name)
        row[f"mean_{name}"] = _student_mean(getattr(s, name), teacher)
    if config.audit_election and teacher >= 0:
        hit, regret = election.audit_score(p.audit, teacher)
        row.update(audit=p.audit, hit=bool(hit), regret=float(regret))
    return row


def election_summary(rows: list[dict]) -> dict:
    """Hit rate and mean regret of the audited phases that elected a teacher, over all seeds."""
    audited = [r for r in rows if r.get("event") == "distill" and "hit" in r]
    if not audited:
        return {}
    return dict(election_phases=len(audited),
                election_hit_rate=float(np.mean([r["hit"] for r in audited])),
                election_regret=float(np.mean([r["regret"] for r in audited])))


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
        if "hit" in row:
            logger.scalars(f"seed{seed}/election", {"hit": float(row["hit"]),
                                                    "regret": row["regret"]}, step)


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
    logger = RunLogger(run_dir, config.to_dict(), config.tensorboard, run_facts(task))
    start = time.perf_counter()
    compiled = build(config, make_train(config, task))
    say(f"[mjx_cikd] compiled in {compiled.compile_s:.1f}s; run dir {run_dir}")
    logger.write(dict(event="run", phase="start", compile_s=compiled.compile_s,
                      replay_bytes=nbytes, **run_facts(task)))

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
        bar = tqdm(total=max(config.total_iters, first) * n, initial=first * n, unit="step",
                   unit_scale=True, dynamic_ncols=True, file=sys.stderr)
    loop_start = time.perf_counter()
    last_eval, chunks, audited = None, 0, []
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
                elif row["event"] == "distill" and "hit" in row:
                    audited.append(row)
        iteration += ipc
        chunks += 1
        if bar is not None:
            r = np.asarray(log.recent_return)[0]
            post = {"sps": f"{sps:,.0f}",
                    "R": "/".join("-" if np.isnan(x) else f"{x:.0f}" for x in r)}
            if last_eval is not None:
                post["eval"] = f"{last_eval['best']:.0f}"
            if audited:
                post["hit"] = f"{election_summary(audited)['election_hit_rate']:.0%}"
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
                   run_dir=str(run_dir), **election_summary(audited))
    logger.write(summary)
    logger.close()
    say(f"[mjx_cikd] done: {ran:,} env steps x {config.num_seeds} seed(s) in {loop_s:.1f}s "
        f"({summary['sps']:,.0f} steps/s) + {compiled.compile_s:.1f}s compile")
    return summary
