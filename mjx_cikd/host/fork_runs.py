"""Running paired forks (`cikd/forks.py`) from a checkpoint of an Ensemble-SAC run.

The checkpoint is read once; each arm starts from a copy of it, audits every member, forks
(its phase, or none), audits again, and goes on training with the run's own iteration (no
evaluation, no phase: the run is Ensemble-SAC) to each horizon, counted in SAC updates of each
member, where it audits again. One `fork` record per arm and seed (the audit before, the teacher,
the phase's KL and critic gaps, the phase's wall-clock) and one `audit` record per arm, seed and
horizon go to OUT/forks.jsonl; an arm already there is skipped, so a re-run resumes.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd.cikd import forks
from mjx_cikd.config import NO_EVAL, Config, ConfigError, replace
from mjx_cikd.envs import contacts
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host import checkpoint
from mjx_cikd.host.compiled import Compiled, build, seed_keys
from mjx_cikd.host.run_dir import read_config
from mjx_cikd.loop.state import TrainState
from mjx_cikd.loop.trainer import Schedule, make_train

HORIZONS = (0, 500, 1_500, 5_000)  # SAC updates of each member after the fork


class Base(NamedTuple):
    """The run forked from: its config, the continuation's program, the state at the fork."""

    config: Config  # the run's
    compiled: Compiled  # one iteration per chunk, no evaluation
    state: TrainState  # over seeds, as the checkpoint holds it
    schedule: Schedule
    step: int  # env steps per seed at the fork


def load(run_dir: str | pathlib.Path, step: int | None, episodes: int) -> Base:
    """The run in `run_dir` at env step `step` (its newest checkpoint if None), ready to fork:
    a ConfigError for a run that is not Ensemble-SAC or a checkpoint without its buffer."""
    config = read_config(run_dir)
    if config.algo != "ensemble":
        raise ConfigError(f"{run_dir} is a --algo {config.algo} run: forks start from an "
                          f"Ensemble-SAC run (--algo ensemble), whose only phase is the fork's")
    if not config.checkpoint_buffer:
        raise ConfigError(f"{run_dir} saved its checkpoints without the replay buffer: a phase "
                          f"and the training after it need it (--checkpoint_buffer true)")
    cont = replace(config, eval_every=NO_EVAL, log_every=config.num_envs, checkpoint_every=0,
                   tensorboard=False, progress="off")
    # the audits reset their worlds apart from the training's, as playback's episodes do
    worlds = max(contacts.worlds(cont), config.num_seeds * config.ensemble_size * episodes)
    trainer = make_train(cont, envs.make_task(cont, worlds))
    compiled = build(cont, trainer)
    template = compiled.start(seed_keys(cont))
    meta = checkpoint.describe(config, trainer.task.impl, template)
    saved = checkpoint.restore(run_dir, template, trainer.schedule(), meta, step)
    return Base(config, compiled, saved.state, saved.schedule, saved.step)


class Forker:
    """The compiled pieces of a fork over the base's seeds, built once and shared by the arms:
    the audit and each teacher rule's election (the same program in every arm), and each arm's
    phase."""

    def __init__(self, base: Base, episodes: int):
        trainer = base.compiled.trainer
        self.base, self.episodes, self._elect, self._fork = base, episodes, {}, {}
        self.audit = jax.jit(jax.vmap(forks.make_audit(trainer.task, trainer.ensemble, episodes),
                                      in_axes=(0, None)))

    def elect(self, arm: forks.Arm):
        if arm.teacher not in self._elect:
            trainer = self.base.compiled.trainer
            self._elect[arm.teacher] = jax.jit(jax.vmap(forks.make_elect(
                trainer.task, trainer.ensemble, arm.teacher, self.episodes)))
        return self._elect[arm.teacher]

    def fork(self, arm: forks.Arm):
        key = None if arm.phase is None else tuple(sorted(arm.phase.items()))
        if key not in self._fork:
            trainer = self.base.compiled.trainer
            self._fork[key] = jax.jit(jax.vmap(forks.make_fork(trainer.config, trainer.ensemble,
                                                               arm)))
        return self._fork[key]


def fork_arm(forker: Forker, arm: forks.Arm,
             horizons: tuple[int, ...] = HORIZONS) -> Iterator[tuple[str, dict, TrainState]]:
    """One arm: ("fork", {...}, state after the fork), then ("audit", {...}, state) at each
    horizon; the dicts hold per-seed arrays. Each state is donated to the next chunk: copy what
    is kept of it before asking for the next record."""
    base = forker.base
    state = jax.tree.map(jnp.copy, base.state)  # the chunk donates its state
    sched = jax.tree.map(jnp.copy, base.schedule)
    elected = jax.device_get(forker.elect(arm)(state))
    fork = forker.fork(arm)
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, stats = jax.block_until_ready(fork(state, jnp.asarray(elected.teacher)))
    phase_s = time.perf_counter() - start
    yield "fork", dict(before=elected.before.mean, before_se=elected.before.se,
                       teacher=elected.teacher, phase_s=phase_s,
                       **{k: np.asarray(v) for k, v in stats._asdict().items()}), state
    done, per = 0, base.config.updates_per_step  # iterations since the fork
    for i, horizon in enumerate(horizons):
        for _ in range(math.ceil(horizon / per) - done):
            state, sched, _ = base.compiled.chunk(state, sched)
            done += 1
        score = jax.device_get(forker.audit(state, jnp.asarray(i)))
        yield "audit", dict(horizon=i, updates=done * per, returns=score.mean,
                            se=score.se), state


def _rows(event: str, arm: forks.Arm, base: Base, data: dict) -> list[dict]:
    """One JSON row per seed of a fork_arm record."""
    out = []
    for s in range(base.config.num_seeds):
        row = dict(event=event, arm=arm.name, seed=s, fork_env_steps=base.step)
        for k, v in data.items():
            v = np.asarray(v)
            row[k] = (v[s] if v.ndim and v.shape[0] == base.config.num_seeds else v).tolist()
        out.append(row)
    return out


def run(forker: Forker, out, arms=forks.ARMS, horizons: tuple[int, ...] = HORIZONS,
        say=print) -> pathlib.Path:
    """Every arm not yet in OUT/forks.jsonl, from the forker's base."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "forks.jsonl"
    base = forker.base
    have = ({json.loads(line)["arm"] for line in path.open() if '"event": "end"' in line}
            if path.is_file() else set())
    for arm in arms:
        if arm.name in have:
            continue
        rows, start = [], time.perf_counter()
        for event, data, _ in fork_arm(forker, arm, horizons):
            rows += _rows(event, arm, base, data)
            if event == "audit":
                say(f"[forks] {arm.name}: {data['updates']:,} updates after the fork, "
                    f"audited returns {np.round(np.mean(data['returns'], 0), 1).tolist()} "
                    f"(mean over seeds)")
        rows.append(dict(event="end", arm=arm.name, env=base.config.env, fork_env_steps=base.step,
                         episodes=forker.episodes, wall_s=time.perf_counter() - start))
        with path.open("a") as f:  # an arm lands whole or not at all
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    return path
