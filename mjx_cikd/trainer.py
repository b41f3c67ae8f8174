"""The jitted training loop: `make_train(config)` -> init(key) and one compiled chunk.

One iteration (the unit of `lax.scan`):
  all K actors act on obs[N] -> pick by member[N] -> one MJX vector step -> one replay write of
  N rows -> finished episodes feed their member's R_k ring and redraw their member -> U SAC updates
  of every member -> when the schedule says so, a CIKD phase (teacher election + distillation) or
  the "(extra)" SAC updates -> when due, a deterministic evaluation of every member.
The schedule (iteration index, env steps since the last phase) is carried unbatched: under a vmap
over seeds, every `lax.cond` keeps a scalar predicate and runs one branch, never both.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mjx_cikd import distillation, election, envs, networks, replay, selection
from mjx_cikd import normalizer as norm_lib
from mjx_cikd.config import Config
from mjx_cikd.ensemble import Ensemble, Members, make_ensemble
from mjx_cikd.evaluation import make_evaluate
from mjx_cikd.sac import Batch

METRICS = ("critic_loss", "actor_loss", "alpha", "entropy", "q")


@struct.dataclass
class TrainState:
    """Everything one seed carries from iteration to iteration."""

    env: envs.EnvState
    member: jax.Array  # [N] which member runs each env slot
    ep_return: jax.Array  # [N] return of the running episode
    ring: selection.ReturnRing
    buffer: replay.Replay
    norm: norm_lib.Normalizer
    members: Members
    key: jax.Array
    eval_key: jax.Array  # evaluation draws from its own stream: E never changes training
    eval_start: envs.EnvState | None = None  # Warp only: fixed evaluation starts (see evaluation)


class Schedule(NamedTuple):
    """Shared by all seeds (never vmapped), so the conds it drives stay conds."""

    iteration: jax.Array  # vector steps taken
    since_phase: jax.Array  # env steps since the last phase point


class ChunkLog(NamedTuple):
    """What the host reads after a chunk; per-iteration arrays have a leading [T] axis."""

    metrics: dict  # name -> [K], mean over the chunk's update steps
    recent_return: jax.Array  # [K] R_k at the end of the chunk (NaN: none yet)
    episodes: jax.Array  # [K] finished training episodes so far
    phase_due: jax.Array  # [T] a phase point fell on this iteration
    phase_ran: jax.Array  # [T] it had a teacher (some member had finished an episode)
    teacher: jax.Array  # [T]
    phase_returns: jax.Array  # [T, K] the R_k the election saw
    phase_stats: distillation.PhaseStats  # [T, K] each
    eval_due: jax.Array  # [T]
    eval_return: jax.Array  # [T, K]


def sample_batch(buffer: replay.Replay, norm: norm_lib.Normalizer, key, shape) -> Batch:
    """A batch of `shape` (e.g. [K, B]: one batch per member) from the shared buffer, its
    observations normalised with the shared normaliser's current statistics."""
    obs, action, reward, next_obs, terminated = replay.gather(
        buffer, replay.sample_indices(buffer, key, shape))
    nrm = lambda x: norm_lib.normalize(norm, x)  # noqa: E731
    return Batch(nrm(obs), action, reward, nrm(next_obs), terminated)


def sac_steps(ensemble, members, buffer: replay.Replay, norm: norm_lib.Normalizer, key,
              count: int, batch_size: int):
    """`count` SAC updates of every member, each on its own batch from the shared buffer
    (`sample_batch` of [K, batch_size]). -> (members, metrics stacked over the updates)."""
    k = ensemble.size

    def one(members, key):
        k_batch, k_update = jax.random.split(key)
        batch = sample_batch(buffer, norm, k_batch, (k, batch_size))
        return ensemble.update(members, batch, jax.random.split(k_update, k))

    return jax.lax.scan(one, members, jax.random.split(key, count))


