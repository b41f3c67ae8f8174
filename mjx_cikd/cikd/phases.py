"""The phase point (paper section 4.4, and its controls): what an iteration does when one falls
due, and what it reports of it (`PhaseOutcome`).

`make_phase_point` chooses, once per run, the phase of its algorithm:
  - cikd: the audit first (`--audit_election`, for the record only), the statistic R_k
    (`statistic`; under `eval` the periodic evaluation, which the trainer plays at every phase
    point just before it, `TrainState.last_eval`), the teacher's election, the confident
    rule and ada's test, then the distillation (`distillation.make_phase`). A seed with no
    eligible member, or whose rule says no, keeps its members: a mask, since the schedule's cond
    is one for all seeds;
  - "(extra)": the phase's gradient steps spent on SAC updates instead;
  - `--lr_after_warmup`: every member's actor and critic learning rate set.
`make_skip` is every iteration without a phase point. The trainer builds the evaluation the
audit plays (it owns the evaluation envs) and hands it in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.agent import returns
from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.agent.ensemble import Ensemble, Members
from mjx_cikd.agent.masks import tree_where
from mjx_cikd.agent.normalizer import Normalizer
from mjx_cikd.cikd import distillation, election
from mjx_cikd.config import Config
from mjx_cikd.envs.tasks import EnvState, Task
from mjx_cikd.loop import parallel
from mjx_cikd.loop.evaluation import Score
from mjx_cikd.loop.state import TrainState


class PhaseOutcome(NamedTuple):
    """What one iteration's phase point did; `skipped(k)` is every iteration without one."""

    due: jax.Array  # a phase point fell on this iteration
    ran: jax.Array  # the students moved (a teacher existed and the schedule wanted it)
    teacher: jax.Array  # the elected member, -1 when none was eligible (or "(extra)")
    statistic: jax.Array  # [K] the R_k the election ranked
    statistic_se: jax.Array  # [K] its standard error (NaN for reward_rate)
    confident: jax.Array  # the elected member led beyond its noise (--election_rule confident)
    train_returns: jax.Array  # [K] every cheap statistic, so one run scores each of them
    reward_rate: jax.Array  # [K]
    staleness: jax.Array  # [K] phase points since the train_returns episodes began (mean)
    audit: jax.Array  # [K] each member's deterministic return before the phase (--audit_election)
    audit_se: jax.Array  # [K] its standard error over --audit_episodes
    stats: distillation.PhaseStats  # [K] each, and the steps taken

    @staticmethod
    def skipped(k: int) -> PhaseOutcome:
        nan = jnp.full(k, jnp.nan)
        no_stats = distillation.PhaseStats(kl_before=nan, kl_after=nan, critic_before=nan,
                                           critic_after=nan, steps=jnp.asarray(0, jnp.int32))
        return PhaseOutcome(
            due=jnp.asarray(False), ran=jnp.asarray(False), teacher=jnp.asarray(-1, jnp.int32),
            statistic=nan, statistic_se=nan, confident=jnp.asarray(False), train_returns=nan,
            reward_rate=nan, staleness=nan, audit=nan, audit_se=nan, stats=no_stats)

    @staticmethod
    def without_election(k: int, steps: jax.Array | None = None) -> PhaseOutcome:
        """A phase point that moved the members without electing anyone ("(extra)", the
        learning-rate control), with the gradient steps it took."""
        skipped = PhaseOutcome.skipped(k)
        stats = skipped.stats if steps is None else skipped.stats._replace(steps=steps)
        return skipped._replace(due=jnp.asarray(True), ran=jnp.asarray(True), stats=stats)


# (state, phase points passed, key, audit key) -> (state, outcome)
PhasePoint = Callable[[TrainState, jax.Array, jax.Array, jax.Array],
                      tuple[TrainState, PhaseOutcome]]
# (members, normalizer, key, fixed starts or None) -> Score, K x n deterministic episodes
Scorer = Callable[[Members, Normalizer, jax.Array, EnvState | None], Score]


def statistic(config: Config, task: Task, state: TrainState) -> jax.Array:
    """R_k as `--election_metric` reads it now (what the election and policy selection rank)."""
    if config.election_metric == "train_returns":
        return election.recent_mean(state.ring)
    if config.election_metric == "reward_rate":
        return election.reward_rate(state.rate, task.episode_length)
    return state.last_eval.mean


def make_phase_point(config: Config, task: Task, ensemble: Ensemble, devices: parallel.Parallel,
                     audit_score: Scorer) -> PhasePoint:
    """The phase of this run's algorithm: cikd's, the learning-rate control's or "(extra)"."""
    if config.algo == "cikd":
        return make_cikd_phase(config, task, ensemble, audit_score)
    if config.lr_after_warmup > 0:
        return make_lr_phase(config, ensemble)
    return make_extra_phase(config, ensemble, devices)


