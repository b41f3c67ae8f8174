"""The jitted training loop: `make_train(config)` -> init(key) and one compiled chunk.

One iteration (the unit of `lax.scan`), Algorithm 1 of the paper:
  all K actors act on obs[N] -> pick by player[N] -> one MJX vector step -> one replay write of
  N rows -> finished episodes feed their player's R_k statistics and redraw their player
  (`record_step`) -> U SAC updates of every member -> when due (`EvalCadence`), a deterministic
  evaluation of every member, kept in the state (`TrainState.last_eval`) -> at a phase point, a
  CIKD phase (the election, which reads that evaluation, then distillation) or the "(extra)"
  SAC updates (`cikd/phases.py`).
The evaluation comes before the phase, so a curve never measures a freshly distilled copy of the
teacher (the authors' order: their evaluator runs at t = 20000 one step before the callback that
distils at t = 20000, `custom_train_agent_batch.py:114-118, 152-153`).
The schedule (iteration index, steps toward the next phase point) is carried unbatched: under a
vmap over seeds, every `lax.cond` keeps a scalar predicate and runs one branch, never both.
Over several devices (`parallel.py`) this same body runs on every device's share of the envs;
`devices` marks the few places where the devices meet (their own draws, gathered statistics,
averaged metrics). After every iteration each member's parameters are checked for non-finite
values (`faults.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.agent import exploration, networks, replay, returns
from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.agent.ensemble import Ensemble, Members, make_ensemble
from mjx_cikd.cikd import election, phases, selection
from mjx_cikd.cikd.phases import PhaseOutcome
from mjx_cikd.config import Config
from mjx_cikd.envs import tasks as envs
from mjx_cikd.loop import parallel
from mjx_cikd.loop.evaluation import Score, make_score
from mjx_cikd.loop.logs import ChunkLog, IterationLog, summarise
from mjx_cikd.loop.state import Slots, TrainState

METRICS = ("critic_loss", "actor_loss", "alpha", "entropy", "q")


class Schedule(NamedTuple):
    """Shared by all seeds (never vmapped), so the conds it drives stay conds."""

    iteration: jax.Array  # vector steps taken
    since_phase: jax.Array  # vector steps toward the next phase point (updating ones only when
    #                         the interval is counted in SAC updates)
    phases: jax.Array  # phase points passed


class Updates(NamedTuple):
    """How a vector step's SAC updates read the buffer and which of them move the actors."""

    sample: returns.Sampler  # one-step or n-step samples (`returns.make_sampler`)
    batch_size: int  # this device's share of B
    policy_delay: int  # the actors and temperatures move at every d-th update of a vector step

    @staticmethod
    def of(config: Config, devices: parallel.Parallel) -> Updates:
        return Updates(sample=returns.make_sampler(config.n_step, config.gamma,
                                                   devices.local(config.num_envs)),
                       batch_size=devices.local(config.batch_size),
                       policy_delay=config.policy_delay)


def sac_steps(ensemble: Ensemble, updates: Updates, members: Members, buffer: replay.Replay,
              norm: norm_lib.Normalizer, key: jax.Array, count: int) -> tuple[Members, dict]:
    """`count` SAC updates of every member, each on its own batch from the shared buffer
    (`updates.sample` of [K, batch_size]); the actors move at updates 0, d, 2d, ... of the
    `count` (`--policy_delay` d). -> (members, metrics stacked over the updates)."""
    k, delay = ensemble.size, updates.policy_delay

    def sac_step(members: Members, step: tuple[jax.Array, jax.Array]) -> tuple[Members, dict]:
        i, key = step
        k_batch, k_update = jax.random.split(key)
        batch = updates.sample(buffer, norm, k_batch, (k, updates.batch_size))
        keys = jax.random.split(k_update, k)
        if delay == 1:
            return ensemble.update(members, batch, keys)
        return jax.lax.cond(i % delay == 0, lambda m: ensemble.update(m, batch, keys),
                            lambda m: ensemble.update(m, batch, keys, actor=False), members)

    return jax.lax.scan(sac_step, members, (jnp.arange(count), jax.random.split(key, count)))


def act(ensemble: Ensemble, members: Members, norm: norm_lib.Normalizer, obs: jax.Array,
        player: jax.Array, key: jax.Array, std_scale: jax.Array | None = None) -> jax.Array:
    """Every member's actor on every env's (normalised) observation, a tanh-Gaussian sample
    each, then the index mask picks player[i]'s action for env i: obs [N, obs] -> [N, A].
    `std_scale` [N]: each env's multiplier of the policy's std (`exploration.py`), if any."""
    mean, log_std = ensemble.policy(members, norm_lib.normalize(norm, obs))
    if std_scale is not None:
        log_std = log_std + jnp.log(std_scale)[:, None]
    actions, _ = networks.sample_action(mean, log_std, key)
    return selection.select_actions(actions, player)