def act(ensemble, members, norm: norm_lib.Normalizer, obs, member, key) -> jax.Array:
    """Every member's actor on every env's (normalised) observation, a tanh-Gaussian sample
    each, then the index mask picks member[i]'s action for env i: obs [N, obs] -> [N, A]."""
    mean, log_std = ensemble.policy(members, norm_lib.normalize(norm, obs))
    actions, _ = networks.sample_action(mean, log_std, key)
    return selection.select_actions(actions, member)


class Starts(NamedTuple):
    """A seed's first env states: its training envs, and under Warp its evaluation starts."""

    env: envs.EnvState
    eval_start: envs.EnvState | None


class Trainer(NamedTuple):
    config: Config
    task: envs.Task
    ensemble: Ensemble
    init: callable  # key -> TrainState: init_from(key, starts(key))
    starts: callable  # key -> Starts
    init_from: callable  # (key, Starts) -> TrainState
    chunk: callable  # (TrainState, Schedule) -> (TrainState, Schedule, ChunkLog), pure
    evaluate: callable  # (members, normalizer, key) -> [K]

    def schedule(self) -> Schedule:
        return Schedule(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def make_train(config: Config, task: envs.Task | None = None) -> Trainer:
    task = task or envs.make_task(config)
    ensemble = make_ensemble(config, task.obs_size, task.action_size)
    k, n, a = ensemble.size, config.num_envs, task.action_size
    evaluate = make_evaluate(config, task, ensemble)
    phase = distillation.make_phase(config, ensemble)
    phases_on = config.algo == "cikd" or config.extra_updates
    # 0: evaluate on the last iteration of every chunk, i.e. at each log point
    eval_every = config.iters_per_chunk * n if config.eval_every <= 0 else config.eval_every

    def starts(key: jax.Array) -> Starts:
        """The envs' first states (the seed's own keys, as `init` splits them): the expensive
        part of init under Warp, hence apart (`start_cache` keeps them on disk)."""
        k_env, *_, k_start = jax.random.split(key, 6)
        batches = [jax.random.split(k_env, n)]
        if task.impl == "warp":  # evaluations start from states drawn here, in the same reset
            batches.append(jax.random.split(k_start, k * config.eval_episodes))
        env, *rest = task.reset_batches(*batches, stagger=config.stagger_episodes)
        return Starts(env=env, eval_start=rest[0] if rest else None)

    def init_from(key: jax.Array, first: Starts) -> TrainState:
        _, k_member, k_members, k_loop, k_eval, _ = jax.random.split(key, 6)
        return TrainState(
            env=first.env,
            member=selection.draw_members(k_member, n, k),
            ep_return=jnp.zeros(n),
            ring=selection.init_ring(k, config.return_window),
            buffer=replay.init(config.buffer_rows, task.obs_size, a),
            norm=norm_lib.init(task.obs_size, config.normalize_obs),
            members=ensemble.init(k_members), key=k_loop, eval_key=k_eval,
            eval_start=first.eval_start)

    def init(key: jax.Array) -> TrainState:
        return init_from(key, starts(key))

    def sac_updates(state: TrainState, key, count: int, batch_size: int):
        members, metrics = sac_steps(ensemble, state.members, state.buffer, state.norm, key,
                                     count, batch_size)
        return state.replace(members=members), jax.tree.map(lambda x: x.mean(0), metrics)

    no_metrics = {name: jnp.zeros(k) for name in METRICS}

    def do_phase(state: TrainState, key):
        """A CIKD phase, or its "(extra)" replacement: the same steps of SAC updates."""
        if config.extra_updates:
            state, _ = sac_updates(state, key, config.distill_steps, config.distill_batch_size)
            zeros = jnp.zeros(k)
            return state, (jnp.asarray(True), jnp.asarray(-1, jnp.int32),
                           distillation.PhaseStats(zeros, zeros, zeros, zeros))
        teacher, has_teacher = election.elect_teacher(selection.recent_mean(state.ring))
        members, stats = phase(state.members, state.buffer, state.norm, teacher, key)
        # no member has finished an episode (a per-seed fact): keep the old members
        members = jax.tree.map(lambda new, old: jnp.where(has_teacher, new, old),
                               members, state.members)
        stats = jax.tree.map(lambda x: jnp.where(has_teacher, x, jnp.nan), stats)
        return state.replace(members=members), (has_teacher, teacher, stats)

    def skip_phase(state: TrainState, key):
        nan = jnp.full(k, jnp.nan)
        return state, (jnp.asarray(False), jnp.asarray(-1, jnp.int32),
                       distillation.PhaseStats(nan, nan, nan, nan))

    def iteration(carry, _):
        state, sched = carry
        key, k_act, k_rand, k_env, k_sel, k_upd, k_phase = jax.random.split(state.key, 7)
        steps_before = sched.iteration * n
        steps_after = steps_before + n

        action = act(ensemble, state.members, state.norm, state.env.obs, state.member, k_act)
        uniform = jax.random.uniform(k_rand, (n, a), minval=-1.0, maxval=1.0)
        action = jnp.where(steps_before < config.learning_starts, uniform, action)

        env, out = task.step(state.env, action, k_env)
        buffer = replay.add(state.buffer, state.env.obs, action, out.reward, out.next_obs,
                            out.terminated.astype(jnp.float32))
        ep_return = state.ep_return + out.reward
        finished = out.terminated | out.truncated
        state = state.replace(
            env=env, buffer=buffer, key=key,
            norm=norm_lib.update(state.norm, out.next_obs),
            ring=selection.record(state.ring, state.member, ep_return, finished),
            ep_return=jnp.where(finished, 0.0, ep_return),
            member=selection.redraw_finished(k_sel, state.member, finished, k))

        learning = steps_after >= config.learning_starts
        state, metrics = jax.lax.cond(
            learning,
            lambda s, key: sac_updates(s, key, config.updates_per_step, config.batch_size),
            lambda s, key: (s, no_metrics), state, k_upd)

        since = sched.since_phase + n
        if phases_on:
            due = (since >= config.distill_interval) & (steps_after >= config.distill_warmup)
            state, (ran, teacher, stats) = jax.lax.cond(due, do_phase, skip_phase, state, k_phase)
            since = jnp.where(due, 0, since)
        else:
            due = jnp.asarray(False)
            state, (ran, teacher, stats) = skip_phase(state, k_phase)

        eval_due = (steps_after // eval_every) > (steps_before // eval_every)
        eval_key = jax.random.fold_in(state.eval_key, sched.iteration)
        eval_return = jax.lax.cond(
            eval_due, lambda s: evaluate(s.members, s.norm, eval_key, s.eval_start),
            lambda s: jnp.full(k, jnp.nan), state)

        sched = Schedule(sched.iteration + 1, since)
        ys = (learning, metrics, due, ran, teacher, selection.recent_mean(state.ring), stats,
              eval_due, eval_return)
        return (state, sched), ys

    def chunk(state: TrainState, sched: Schedule):
        (state, sched), ys = jax.lax.scan(iteration, (state, sched), None,
                                          length=config.iters_per_chunk)
        learning, metrics, due, ran, teacher, phase_returns, stats, eval_due, eval_return = ys
        weight = learning.astype(jnp.float32)[:, None]
        denom = jnp.maximum(weight.sum(0), 1.0)
        metrics = {name: (v * weight).sum(0) / denom for name, v in metrics.items()}
        log = ChunkLog(metrics=metrics, recent_return=selection.recent_mean(state.ring),
                       episodes=state.ring.count, phase_due=due, phase_ran=ran, teacher=teacher,
                       phase_returns=phase_returns, phase_stats=stats, eval_due=eval_due,
                       eval_return=eval_return)
        return state, sched, log

    return Trainer(config=config, task=task, ensemble=ensemble, init=init, starts=starts,
                   init_from=init_from, chunk=chunk, evaluate=evaluate)
