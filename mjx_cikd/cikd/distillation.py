"""Inter-agent knowledge distillation (paper section 4.4, Eq. 1), one phase inside the jit.

For every student k != k_t, gradient steps on batches of B_d buffer states minimising
    L(phi_k, phi_kt) = E_{s~D}[ KL(pi_kt(.|s) || pi_k(.|s)) ]                      (Eq. 1)
plus the critic distillation the paper adds for actor-critics: the l2 loss between the
student's and the teacher's Q1 and Q2 on buffer (s, a) (`--distill_parts` keeps either alone, as
the authors' `--cpo-distill-pi-only` / `--cpo-distill-q-only`, train_ensemble_sac.py:334-385).
The KL of two tanh-squashed Gaussians equals the KL of their pre-tanh Gaussians (tanh is a
bijection), so it is taken in closed form. Each phase starts a fresh Adam per network (as the
authors do: `distill.py:18-21`). With `--distill_optimizer handover` a student's SAC updates then
go on with that Adam (its moments, its count and distill_lr) until the next phase, as they do in
the authors' code: chainer's `GradientMethod.setup` replaces every parameter's update rule
(`distill.py:20-21`), and their SAC optimisers' `update()` applies those rules; the teacher keeps
its own.

Effort: D steps, or E passes over the filled buffer, ceil(E * filled / B_d) steps, a loop of
dynamic length (the authors: 5 epochs at batch 256; they shuffle, here batches are drawn with
replacement). Targets afterwards: `soft`, one tau step of each student's target critic toward its
new critic (the authors call `sync_target_network()`, one soft update in their SAC), or `hard`,
the target set to the new critic. `hard_copy` copies the teacher's actor, critics and their
optimiser states into every student instead (the authors' `--cpo-use-hardcopy`, which also copies
the update rules and leaves the target critics). Alpha is never distilled; the teacher (a traced
index) is left bit-for-bit as it was, whatever group it sits in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mjx_cikd.agent import replay
from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.agent.ensemble import Ensemble, Group, Members
from mjx_cikd.agent.gradient import gradient_step
from mjx_cikd.agent.masks import tree_where
from mjx_cikd.agent.normalizer import Normalizer
from mjx_cikd.config import Config
from mjx_cikd.loop import parallel


def gaussian_kl(mean_p: jax.Array, log_std_p: jax.Array, mean_q: jax.Array,
                log_std_q: jax.Array) -> jax.Array:
    """KL(N(mean_p, std_p^2) || N(mean_q, std_q^2)) of diagonal Gaussians, summed over the
    last axis."""
    var_p, var_q = jnp.exp(2 * log_std_p), jnp.exp(2 * log_std_q)
    kl = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
    return jnp.sum(kl, axis=-1)


class PhaseStats(NamedTuple):
    kl_before: jax.Array  # [K] mean KL(teacher || member) on a held batch; 0 for the teacher
    kl_after: jax.Array
    critic_before: jax.Array  # [K] mean sum_i (Q_i^member - Q_i^teacher)^2 on that batch
    critic_after: jax.Array
    steps: jax.Array  # gradient steps the phase took (0 for a copy)


def phase_steps(config: Config, filled: jax.Array) -> jax.Array:
    """Gradient steps of one phase: D, or ceil(E * filled / B_d) with `--distill_epochs E`."""
    if config.distill_epochs > 0:
        return jnp.ceil(config.distill_epochs * filled / config.distill_batch_size).astype(
            jnp.int32)
    return jnp.asarray(config.distill_steps, jnp.int32)


# --- the teacher ------------------------------------------------------------------------------


class TeacherRow(NamedTuple):
    """One width group's share of the teacher (a traced member index)."""

    group: Group
    holds: jax.Array  # the teacher is one of this group's members
    agent: sac_lib.Agent  # the group's member at the teacher's place (its first when not holds)


class TeacherTargets(NamedTuple):
    """What every student is moved toward on a batch: the teacher's outputs, without gradient."""

    mean: jax.Array  # [B, A] the teacher policy's pre-tanh mean
    log_std: jax.Array  # [B, A]
    q: jax.Array  # [B, 2] its Q1 and Q2 on the batch's (s, a)