class InitKeys(NamedTuple):
    """The six streams a seed's key splits into at init."""

    env: jax.Array  # the training envs' first states
    player: jax.Array  # the first player of every env slot
    members: jax.Array  # the members' parameters
    loop: jax.Array  # the loop's own stream
    eval: jax.Array  # evaluations and audits
    eval_start: jax.Array  # the fixed evaluation starts, where the task has them

    @staticmethod
    def of(key: jax.Array) -> InitKeys:
        return InitKeys(*jax.random.split(key, 6))


class IterationKeys(NamedTuple):
    """The seven streams an iteration's key splits into. The five that draw for envs and
    batches are this device's own (`Parallel.local_key`: the same keys on one device)."""

    loop: jax.Array  # the next iteration's key
    act: jax.Array  # the members' action samples
    explore: jax.Array  # the uniform actions before learning_starts
    env: jax.Array  # the resets of finished episodes
    select: jax.Array  # the next player of every finished slot
    update: jax.Array  # the SAC updates
    phase: jax.Array  # the phase point

    @staticmethod
    def of(key: jax.Array, devices: parallel.Parallel) -> IterationKeys:
        loop, act, explore, env, select, update, phase = jax.random.split(key, 7)
        own = devices.local_key
        return IterationKeys(loop=loop, act=own(act), explore=own(explore), env=own(env),
                             select=own(select), update=own(update), phase=phase)


def seed_starts(task: envs.Task, layout: envs.StartLayout, key: jax.Array) -> envs.Starts:
    """The task's first states for a seed's key, from the key's own streams."""
    keys = InitKeys.of(key)
    return task.starts(keys.env, keys.eval_start, layout)


class Trainer(NamedTuple):
    config: Config
    task: envs.Task
    ensemble: Ensemble
    layout: envs.StartLayout  # the first states a seed asks of the task
    init: Callable[..., TrainState]  # (key, starts: envs.Starts | None = None) -> TrainState
    chunk: Callable[[TrainState, Schedule], tuple[TrainState, Schedule, ChunkLog]]  # pure
    evaluate: Callable[..., Score]  # (members, normalizer, key, start) -> Score, [K] each

    def starts(self, key: jax.Array) -> envs.Starts:
        """The first states `init(key)` simulates when not given them."""
        return seed_starts(self.task, self.layout, key)

    def schedule(self) -> Schedule:
        zero = jnp.zeros((), jnp.int32)
        return Schedule(iteration=zero, since_phase=zero, phases=zero)


def make_init(config: Config, task: envs.Task, ensemble: Ensemble,
              layout: envs.StartLayout) -> Callable[..., TrainState]:
    """-> init(key, starts=None): a seed's state at t = 0."""
    k, n = ensemble.size, config.num_envs
    scales = exploration.Scales.of(config)

    def init(key: jax.Array, starts: envs.Starts | None = None) -> TrainState:
        """A seed's state at t = 0. `starts`: the task's first states for this key
        (`Trainer.starts`, which `start_cache` may have kept on disk), simulated when not given."""
        keys = InitKeys.of(key)
        starts = seed_starts(task, layout, key) if starts is None else starts
        slots = Slots(env=starts.env, player=selection.draw_members(keys.player, n, k),
                      ep_return=jnp.zeros(n), ep_full=starts.env.t == 0,
                      ep_start=jnp.zeros(n, jnp.int32),
                      std_scale=scales.draw(jax.random.fold_in(keys.player, 1), n))
        return TrainState(
            slots=slots,
            ring=election.init_ring(k, config.return_window), rate=election.init_rate(k),
            last_eval=Score(mean=jnp.full(k, jnp.nan), se=jnp.full(k, jnp.nan)),
            buffer=replay.init(config.buffer_rows, task.obs_size, task.action_size),
            norm=norm_lib.init(task.obs_size, config.normalize_obs),
            members=ensemble.init(keys.members), key=keys.loop, eval_key=keys.eval,
            eval_start=starts.eval, audit_start=starts.audit)

    return init


