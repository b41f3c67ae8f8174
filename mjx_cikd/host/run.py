"""The host side of a run: run the compiled chunks (`host/compiled.py`), log, draw progress.

The host never touches the training state between chunks except to read the small `ChunkLog`;
seeds run side by side as a vmap over the whole chunk (each seed has its own envs, buffer,
ensemble and keys: seed s of a run with `--seed b` uses key(b + s), exactly the key a plain run
with `--seed b+s` uses).
"""

from __future__ import annotations

import pathlib
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from mjx_cikd.agent import replay
from mjx_cikd.config import Config, budget, budget_warnings, ceil_div
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host import checkpoint, interrupt, records, resources, tracking
from mjx_cikd.host.compiled import Compiled, build, enable_compile_cache, seed_keys
from mjx_cikd.host.progress import Progress
from mjx_cikd.host.run_dir import NullLogger, RunLogger, claim
from mjx_cikd.loop import faults, parallel
from mjx_cikd.loop.state import TrainState
from mjx_cikd.loop.trainer import make_train


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


def run_facts(task: envs.Task, config: Config) -> dict:
    """What a run actually ran with, beside the config as given (`impl: auto`, `episode_length:
    0`): the resolved implementation and time limit, the devices, the replay ratio and the
    cadences in the units they act in (`budget.derived`) and the libraries' versions."""
    return dict(impl=task.impl, episode_length=task.episode_length, **describe_device(),
                devices=config.devices, parallel=config.parallel if config.devices > 1 else None,
                budget=budget.derived(config), versions=envs.library_versions())