def make_skip(k: int) -> PhasePoint:
    def skip(state: TrainState, phases: jax.Array, key: jax.Array,
             audit_key: jax.Array) -> tuple[TrainState, PhaseOutcome]:
        return state, PhaseOutcome.skipped(k)

    return skip


def make_cikd_phase(config: Config, task: Task, ensemble: Ensemble,
                    audit_score: Scorer) -> PhasePoint:
    k = ensemble.size
    distil = distillation.make_phase(config, ensemble)

    def cikd_phase(state: TrainState, phases: jax.Array, key: jax.Array,
                   audit_key: jax.Array) -> tuple[TrainState, PhaseOutcome]:
        """Election and distillation (paper section 4.4), with the audit measured first."""
        k_elect, k_distil = jax.random.split(key)
        nan = jnp.full(k, jnp.nan)
        # AUDIT: every member's true return before the phase, for the record only
        audited: Any = (audit_score(state.members, state.norm, audit_key, state.audit_start)
                        if config.audit_election else None)
        # STATISTIC: R_k and its standard error (under `eval`, the evaluation just played)
        statistic_se = nan
        if config.election_metric == "eval":
            statistic_se = state.last_eval.se
        elif config.election_metric == "train_returns":
            statistic_se = election.recent_se(state.ring)
        scores = statistic(config, task, state)
        # ELECT: the teacher, and whether this seed distils at all
        teacher, eligible = election.elect_teacher(scores, config.teacher, k_elect)
        confident = election.leads(scores, statistic_se, teacher, config.election_z)
        distil_now = eligible & (confident if config.election_rule == "confident" else True)
        if config.distill_schedule == "ada":
            distil_now = distil_now & election.ada_wants_phase(
                scores, config.selection_temperature, config.ada_threshold)
        # DISTIL: a seed that does not (no member eligible, or a rule says no) keeps its members
        members, stats = distil(state.members, state.buffer, state.norm, teacher, k_distil)
        members = tree_where(distil_now, members, state.members)
        stats = tree_where(distil_now, stats, PhaseOutcome.skipped(k).stats)
        outcome = PhaseOutcome(
            due=jnp.asarray(True), ran=distil_now, teacher=jnp.where(eligible, teacher, -1),
            statistic=scores, statistic_se=statistic_se, confident=confident,
            train_returns=election.recent_mean(state.ring),
            reward_rate=election.reward_rate(state.rate, task.episode_length),
            staleness=election.staleness(state.ring, phases),
            audit=nan if audited is None else audited.mean,
            audit_se=nan if audited is None else audited.se, stats=stats)
        return state.replace(members=members, rate=election.init_rate(k)), outcome

    return cikd_phase


def make_extra_phase(config: Config, ensemble: Ensemble,
                     devices: parallel.Parallel) -> PhasePoint:
    k = ensemble.size
    batch_size = devices.local(config.distill_batch_size)
    sample = returns.make_sampler(config.n_step, config.gamma, devices.local(config.num_envs))

    def extra_phase(state: TrainState, phases: jax.Array, key: jax.Array,
                    audit_key: jax.Array) -> tuple[TrainState, PhaseOutcome]:
        """The "(extra)" baselines: the phase's gradient steps spent on SAC updates instead."""
        steps = distillation.phase_steps(config, devices.total(state.buffer.size))

        def sac_step(i: jax.Array, members: Members) -> Members:
            k_batch, k_update = jax.random.split(jax.random.fold_in(key, i))
            batch = sample(state.buffer, state.norm, k_batch, (k, batch_size))
            return ensemble.update(members, batch, jax.random.split(k_update, k))[0]

        members = jax.lax.fori_loop(0, steps, sac_step, state.members)
        return state.replace(members=members), PhaseOutcome.without_election(k, steps)

    return extra_phase


def make_lr_phase(config: Config, ensemble: Ensemble) -> PhasePoint:
    k, lr = ensemble.size, config.lr_after_warmup

    def lr_phase(state: TrainState, phases: jax.Array, key: jax.Array,
                 audit_key: jax.Array) -> tuple[TrainState, PhaseOutcome]:
        """--lr_after_warmup: every member's actor and critic learning rate becomes LR (the
        control that separates the authors' learning-rate handover from the distillation)."""
        members = tuple(m.replace(actor_opt=sac_lib.set_lr(m.actor_opt, lr),
                                  critic_opt=sac_lib.set_lr(m.critic_opt, lr))
                        for m in state.members)
        return state.replace(members=members), PhaseOutcome.without_election(k)

    return lr_phase