class StepFacts(NamedTuple):
    """What the shared statistics read of one vector step, per env slot (over several devices,
    gathered from all of them)."""

    player: jax.Array  # [N] the member that played each slot
    ep_return: jax.Array  # [N] the running episode's return, this step's reward included
    next_obs: jax.Array  # [N, obs] what the normaliser learns from
    reward: jax.Array  # [N]
    ended: jax.Array  # [N] a full episode (begun at t = 0) ended with this step
    ep_start: jax.Array  # [N] phase points passed when that episode began


def record_step(state: TrainState, env: envs.EnvState, out: envs.StepOut,
                phases_passed: jax.Array, acting: jax.Array, probs: jax.Array | None,
                key: jax.Array, devices: parallel.Parallel, k: int,
                scales: exploration.Scales) -> TrainState:
    """A vector step's episodes in the state: every full episode that ended enters its player's
    ring, every reward its player's rate (once the members act), every next observation the
    normaliser; a finished slot restarts its return and draws its next player (from `probs`,
    or uniformly) and its exploration scale."""
    slots = state.slots
    ep_return = slots.ep_return + out.reward
    finished = out.terminated | out.truncated
    seen = devices.gather(StepFacts(
        player=slots.player, ep_return=ep_return, next_obs=out.next_obs, reward=out.reward,
        ended=finished & slots.ep_full, ep_start=slots.ep_start))
    slots = Slots(
        env=env, player=selection.redraw_finished(key, slots.player, finished, k, probs),
        ep_return=jnp.where(finished, 0.0, ep_return), ep_full=slots.ep_full | finished,
        ep_start=jnp.where(finished, phases_passed, slots.ep_start),
        std_scale=scales.redraw(jax.random.fold_in(key, 1), slots.std_scale, finished))
    return state.replace(
        slots=slots, norm=norm_lib.update(state.norm, seen.next_obs),
        ring=election.record(state.ring, seen.player, seen.ep_return, seen.ended, seen.ep_start),
        rate=election.accumulate(state.rate, seen.player, seen.reward, acting))