class Stopped(Exception):
    """A run that ended before its last step on purpose (a signal) or by a fault: one line for
    the user, and the process's exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _fresh_keys(state: TrainState, seeds: np.ndarray, count: int) -> TrainState:
    """The loop keys of `seeds` folded with `count` (a rollback's number); the others kept."""
    data = np.array(jax.random.key_data(state.key))
    new = np.asarray(jax.random.key_data(jax.vmap(jax.random.fold_in, in_axes=(0, None))(
        state.key, 1_000_003 * count)))
    data[seeds] = new[seeds]
    return state.replace(key=jax.random.wrap_key_data(jnp.asarray(data)))


class LoopEnd(NamedTuple):
    """Where the host loop stopped: the vector steps taken in all, those at its start (a resumed
    run's checkpoint), and the seconds it ran."""

    iteration: int
    start_iteration: int
    loop_s: float


class _Loop:
    """The host loop of one run: chunks, records, progress, checkpoints, signals, faults."""

    def __init__(self, config: Config, compiled: Compiled, logger: RunLogger, run_dir, meta,
                 say, started: float):
        self.config, self.compiled, self.logger = config, compiled, logger
        self.run_dir, self.meta, self.say, self.started = run_dir, meta, say, started
        self.rollbacks = 0
        self.bar: Progress | None = None
        self.best: float | None = None  # the kept best evaluation's score (checkpoint.BEST)

    def save(self, state, sched) -> int:
        step = int(sched.iteration) * self.config.num_envs
        try:
            checkpoint.save(self.run_dir, step, state, sched, self.meta,
                            self.config.keep_checkpoints)
        except OSError as err:
            raise Stopped(f"cannot write checkpoint {step} into {checkpoint.path(self.run_dir)}: "
                          f"{err.strerror or err}; the newest complete one is step "
                          f"{checkpoint.latest(self.run_dir)}", 1) from None
        return step

    def keep_best(self, state, sched, log, iteration: int) -> None:
        """The state as the best evaluation's checkpoint when the chunk's last iteration
        evaluated every seed and the best member's return, averaged over the seeds, beats the
        kept one's."""
        if not np.all(np.asarray(log.eval_due)[:, -1]):
            return  # the evaluated members are not the state at hand
        score = float(np.mean(np.max(np.asarray(log.eval_return)[:, -1], axis=-1)))
        if not np.isfinite(score) or (self.best is not None and score <= self.best):
            return
        step = iteration * self.config.num_envs
        try:
            checkpoint.save_best(self.run_dir, step, state, sched, self.meta, score)
        except OSError as err:
            raise Stopped(f"cannot write the best checkpoint {step} into "
                          f"{checkpoint.path(self.run_dir, checkpoint.BEST)}: "
                          f"{err.strerror or err}", 1) from None
        self.best = score

    def rollback(self, bad: np.ndarray, fault: dict):
        """Back to the newest checkpoint (or the start), the faulty seeds with fresh keys."""
        self.rollbacks += 1
        fresh = self.compiled.start(seed_keys(self.config))
        sched = self.compiled.trainer.schedule()
        step = checkpoint.latest(self.run_dir)
        if step is not None:
            saved = checkpoint.restore(self.run_dir, fresh, sched, self.meta, step)
            fresh, sched = saved.state, saved.schedule
        seeds = np.flatnonzero(bad)
        state, sched = self.compiled.place(_fresh_keys(fresh, seeds, self.rollbacks), sched)
        self.logger.rewind(step or 0)  # the stretch run again is written once, as it runs
        self.best = checkpoint.best(self.run_dir, upto=step or 0)
        self.logger.write(dict(event="rollback", env_steps=fault["env_steps"], to=step or 0,
                               seeds=seeds, count=self.rollbacks, fault=fault))
        self.say(f"[mjx_cikd] rollback {self.rollbacks}/{self.config.max_rollbacks}: "
                 f"{self._fault_line(fault)}; back to env step {step or 0}, seed(s) "
                 f"{', '.join(map(str, seeds))} with fresh keys")
        return state, sched

    def _fault_line(self, f: dict) -> str:
        return (f"non-finite {f['quantity']} of member {f['member']}, seed {f['seed']} "
                f"(--seed {self.config.seed + f['seed']}), by env step {f['env_steps']:,}")

    def run(self, state, sched, progress: str) -> LoopEnd:
        config, n, per_chunk = self.config, self.config.num_envs, self.config.iters_per_chunk
        iteration = start = int(sched.iteration)  # host-side mirror of the schedule's counter
        ckpt_every = (max(1, config.checkpoint_every // (per_chunk * n))
                      if config.checkpoint_every else 0)
        self.bar = Progress(config, start, progress)
        self.best = checkpoint.best(self.run_dir, upto=start * n)  # a resume's, or None
        loop_start, chunks = time.perf_counter(), 0
        with interrupt.StopRequest(self.say) as stop:
            while iteration < config.total_iters:
                t0 = time.perf_counter()
                stop.chunk_begins()
                with jax.transfer_guard("disallow"):
                    state, sched, log = self.compiled.chunk(state, sched)
                log = jax.device_get(log)
                stop.chunk_ends()
                bad = faults.any_fault(log.faults)
                if bad.any():
                    found = [faults.describe(log.faults, s, iteration, n)
                             for s in np.flatnonzero(bad)]
                    for row in found:
                        self.logger.write(row)
                    if config.on_nonfinite == "rollback" and self.rollbacks < config.max_rollbacks:
                        state, sched = self.rollback(bad, min(found, key=lambda r: r["env_steps"]))
                        iteration = int(sched.iteration)
                        continue
                    self.close_bar()
                    kept = checkpoint.latest(self.run_dir)
                    raise Stopped(
                        f"{self._fault_line(found[0])}; stopped"
                        + (f" after {self.rollbacks} rollback(s)" if self.rollbacks else "")
                        + (f"; the last good checkpoint is env step {kept:,} in "
                           f"{checkpoint.path(self.run_dir)}" if kept is not None
                           else "; no checkpoint was written before it"), 1)
                if not np.all(log.replicas_agree):
                    self.close_bar()
                    raise Stopped(f"the devices' copies of the members differ after env step "
                                  f"{(iteration + per_chunk) * n:,} (a bug: please report it)", 1)
                sps = per_chunk * n * config.num_seeds / (time.perf_counter() - t0)
                self.write_chunk(log, iteration, sps)
                iteration += per_chunk
                chunks += 1
                self.keep_best(state, sched, log, iteration)
                self.bar.update(log, self.logger.rows, iteration, sps)
                if stop.signum is not None:
                    step = self.save(state, sched)
                    self.close_bar()
                    self.logger.write(dict(event="interrupted", env_steps=step,
                                           signal=stop.name))
                    raise Stopped(f"{stop.name}: stopped at env step {step:,}; checkpoint in "
                                  f"{checkpoint.path(self.run_dir)}. Resume with: python "
                                  f"scripts/train.py --resume {self.run_dir}", 128 + stop.signum)
                if (ckpt_every and chunks % ckpt_every == 0) or iteration >= config.total_iters:
                    self.save(state, sched)
        self.close_bar()
        return LoopEnd(iteration=iteration, start_iteration=start,
                       loop_s=time.perf_counter() - loop_start)

    def write_chunk(self, log, iteration: int, sps: float) -> None:
        n, per_chunk = self.config.num_envs, self.config.iters_per_chunk
        # a resumed run's clock goes on from its last kept record: wall_s never goes back
        wall = self.logger.wall_offset + time.perf_counter() - self.started
        for s in range(self.config.num_seeds):
            for row in records.chunk_records(self.config, log, s, (iteration + per_chunk) * n, wall,
                                             sps, iteration):
                records.write(self.logger, row, s, sps)
        self.logger.flush()

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def train(config: Config, run_dir: str | pathlib.Path | None = None, quiet: bool = False,
          resume: bool = False, overwrite: bool = False) -> dict:
    """Run `config` to completion; returns a summary (also the last `run` record).
    `resume`: continue from the run directory's newest complete checkpoint (afresh, saying so,
    if it has none); `overwrite`: replace the run the directory holds (refused without either).
    A signal or a numeric fault ends the run early with `Stopped`; a live run holding the
    directory, a full disk or exhausted accelerator memory with a ConfigError."""
    enable_compile_cache(config.compile_cache)
    quiet = quiet or not parallel.primary()  # one voice and one log for a run of many processes
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    task = envs.make_task(config)
    nbytes = replay.check_fits(config.buffer_rows, task.obs_size, task.action_size,
                               config.num_seeds, config.devices)
    parallel.check(config, task)
    run_dir = pathlib.Path(run_dir or config.run_dir or default_run_dir(config))
    # before anything is written; held (an OS lock) until the run ends
    lock = claim(run_dir, resume, overwrite) if parallel.primary() else None
    try:
        with resources.accelerator_memory(config):
            return _train(config, task, nbytes, run_dir, resume, say, quiet)
    finally:
        if lock is not None:
            lock.release()


def _train(config: Config, task: envs.Task, nbytes: int, run_dir: pathlib.Path, resume: bool,
           say, quiet: bool) -> dict:
    """`train` in a claimed run directory: restore, compile, log, loop, the end record."""
    trainer = make_train(config, task)
    shapes = jax.eval_shape(jax.vmap(trainer.init), seed_keys(config))
    meta = checkpoint.describe(config, task.impl, shapes)
    saved = None
    if resume and checkpoint.latest(run_dir) is not None:
        # read whole before anything is written: a foreign, corrupt or truncated checkpoint is
        # refused with the run directory as it was
        saved = checkpoint.restore(run_dir, shapes, trainer.schedule(), meta)
    elif resume:
        say(f"[mjx_cikd] {run_dir} has no complete checkpoint: starting the run afresh")
    say(f"[mjx_cikd] {config.env} (impl={task.impl}, obs {task.obs_size}, act "
        f"{task.action_size}, T={task.episode_length}), algo={config.algo}, K="
        f"{config.ensemble_size}, num_envs={config.num_envs}, seeds={config.num_seeds}; replay "
        f"buffer {config.buffer_rows:,} transitions = {nbytes / 2**20:.1f} MiB "
        f"({nbytes / config.num_seeds / 2**20:.1f} MiB per seed)")
    for note in (envs.impl_note(config.env, config.impl, config.devices), phase_cost_note(config)):
        if note:
            say(f"[mjx_cikd] note: {note}")
    for warning in budget_warnings(config, task.episode_length):
        say(f"[mjx_cikd] warning: {warning}")
    start = time.perf_counter()
    compiled = build(config, trainer)
    say(f"[mjx_cikd] compiled in {compiled.compile_s:.1f}s; run dir {run_dir}")
    state, sched = compiled.start(seed_keys(config)), trainer.schedule()
    if saved is not None:  # what the checkpoint lacks (the buffer, if saved without) is fresh
        state = jax.tree.map(lambda old, new: new if isinstance(old, jax.ShapeDtypeStruct)
                             else old, saved.state, state)
        sched = saved.schedule
        say(f"[mjx_cikd] resumed from {checkpoint.path(run_dir) / str(saved.step)} (env step "
            f"{saved.step:,})" + ("" if saved.with_buffer else "; the checkpoint has no replay "
                                  "buffer (--checkpoint_buffer false): the run refills it and "
                                  "is not the uninterrupted run's"))
    state, sched = compiled.place(state, sched)
    # the run directory is written from here on: compiling and allocating the state (where
    # memory runs out) leave it as it was. A resumed run's records past its checkpoint go.
    start_step = saved.step if saved is not None else 0
    logger = (RunLogger(run_dir, config.to_dict(), config.tensorboard, run_facts(task, config),
                        resume_step=start_step if resume else None,
                        sink=tracking.WandbSink(run_dir, config) if config.wandb else None)
              if parallel.primary() else NullLogger())
    logger.write(dict(event="run", phase="resume" if saved is not None else "start",
                      env_steps=start_step, compile_s=compiled.compile_s, replay_bytes=nbytes,
                      **run_facts(task, config)))
    loop, summary = _Loop(config, compiled, logger, run_dir, meta, say, start), None
    try:
        end = loop.run(state, sched, progress="off" if quiet else config.progress)
        ran = (end.iteration - end.start_iteration) * config.num_envs
        loop_s = end.loop_s
        # wall_s and the summaries cover the whole run, across the processes of a resumed one
        summary = dict(event="run", phase="end", env_steps=end.iteration * config.num_envs,
                       loop_s=loop_s, wall_s=logger.wall_offset + time.perf_counter() - start,
                       compile_s=compiled.compile_s,
                       sps=ran * config.num_seeds / max(loop_s, 1e-9), run_dir=str(run_dir),
                       **records.end_summary(logger.rows, config.num_seeds, config.audit_election))
        logger.write(summary)
    finally:
        loop.close_bar()
        logger.close(summary)
    say(f"[mjx_cikd] done: {ran:,} env steps x {config.num_seeds} seed(s) in {loop_s:.1f}s "
        f"({summary['sps']:,.0f} steps/s) + {compiled.compile_s:.1f}s compile")
    return summary
