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

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mjx_cikd.agent import replay
from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.agent.ensemble import Ensemble, Members
from mjx_cikd.config import Config
from mjx_cikd.loop import parallel


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) -> jax.Array:
    """KL(N(mean_p, std_p^2) || N(mean_q, std_q^2)) of diagonal Gaussians, summed over the last axis."""
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


def make_phase(config: Config, ensemble: Ensemble):
    """-> phase(members, buffer, normalizer, teacher, key) -> (members, PhaseStats)."""
    par = parallel.Parallel(config)  # over devices: B_d / D rows each, gradients averaged
    # one Adam per network, as the authors set one up per model (distill.py:20-21), of the same
    # kind as SAC's: `handover` gives it to the student's SAC updates after the phase
    tx = sac_lib.adam(config, config.distill_lr)
    handover = config.distill_optimizer == "handover"
    batch_size = par.local(config.distill_batch_size)
    learn_policy = config.distill_parts in ("both", "policy")
    learn_critic = config.distill_parts in ("both", "critic")

    def teacher_of(members, teacher):
        """-> (targets(obs, action), the teacher's stacked member row per group): the teacher's
        (mean, log_std, Q) from the given parameters, one forward per width group (the teacher's
        own slice is gathered once), not one per member. Only the group that holds the traced
        teacher index is kept."""
        picks = []
        for group, m in zip(ensemble.groups, members):
            ids = jnp.asarray(np.array(group.members))
            pos = jnp.argmax(ids == teacher)
            picks.append((group, jnp.any(ids == teacher), jax.tree.map(lambda x: x[pos], m)))

        def targets(obs, action):
            chosen = None
            for group, holds, agent in picks:
                out = (*group.sac.actor.apply(agent.actor, obs),
                       group.sac.critic.apply(agent.critic, obs, action))
                chosen = out if chosen is None else jax.tree.map(
                    lambda a, b: jnp.where(holds, a, b), out, chosen)
            return jax.tree.map(jax.lax.stop_gradient, chosen)

        return targets, [agent for _, _, agent in picks]

    def gaps(members, teacher, obs, action):
        t_mean, t_log_std, t_q = teacher_of(members, teacher)[0](obs, action)
        mean, log_std = ensemble.policy(members, obs)
        q = ensemble.q_values(tuple(m.critic for m in members), obs, action)
        kl = gaussian_kl(t_mean, t_log_std, mean, log_std).mean(-1)
        return kl, jnp.sum((q - t_q) ** 2, -1).mean(-1)

    def group_loss(group, params, obs, action, t_mean, t_log_std, t_q):
        actor, critic = params
        loss = 0.0
        if learn_policy:
            mean, log_std = group.sac.actor.apply(actor, obs)
            loss = loss + gaussian_kl(t_mean, t_log_std, mean, log_std).mean()  # Eq. 1
        if learn_critic:
            q = group.sac.critic.apply(critic, obs, action)
            loss = loss + jnp.sum((q - t_q) ** 2, -1).mean()
        return loss

    def distil(members, buf, norm, teacher_targets, key, steps):
        """`steps` Adam steps of every member toward the teacher's targets (the teacher's own
        row is discarded by the caller)."""
        params = tuple((m.actor, m.critic) for m in members)
        opts = tuple((jax.vmap(tx.init)(a), jax.vmap(tx.init)(c)) for a, c in params)

        def step(i, carry):
            params, opts = carry
            batch = replay.sample(buf, norm, jax.random.fold_in(key, i), (batch_size,))
            obs, action = batch.obs, batch.action
            targets = teacher_targets(obs, action)
            new_params, new_opts = [], []
            for group, p, o in zip(ensemble.groups, params, opts):
                grad_fn = jax.grad(functools.partial(group_loss, group))
                grads = jax.vmap(grad_fn, in_axes=(0, None, None, None, None, None))(
                    p, obs, action, *targets)
                moved = [jax.vmap(tx.update)(g, s, x) for g, s, x in zip(grads, o, p)]
                new_params.append(tuple(optax.apply_updates(x, u)
                                        for x, (u, _) in zip(p, moved)))
                new_opts.append(tuple(s for _, s in moved))
            return tuple(new_params), tuple(new_opts)

        # a fixed D stays a static trip count (a scan); epochs make a loop of dynamic length
        bound = steps if config.distill_epochs > 0 else config.distill_steps
        params, opts = jax.lax.fori_loop(0, bound, step, (params, opts))
        new_members = []
        for m, (actor, critic), (actor_opt, critic_opt) in zip(members, params, opts):
            if handover:  # the student's SAC updates go on with the distillation's Adam
                m = m.replace(actor_opt=actor_opt if learn_policy else m.actor_opt,
                              critic_opt=critic_opt if learn_critic else m.critic_opt)
            if not learn_policy:  # bit-for-bit: the untouched part never goes through Adam
                actor = m.actor
            if not learn_critic:
                critic = m.critic
            if config.distill_target == "hard":
                target = critic
            else:
                target = optax.incremental_update(critic, m.target_critic, config.tau)
            new_members.append(m.replace(actor=actor, critic=critic, target_critic=target))
        return tuple(new_members)

    def copy(members, teacher_rows):
        """Every member becomes the teacher's actor and critics with their optimiser states."""
        out = []
        for m, t in zip(members, teacher_rows):
            size = jax.tree.leaves(m.actor)[0].shape[0]
            tile = lambda x: jnp.broadcast_to(x, (size,) + x.shape)  # noqa: E731
            out.append(m.replace(**{name: jax.tree.map(tile, getattr(t, name)) for name in (
                "actor", "critic", "actor_opt", "critic_opt")}))
        return tuple(out)

    def phase(members: Members, buf, norm, teacher, key):
        k_hold, k_steps = jax.random.split(key)
        held = replay.sample(buf, norm, k_hold, (batch_size,))
        held = (held.obs, held.action)
        kl_before, critic_before = gaps(members, teacher, *held)
        # The teacher's outputs come from its parameters at the phase start. Its own row in the
        # vmapped student update sees a gradient of rounding noise only, which Adam would blow
        # up to full-size steps: it must never be the moving target.
        teacher_targets, teacher_rows = teacher_of(members, teacher)
        if config.hard_copy:
            steps = jnp.asarray(0, jnp.int32)
            moved = copy(members, teacher_rows)
        else:
            steps = phase_steps(config, par.total(buf.size))
            moved = distil(members, buf, norm, teacher_targets, k_steps, steps)
        new_members = []
        for group, old, new in zip(ensemble.groups, members, moved):
            is_teacher = jnp.asarray(np.array(group.members)) == teacher  # [k_g]
            keep = lambda o, n: jnp.where(  # noqa: E731
                is_teacher.reshape((-1,) + (1,) * (o.ndim - 1)), o, n)
            new_members.append(jax.tree.map(keep, old, new))
        new_members = tuple(new_members)
        kl_after, critic_after = gaps(new_members, teacher, *held)
        gaps_all = par.mean((kl_before, kl_after, critic_before, critic_after))
        return new_members, PhaseStats(*gaps_all, steps)

    return phase
