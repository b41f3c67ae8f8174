"""The jitted training loop: `make_train(config)` -> init(key) and one compiled chunk.

One iteration (the unit of `lax.scan`), Algorithm 1 of the paper:
  all K actors act on obs[N] -> pick by member[N] -> one MJX vector step -> one replay write of
  N rows -> finished episodes feed their member's R_k statistics and redraw their member -> U SAC
  updates of every member -> when due, a deterministic evaluation of every member -> at a phase
  point, a CIKD phase (election, then distillation) or the "(extra)" SAC updates.
The evaluation comes before the phase, so a curve never measures a freshly distilled copy of the
teacher (the authors' order: their evaluator runs at t = 20000 one step before the callback that
distils at t = 20000, `custom_train_agent_batch.py:114-118, 152-153`).
The schedule (iteration index, steps toward the next phase point) is carried unbatched: under a
vmap over seeds, every `lax.cond` keeps a scalar predicate and runs one branch, never both.
Over several devices (`parallel.py`) this same body runs on every device's share of the envs;
`par` marks the few places where the devices meet (their own draws, gathered statistics,
averaged metrics). After every iteration each member's parameters are checked for non-finite
values (`faults.py`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mjx_cikd.agent import networks, replay
from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.agent.ensemble import Ensemble, Members, make_ensemble
from mjx_cikd.cikd import distillation, election, selection
from mjx_cikd.config import Config
from mjx_cikd.envs import tasks as envs
from mjx_cikd.loop import faults, parallel
from mjx_cikd.loop.evaluation import Score, make_evaluate, make_score
from mjx_cikd.loop.logs import ChunkLog, IterationLog, PhaseOutcome  # noqa: F401

METRICS = ("critic_loss", "actor_loss", "alpha", "entropy", "q")


@struct.dataclass
class Slots:
    """What each of the N env slots carries: every leaf has the env axis first (after a seed
    axis), which is what the data-parallel mesh splits (`env_axis`)."""

    env: envs.EnvState
    member: jax.Array  # [N] which member runs each env slot
    ep_return: jax.Array  # [N] return of the running episode
    ep_full: jax.Array  # [N] the running episode began at t = 0 (a staggered first one did not)
    ep_start: jax.Array  # [N] phase points passed when the running episode began


@struct.dataclass
class TrainState:
    """Everything one seed carries from iteration to iteration."""

    slots: Slots
    ring: election.ReturnRing  # train_returns
    rate: election.RewardRate  # reward_rate, since the last phase point
    last_eval: jax.Array  # [K] the eval statistic of the last phase point (NaN before)
    buffer: replay.Replay
    norm: norm_lib.Normalizer
    members: Members
    key: jax.Array
    eval_key: jax.Array  # evaluation and audit draw from their own stream: never change training
    eval_start: envs.EnvState | None = None  # the task's fixed evaluation starts, if it has them
    audit_start: envs.EnvState | None = None  # and the audit's own (`envs.Starts`)
    election_start: envs.EnvState | None = None  # and the election's, with a count of its own


def env_axis(state: TrainState) -> TrainState:
    """The state's layout, a pytree of bools built beside it: True at the leaves whose axis
    after the seeds' runs over env slots or replay rows (`Slots`, `Replay.data`), False at the
    rest. Data parallelism splits the True leaves over devices (`parallel.state_specs`); chosen
    by structure, so a renamed or added field lands on its side without a list to keep."""
    layout = jax.tree.map(lambda _: False, state)
    rows = layout.buffer
    on = lambda tree: jax.tree.map(lambda _: True, tree)  # noqa: E731
    return layout.replace(slots=on(layout.slots), buffer=rows.replace(data=on(rows.data)))


class Schedule(NamedTuple):
    """Shared by all seeds (never vmapped), so the conds it drives stay conds."""

    iteration: jax.Array  # vector steps taken
    since_phase: jax.Array  # vector steps toward the next phase point (updating ones only when
    #                         the interval is counted in SAC updates)
    phases: jax.Array  # phase points passed


def sac_steps(ensemble, members, buffer: replay.Replay, norm: norm_lib.Normalizer, key,
              count: int, batch_size: int):
    """`count` SAC updates of every member, each on its own batch from the shared buffer
    (`replay.sample` of [K, batch_size]). -> (members, metrics stacked over the updates)."""
    k = ensemble.size

    def one(members, key):
        k_batch, k_update = jax.random.split(key)
        batch = replay.sample(buffer, norm, k_batch, (k, batch_size))
        return ensemble.update(members, batch, jax.random.split(k_update, k))

    return jax.lax.scan(one, members, jax.random.split(key, count))


def act(ensemble, members, norm: norm_lib.Normalizer, obs, member, key) -> jax.Array:
    """Every member's actor on every env's (normalised) observation, a tanh-Gaussian sample
    each, then the index mask picks member[i]'s action for env i: obs [N, obs] -> [N, A]."""
    mean, log_std = ensemble.policy(members, norm_lib.normalize(norm, obs))
    actions, _ = networks.sample_action(mean, log_std, key)
    return selection.select_actions(actions, member)