def teacher_rows(ensemble: Ensemble, members: Members,
                 teacher: jax.Array) -> tuple[TeacherRow, ...]:
    """Each group's member at the teacher's place: the teacher's own row is gathered once, and
    only the group that holds the traced index counts."""
    rows = []
    for group, m in zip(ensemble.groups, members):
        ids = jnp.asarray(np.array(group.members))
        pos = jnp.argmax(ids == teacher)
        rows.append(TeacherRow(group=group, holds=jnp.any(ids == teacher), agent=_row(m, pos)))
    return tuple(rows)


def _row(tree: Any, pos: jax.Array) -> Any:
    return jax.tree.map(lambda x: x[pos], tree)


def teacher_targets(rows: tuple[TeacherRow, ...], batch: replay.Batch) -> TeacherTargets:
    """The teacher's (mean, log_std, Q) on `batch`, one forward per width group (not one per
    member), the group that holds the teacher chosen."""
    chosen = None
    for row in rows:
        mean, log_std = row.group.sac.actor.apply(row.agent.actor, batch.obs)
        out = TeacherTargets(mean=mean, log_std=log_std, q=row.group.sac.critic.apply(
            row.agent.critic, batch.obs, batch.action))
        chosen = out if chosen is None else tree_where(row.holds, out, chosen)
    return jax.tree.map(jax.lax.stop_gradient, chosen)


class Gaps(NamedTuple):
    """How far every member is from the teacher on a batch."""

    kl: jax.Array  # [K] mean KL(teacher || member)
    critic: jax.Array  # [K] mean sum_i (Q_i^member - Q_i^teacher)^2


def gaps(ensemble: Ensemble, members: Members, teacher: jax.Array, batch: replay.Batch) -> Gaps:
    targets = teacher_targets(teacher_rows(ensemble, members, teacher), batch)
    mean, log_std = ensemble.policy(members, batch.obs)
    q = ensemble.q_values(tuple(m.critic for m in members), batch.obs, batch.action)
    return Gaps(kl=gaussian_kl(targets.mean, targets.log_std, mean, log_std).mean(-1),
                critic=jnp.sum((q - targets.q) ** 2, -1).mean(-1))


# --- the students' losses and steps -----------------------------------------------------------


def policy_loss(actor: Any, sac: sac_lib.SAC, batch: replay.Batch,
                targets: TeacherTargets) -> jax.Array:
    """Eq. 1 on a batch: the mean KL(teacher || student)."""
    mean, log_std = sac.actor.apply(actor, batch.obs)
    return gaussian_kl(targets.mean, targets.log_std, mean, log_std).mean()


def critic_loss(critic: Any, sac: sac_lib.SAC, batch: replay.Batch,
                targets: TeacherTargets) -> jax.Array:
    """The critic distillation: the l2 gap of Q1 and Q2 to the teacher's on the batch's (s, a)."""
    q = sac.critic.apply(critic, batch.obs, batch.action)
    return jnp.sum((q - targets.q) ** 2, -1).mean()


class Students(NamedTuple):
    """A width group's members as a phase moves them: each distilled network with its fresh
    Adam (None for a part `--distill_parts` leaves alone, which never goes through Adam)."""

    actor: Any
    actor_opt: Any
    critic: Any
    critic_opt: Any


def students_step(tx: optax.GradientTransformation, group: Group, students: Students,
                  batch: replay.Batch, targets: TeacherTargets) -> Students:
    """One Adam step of every member of a group (vmapped) toward the teacher's targets."""

    def step_one(s: Students) -> Students:
        actor, actor_opt, critic, critic_opt = s
        if s.actor is not None:
            _, actor, actor_opt = gradient_step(policy_loss, tx, s.actor, s.actor_opt, group.sac,
                                                batch, targets)
        if s.critic is not None:
            _, critic, critic_opt = gradient_step(critic_loss, tx, s.critic, s.critic_opt,
                                                  group.sac, batch, targets)
        return Students(actor=actor, actor_opt=actor_opt, critic=critic, critic_opt=critic_opt)

    return jax.vmap(step_one)(students)


def settle(config: Config, m: sac_lib.Agent, moved: Students) -> sac_lib.Agent:
    """A group's members after the distillation's steps: the parts it moved, the targets (one
    tau step toward the new critic, or set to it) and, with `handover`, the Adam it moved them
    with."""
    actor = m.actor if moved.actor is None else moved.actor
    critic = m.critic if moved.critic is None else moved.critic
    if config.distill_optimizer == "handover":  # the student's SAC updates go on with it
        m = m.replace(actor_opt=m.actor_opt if moved.actor is None else moved.actor_opt,
                      critic_opt=m.critic_opt if moved.critic is None else moved.critic_opt)
    if config.distill_target == "hard":
        target = critic
    else:
        target = optax.incremental_update(critic, m.target_critic, config.tau)
    return m.replace(actor=actor, critic=critic, target_critic=target)