class EvalCadence(NamedTuple):
    """When the periodic evaluation falls (`--eval_every`): every `every` env steps, or, by
    default (0), at every point of the phase schedule (every I SAC updates of each member, in any
    run) and on the run's last vector step. Wherever the election reads the evaluation (cikd
    with `--election_metric eval`), one also falls at every phase point, so it is never played
    twice (the authors' `eval` metric reads the last periodic evaluation,
    `train_ensemble_sac.py:402-403`)."""

    every: int  # env steps between evaluations; 0: at the schedule's points and the end
    last_iteration: int  # the vector step the run ends on (0-based)
    election_reads: bool

    @staticmethod
    def of(config: Config) -> EvalCadence:
        return EvalCadence(every=max(config.eval_every, 0),
                           last_iteration=config.last_step // config.num_envs - 1,
                           election_reads=config.algo == "cikd"
                           and config.election_metric == "eval")

    def due(self, point: jax.Array, phase_due: jax.Array, iteration: jax.Array,
            steps_before: jax.Array, steps_after: jax.Array) -> jax.Array:
        if self.every:
            due = (steps_after // self.every) > (steps_before // self.every)
        else:
            due = point | (iteration == self.last_iteration)
        return due | (phase_due & self.election_reads)


Iteration = Callable[[tuple[TrainState, Schedule], None],
                     tuple[tuple[TrainState, Schedule], IterationLog]]


def make_iteration(config: Config, task: envs.Task, ensemble: Ensemble,
                   evaluate: Callable[..., Score], phase_point: phases.PhasePoint,
                   devices: parallel.Parallel) -> Iteration:
    """One vector step of the loop, the unit of `lax.scan`: act, step, record, update,
    evaluate, and the phase point."""
    k, n = ensemble.size, config.num_envs
    cadence = EvalCadence.of(config)
    no_metrics = {name: jnp.zeros(k) for name in METRICS}
    skip = phases.make_skip(k)
    updates = Updates.of(config, devices)
    scales = exploration.Scales.of(config)
    # the actor's metrics are NaN on the updates --policy_delay skips: averaged over the others
    over_updates = jnp.nanmean if config.policy_delay > 1 else jnp.mean

    def sac_updates(state: TrainState, key: jax.Array) -> tuple[TrainState, dict]:
        members, metrics = sac_steps(ensemble, updates, state.members, state.buffer, state.norm,
                                     key, config.updates_per_step)
        return state.replace(members=members), devices.mean(
            jax.tree.map(lambda x: over_updates(x, 0), metrics))

    def iteration(carry: tuple[TrainState, Schedule],
                  _: None) -> tuple[tuple[TrainState, Schedule], IterationLog]:
        state, sched = carry
        keys = IterationKeys.of(state.key, devices)
        steps_before = sched.iteration * n
        steps_after = steps_before + n
        acting = steps_before >= config.learning_starts  # the members' policies act

        # ACT: every member's action, each slot's player's picked (uniform before they act)
        slots = state.slots
        action = act(ensemble, state.members, state.norm, slots.env.obs, slots.player, keys.act,
                     slots.std_scale if scales.on else None)
        uniform = jax.random.uniform(keys.explore, action.shape, minval=-1.0, maxval=1.0)
        action = jnp.where(acting, action, uniform)

        # STEP ENV, and one replay write of N rows
        env, out = task.step(slots.env, action, keys.env)
        buffer = replay.add(state.buffer, replay.Batch(
            obs=slots.env.obs, action=action, reward=out.reward, next_obs=out.next_obs,
            terminated=out.terminated.astype(jnp.float32),
            truncated=out.truncated.astype(jnp.float32)))

        # EPISODES: R_k's statistics, the normaliser, the next players (drawn by R_k as it was)
        probs = selection.episode_probs(config, phases.statistic(config, task, state),
                                        steps_after, acting)
        state = record_step(state.replace(buffer=buffer, key=keys.loop), env, out, sched.phases,
                            acting, probs, keys.select, devices, k, scales)

        # UPDATE: U SAC updates of every member, once past learning_starts
        learning = steps_after >= config.learning_starts
        state, metrics = jax.lax.cond(learning, sac_updates, lambda s, key: (s, no_metrics),
                                      state, keys.update)

        # the schedule's point: a phase point where the run has phases, and where the default
        # evaluation cadence evaluates in any run
        since = sched.since_phase + (learning if config.interval_in_updates else 1)
        point = (since >= config.phase_period) & (steps_after >= config.distill_warmup)
        due = point if config.phases_on else jnp.asarray(False)

        # EVALUATE, before the phase point: the periodic evaluation, which the election reads
        eval_due = cadence.due(point, due, sched.iteration, steps_before, steps_after)
        eval_key = jax.random.fold_in(state.eval_key, sched.iteration)
        last_eval = jax.lax.cond(
            eval_due, lambda s: evaluate(s.members, s.norm, eval_key, s.eval_start),
            lambda s: s.last_eval, state)
        state = state.replace(last_eval=last_eval)

        # PHASE POINT
        if config.phases_on:
            audit_key = jax.random.fold_in(eval_key, 1)  # apart from the evaluation's draws
            state, outcome = jax.lax.cond(due, phase_point, skip, state, sched.phases,
                                          keys.phase, audit_key)
        else:  # sac and ensemble have no phase points: no phase to trace or compile
            outcome = PhaseOutcome.skipped(k)

        sched = Schedule(iteration=sched.iteration + 1, since_phase=jnp.where(point, 0, since),
                         phases=sched.phases + due)
        return (state, sched), IterationLog(learning=learning, metrics=metrics, phase=outcome,
                                            eval_due=eval_due,
                                            eval_return=jnp.where(eval_due, last_eval.mean,
                                                                  jnp.nan),
                                            eval_se=jnp.where(eval_due, last_eval.se, jnp.nan),
                                            finite=ensemble.finite(state.members))

    return iteration


def make_train(config: Config, task: envs.Task | None = None) -> Trainer:
    task = task or envs.make_task(config)
    ensemble = make_ensemble(config, task.obs_size, task.action_size, task.reward_bound)
    k, n = ensemble.size, config.num_envs
    devices = parallel.Parallel(config)  # the identity on one device (parallel.py)
    evaluate = make_score(task, ensemble, config.eval_episodes)
    phase_point = phases.make_phase_point(
        config, task, ensemble, devices,
        audit_score=make_score(task, ensemble, config.audit_episodes))
    layout = envs.StartLayout(
        num_envs=n, eval_envs=k * config.eval_episodes,
        audit_envs=k * config.audit_episodes if config.audit_election else 0,
        stagger=config.stagger_episodes)
    iteration = make_iteration(config, task, ensemble, evaluate, phase_point, devices)

    def chunk(state: TrainState, sched: Schedule) -> tuple[TrainState, Schedule, ChunkLog]:
        (state, sched), logs = jax.lax.scan(iteration, (state, sched), None,
                                            length=config.iters_per_chunk)
        agree = parallel.replicas_agree(state.members) if devices.on else jnp.asarray(True)
        return state, sched, summarise(logs, state.ring, agree)

    return Trainer(config=config, task=task, ensemble=ensemble, layout=layout,
                   init=make_init(config, task, ensemble, layout), chunk=chunk,
                   evaluate=evaluate)