class InitKeys(NamedTuple):
    """The six streams a seed's key splits into at init."""

    env: jax.Array  # the training envs' first states
    member: jax.Array  # the first member of every env slot
    members: jax.Array  # the members' parameters
    loop: jax.Array  # the loop's own stream
    eval: jax.Array  # evaluations and audits
    eval_start: jax.Array  # the fixed evaluation starts, where the task has them

    @staticmethod
    def of(key: jax.Array) -> "InitKeys":
        return InitKeys(*jax.random.split(key, 6))


def seed_starts(task: envs.Task, layout: envs.StartLayout, key: jax.Array) -> envs.Starts:
    """The task's first states for a seed's key, from the key's own streams."""
    keys = InitKeys.of(key)
    return task.starts(keys.env, keys.eval_start, layout)


class Trainer(NamedTuple):
    config: Config
    task: envs.Task
    ensemble: Ensemble
    layout: envs.StartLayout  # the first states a seed asks of the task
    init: Callable[..., TrainState]  # (key, first: envs.Starts | None = None) -> TrainState
    chunk: Callable[[TrainState, Schedule], tuple[TrainState, Schedule, ChunkLog]]  # pure
    evaluate: Callable[..., jax.Array]  # (members, normalizer, key, start) -> [K]

    def starts(self, key: jax.Array) -> envs.Starts:
        """The first states `init(key)` simulates when not given them."""
        return seed_starts(self.task, self.layout, key)

    def schedule(self) -> Schedule:
        zero = jnp.zeros((), jnp.int32)
        return Schedule(iteration=zero, since_phase=zero, phases=zero)