def copy(members: Members, rows: tuple[TeacherRow, ...]) -> Members:
    """Every member becomes the teacher's actor and critics with their optimiser states."""
    out = []
    for m, row in zip(members, rows):
        size = jax.tree.leaves(m.actor)[0].shape[0]
        out.append(m.replace(**{name: _tiled(getattr(row.agent, name), size) for name in (
            "actor", "critic", "actor_opt", "critic_opt")}))
    return tuple(out)


def _tiled(tree: Any, size: int) -> Any:
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (size,) + x.shape), tree)


def keep_teacher(ensemble: Ensemble, old: Members, new: Members, teacher: jax.Array) -> Members:
    """`new`, except the teacher's own row, which stays `old`'s bit for bit."""
    return tuple(tree_where(jnp.asarray(np.array(group.members)) == teacher, o, n)
                 for group, o, n in zip(ensemble.groups, old, new))


Phase = Callable[[Members, replay.Replay, Normalizer, jax.Array, jax.Array],
                 tuple[Members, PhaseStats]]


def make_phase(config: Config, ensemble: Ensemble) -> Phase:
    """-> phase(members, buffer, normalizer, teacher, key) -> (members, PhaseStats)."""
    devices = parallel.Parallel(config)  # over devices: B_d / D rows each, gradients averaged
    # one Adam per network, as the authors set one up per model (distill.py:20-21), of the same
    # kind as SAC's: `handover` gives it to the student's SAC updates after the phase
    tx = sac_lib.adam(config, config.distill_lr)
    batch_size = devices.local(config.distill_batch_size)
    learn_policy = config.distill_parts in ("both", "policy")
    learn_critic = config.distill_parts in ("both", "critic")

    def fresh(params: Any) -> Any:
        """A fresh Adam state of every member's network (None for a part left alone)."""
        return None if params is None else jax.vmap(tx.init)(params)

    def distil(members: Members, buffer: replay.Replay, norm: Normalizer,
               rows: tuple[TeacherRow, ...], key: jax.Array, steps: jax.Array) -> Members:
        """`steps` Adam steps of every member toward the teacher's targets (the teacher's own
        row is discarded by the caller)."""
        start = []
        for m in members:
            actor = m.actor if learn_policy else None
            critic = m.critic if learn_critic else None
            start.append(Students(actor=actor, actor_opt=fresh(actor), critic=critic,
                                  critic_opt=fresh(critic)))

        def step(i: jax.Array, students: tuple[Students, ...]) -> tuple[Students, ...]:
            batch = replay.sample(buffer, norm, jax.random.fold_in(key, i), (batch_size,))
            targets = teacher_targets(rows, batch)
            return tuple(students_step(tx, group, s, batch, targets)
                         for group, s in zip(ensemble.groups, students))

        # a fixed D stays a static trip count (a scan); epochs make a loop of dynamic length
        bound = steps if config.distill_epochs > 0 else config.distill_steps
        moved = jax.lax.fori_loop(0, bound, step, tuple(start))
        return tuple(settle(config, m, s) for m, s in zip(members, moved))

    def phase(members: Members, buffer: replay.Replay, norm: Normalizer, teacher: jax.Array,
              key: jax.Array) -> tuple[Members, PhaseStats]:
        k_hold, k_steps = jax.random.split(key)
        held = replay.sample(buffer, norm, k_hold, (batch_size,))
        before = gaps(ensemble, members, teacher, held)
        # The teacher's outputs come from its parameters at the phase start. Its own row in the
        # vmapped student update sees a gradient of rounding noise only, which Adam would blow
        # up to full-size steps: it must never be the moving target.
        rows = teacher_rows(ensemble, members, teacher)
        if config.hard_copy:
            steps, moved = jnp.asarray(0, jnp.int32), copy(members, rows)
        else:
            steps = phase_steps(config, devices.total(buffer.size))
            moved = distil(members, buffer, norm, rows, k_steps, steps)
        new_members = keep_teacher(ensemble, members, moved, teacher)
        before, after = devices.mean((before, gaps(ensemble, new_members, teacher, held)))
        return new_members, PhaseStats(kl_before=before.kl, kl_after=after.kl,
                                       critic_before=before.critic,
                                       critic_after=after.critic, steps=steps)

    return phase