def make_train(config: Config, task: envs.Task | None = None) -> Trainer:
    task = task or envs.make_task(config)
    ensemble = make_ensemble(config, task.obs_size, task.action_size)
    k, n, a = ensemble.size, config.num_envs, task.action_size
    evaluate = make_evaluate(config, task, ensemble)
    elect_eval = make_score(task, ensemble, config.election_episodes)
    audit_eval = make_score(task, ensemble, config.audit_episodes)
    # the election replays the evaluation's fixed starts (Warp) unless it plays another count
    own_election = (config.election_metric == "eval"
                    and config.election_episodes != config.eval_episodes)
    phase = distillation.make_phase(config, ensemble)
    par = parallel.Parallel(config)  # the identity on one device (parallel.py)
    # 0: evaluate on the last iteration of every chunk, i.e. at each log point
    eval_every = config.iters_per_chunk * n if config.eval_every <= 0 else config.eval_every

    layout = envs.StartLayout(
        num_envs=n, eval_envs=k * config.eval_episodes,
        audit_envs=k * config.audit_episodes if config.audit_election else 0,
        election_envs=k * config.election_episodes if own_election else 0,
        stagger=config.stagger_episodes)

    def init(key: jax.Array, first: envs.Starts | None = None) -> TrainState:
        """A seed's state at t = 0. `first`: the task's first states for this key
        (`Trainer.starts`, which `start_cache` may have kept on disk), simulated when not given."""
        keys = InitKeys.of(key)
        first = seed_starts(task, layout, key) if first is None else first
        slots = Slots(env=first.env, member=selection.draw_members(keys.member, n, k),
                      ep_return=jnp.zeros(n), ep_full=first.env.t == 0,
                      ep_start=jnp.zeros(n, jnp.int32))
        return TrainState(
            slots=slots,
            ring=election.init_ring(k, config.return_window), rate=election.init_rate(k),
            last_eval=jnp.full(k, jnp.nan),
            buffer=replay.init(config.buffer_rows, task.obs_size, a),
            norm=norm_lib.init(task.obs_size, config.normalize_obs),
            members=ensemble.init(keys.members), key=keys.loop, eval_key=keys.eval,
            eval_start=first.eval, audit_start=first.audit,
            election_start=first.election if own_election else first.eval)

    def sac_updates(state: TrainState, key, count: int, batch_size: int):
        members, metrics = sac_steps(ensemble, state.members, state.buffer, state.norm, key,
                                     count, par.local(batch_size))
        return state.replace(members=members), par.mean(jax.tree.map(lambda x: x.mean(0),
                                                                     metrics))

    no_metrics = {name: jnp.zeros(k) for name in METRICS}

    def scores(state: TrainState) -> jax.Array:
        """R_k as the election statistic reads it now (what policy selection ranks)."""
        if config.election_metric == "train_returns":
            return election.recent_mean(state.ring)
        if config.election_metric == "reward_rate":
            return election.reward_rate(state.rate, task.episode_length)
        return state.last_eval

    def cikd_phase(state: TrainState, phases, key, audit_key):
        """Election and distillation (paper section 4.4), with the audit measured first."""
        k_elect, k_eval, k_distil = jax.random.split(key, 3)
        nan = jnp.full(k, jnp.nan)
        audit = (audit_eval(state.members, state.norm, audit_key, state.audit_start)
                 if config.audit_election else Score(nan, nan))
        statistic_se = nan
        if config.election_metric == "eval":
            measured = elect_eval(state.members, state.norm, k_eval, state.election_start)
            state, statistic_se = state.replace(last_eval=measured.mean), measured.se
        elif config.election_metric == "train_returns":
            statistic_se = election.recent_se(state.ring)
        statistic = scores(state)
        teacher, eligible = election.elect_teacher(statistic, config.teacher, k_elect)
        confident = election.leads(statistic, statistic_se, teacher, config.election_z)
        go = eligible & (confident if config.election_rule == "confident" else True)
        if config.distill_schedule == "ada":
            go = go & election.ada_wants_phase(statistic, config.selection_temperature,
                                               config.ada_threshold)
        members, stats = phase(state.members, state.buffer, state.norm, teacher, k_distil)
        # a per-seed fact (no member eligible, or ada says no): keep the old members
        members = jax.tree.map(lambda new, old: jnp.where(go, new, old), members, state.members)
        none = PhaseOutcome.skipped(k).stats
        stats = jax.tree.map(lambda x, skipped: jnp.where(go, x, skipped), stats, none)
        outcome = PhaseOutcome(
            due=jnp.asarray(True), ran=go, teacher=jnp.where(eligible, teacher, -1),
            statistic=statistic, statistic_se=statistic_se, confident=confident,
            train_returns=election.recent_mean(state.ring),
            reward_rate=election.reward_rate(state.rate, task.episode_length),
            staleness=election.staleness(state.ring, phases), audit=audit.mean,
            audit_se=audit.se, stats=stats)
        return state.replace(members=members, rate=election.init_rate(k)), outcome

    def extra_phase(state: TrainState, phases, key, audit_key):
        """The "(extra)" baselines: the phase's gradient steps spent on SAC updates instead."""
        buffer = state.buffer
        steps = distillation.phase_steps(config, par.total(buffer.size))

        def one(i, members):
            k_batch, k_update = jax.random.split(jax.random.fold_in(key, i))
            batch = replay.sample(buffer, state.norm, k_batch,
                                  (k, par.local(config.distill_batch_size)))
            return ensemble.update(members, batch, jax.random.split(k_update, k))[0]

        members = jax.lax.fori_loop(0, steps, one, state.members)
        outcome = PhaseOutcome.skipped(k)._replace(
            due=jnp.asarray(True), ran=jnp.asarray(True),
            stats=PhaseOutcome.skipped(k).stats._replace(steps=steps))
        return state.replace(members=members), outcome

    def lr_phase(state: TrainState, phases, key, audit_key):
        """--lr_after_warmup: every member's actor and critic learning rate becomes LR (the
        control that separates the authors' learning-rate handover from the distillation)."""
        lr = config.lr_after_warmup
        members = tuple(m.replace(actor_opt=sac_lib.set_lr(m.actor_opt, lr),
                                  critic_opt=sac_lib.set_lr(m.critic_opt, lr))
                        for m in state.members)
        return state.replace(members=members), PhaseOutcome.skipped(k)._replace(
            due=jnp.asarray(True), ran=jnp.asarray(True))

    do_phase = (cikd_phase if config.algo == "cikd" else
                lr_phase if config.lr_after_warmup > 0 else extra_phase)

    def skip_phase(state: TrainState, phases, key, audit_key):
        return state, PhaseOutcome.skipped(k)

    def iteration(carry, _):
        state, sched = carry
        key, k_act, k_rand, k_env, k_sel, k_upd, k_phase = jax.random.split(state.key, 7)
        # this device's own draws for its envs and batches (the same keys on one device)
        k_act, k_rand, k_env, k_sel, k_upd = map(par.local_key, (k_act, k_rand, k_env, k_sel,
                                                                  k_upd))
        steps_before = sched.iteration * n
        steps_after = steps_before + n
        acting = steps_before >= config.learning_starts  # the members' policies act

        slots = state.slots
        action = act(ensemble, state.members, state.norm, slots.env.obs, slots.member, k_act)
        uniform = jax.random.uniform(k_rand, action.shape, minval=-1.0, maxval=1.0)
        action = jnp.where(acting, action, uniform)

        env, out = task.step(slots.env, action, k_env)
        buffer = replay.add(state.buffer, replay.Batch(
            obs=slots.env.obs, action=action, reward=out.reward, next_obs=out.next_obs,
            terminated=out.terminated.astype(jnp.float32)))
        ep_return = slots.ep_return + out.reward
        finished = out.terminated | out.truncated
        probs = None
        if config.policy_selection != "uniform":
            ramp = (jnp.clip(steps_after / config.selection_epsilon_steps, 0.0, 1.0)
                    if config.selection_epsilon_steps else 1.0)
            epsilon = 1.0 + ramp * (config.selection_epsilon - 1.0)
            probs = jnp.where(acting, selection.selection_probs(
                config.policy_selection, scores(state), config.selection_temperature, epsilon),
                1.0 / k)
        # what the shared statistics read comes from every device's envs
        everyone = par.gather(dict(member=slots.member, ep_return=ep_return,
                                   next_obs=out.next_obs, reward=out.reward,
                                   ended=finished & slots.ep_full, ep_start=slots.ep_start))
        slots = Slots(
            env=env, ep_return=jnp.where(finished, 0.0, ep_return),
            ep_full=slots.ep_full | finished,
            ep_start=jnp.where(finished, sched.phases, slots.ep_start),
            member=selection.redraw_finished(k_sel, slots.member, finished, k, probs))
        state = state.replace(
            slots=slots, buffer=buffer, key=key,
            norm=norm_lib.update(state.norm, everyone["next_obs"]),
            ring=election.record(state.ring, everyone["member"], everyone["ep_return"],
                                 everyone["ended"], everyone["ep_start"]),
            rate=election.accumulate(state.rate, everyone["member"], everyone["reward"], acting))

        learning = steps_after >= config.learning_starts
        state, metrics = jax.lax.cond(
            learning,
            lambda s, key: sac_updates(s, key, config.updates_per_step, config.batch_size),
            lambda s, key: (s, no_metrics), state, k_upd)

        eval_due = (steps_after // eval_every) > (steps_before // eval_every)
        eval_key = jax.random.fold_in(state.eval_key, sched.iteration)
        eval_return = jax.lax.cond(
            eval_due, lambda s: evaluate(s.members, s.norm, eval_key, s.eval_start),
            lambda s: jnp.full(k, jnp.nan), state)

        since = sched.since_phase + (learning if config.interval_in_updates else 1)
        if config.phases_on:
            due = (since >= config.phase_period) & (steps_after >= config.distill_warmup)
            audit_key = jax.random.fold_in(eval_key, 1)  # apart from the evaluation's draws
            state, outcome = jax.lax.cond(due, do_phase, skip_phase, state, sched.phases,
                                          k_phase, audit_key)
        else:  # sac and ensemble have no phase points: no phase to trace or compile
            due, outcome = jnp.asarray(False), PhaseOutcome.skipped(k)

        sched = Schedule(iteration=sched.iteration + 1, since_phase=jnp.where(due, 0, since),
                         phases=sched.phases + due)
        return (state, sched), IterationLog(learning=learning, metrics=metrics, phase=outcome,
                                            eval_due=eval_due, eval_return=eval_return,
                                            finite=ensemble.finite(state.members))

    def chunk(state: TrainState, sched: Schedule):
        (state, sched), logs = jax.lax.scan(iteration, (state, sched), None,
                                            length=config.iters_per_chunk)
        weight = logs.learning.astype(jnp.float32)[:, None]
        denom = jnp.maximum(weight.sum(0), 1.0)
        metrics = {name: (v * weight).sum(0) / denom for name, v in logs.metrics.items()}
        # the audit is for the record only: whatever it measures never stops or rolls back a run
        bad_returns = logs.eval_due[:, None] & ~jnp.isfinite(logs.eval_return)
        found = faults.check(logs.metrics, logs.learning, bad_returns, ~logs.finite)
        agree = parallel.replicas_agree(state.members) if par.on else jnp.asarray(True)
        log = ChunkLog(metrics=metrics, recent_return=election.recent_mean(state.ring),
                       episodes=state.ring.count, phase=logs.phase, eval_due=logs.eval_due,
                       eval_return=logs.eval_return, faults=found, replicas_agree=agree)
        return state, sched, log

    return Trainer(config=config, task=task, ensemble=ensemble, layout=layout, init=init,
                   chunk=chunk, evaluate=evaluate)
