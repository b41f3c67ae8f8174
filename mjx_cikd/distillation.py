"""Inter-agent knowledge distillation (paper section 4.4, Eq. 1), one phase inside the jit.

For every student k != k_t, D gradient steps on batches of B_d buffer states minimising
    L(phi_k, phi_kt) = E_{s~D}[ KL(pi_kt(.|s) || pi_k(.|s)) ]                      (Eq. 1)
plus the critic distillation the paper adds for actor-critics: the l2 loss between the
student's and the teacher's Q1 and Q2 on buffer (s, a). The KL of two tanh-squashed Gaussians
equals the KL of their pre-tanh Gaussians (tanh is a bijection), so it is taken in closed form.
Each phase starts a fresh Adam (as the authors do). Afterwards each student's target critic is set
to its new critic; alpha is not distilled; the teacher (a traced index) is left bit-for-bit as it
was, whatever group it sits in.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mjx_cikd import normalizer as norm_lib
from mjx_cikd import replay
from mjx_cikd.config import Config
from mjx_cikd.ensemble import Ensemble, Members


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


def make_phase(config: Config, ensemble: Ensemble):
    """-> phase(members, buffer, normalizer, teacher, key) -> (members, PhaseStats)."""
    tx = optax.adam(config.distill_lr)
    steps, batch_size = config.distill_steps, config.distill_batch_size

    def sample(buf, norm, key):
        idx = replay.sample_indices(buf, key, (batch_size,))
        return norm_lib.normalize(norm, buf.obs[idx]), buf.action[idx]

    def teacher_of(members, teacher):
        """-> targets(obs, action): the teacher's (mean, log_std, Q) from the given parameters,
        one forward per width group (the teacher's own slice is gathered once), not one per
        member. Only the group that holds the traced teacher index is kept."""
        picks = []
        for group, m in zip(ensemble.groups, members):
            ids = jnp.asarray(np.array(group.members))
            pos = jnp.argmax(ids == teacher)
            take = lambda x: x[pos]  # noqa: E731
            picks.append((group, jnp.any(ids == teacher), jax.tree.map(take, m.actor),
                          jax.tree.map(take, m.critic)))

        def targets(obs, action):
            chosen = None
            for group, holds, actor, critic in picks:
                out = (*group.sac.actor.apply(actor, obs),
                       group.sac.critic.apply(critic, obs, action))
                chosen = out if chosen is None else jax.tree.map(
                    lambda a, b: jnp.where(holds, a, b), out, chosen)
            return jax.tree.map(jax.lax.stop_gradient, chosen)

        return targets

    def gaps(members, teacher, obs, action):
        t_mean, t_log_std, t_q = teacher_of(members, teacher)(obs, action)
        mean, log_std = ensemble.policy(members, obs)
        q = ensemble.q_values(tuple(m.critic for m in members), obs, action)
        kl = gaussian_kl(t_mean, t_log_std, mean, log_std).mean(-1)
        return kl, jnp.sum((q - t_q) ** 2, -1).mean(-1)

    def group_loss(group, params, obs, action, t_mean, t_log_std, t_q):
        actor, critic = params
        mean, log_std = group.sac.actor.apply(actor, obs)
        kl = gaussian_kl(t_mean, t_log_std, mean, log_std).mean()
        q = group.sac.critic.apply(critic, obs, action)
        return kl + jnp.sum((q - t_q) ** 2, -1).mean()

    def phase(members: Members, buf, norm, teacher, key):
        k_hold, k_steps = jax.random.split(key)
        held = sample(buf, norm, k_hold)
        kl_before, critic_before = gaps(members, teacher, *held)
        params = tuple((m.actor, m.critic) for m in members)
        opts = tuple(jax.vmap(tx.init)(p) for p in params)
        # The teacher's outputs come from its parameters at the phase start. Its own row in the
        # vmapped student update sees a gradient of rounding noise only, which Adam would blow
        # up to full-size steps: it must never be the moving target.
        teacher_targets = teacher_of(members, teacher)

        def step(carry, key):
            params, opts = carry
            obs, action = sample(buf, norm, key)
            targets = teacher_targets(obs, action)
            new_params, new_opts = [], []
            for group, p, o in zip(ensemble.groups, params, opts):
                grad_fn = jax.grad(functools.partial(group_loss, group))
                grads = jax.vmap(grad_fn, in_axes=(0, None, None, None, None, None))(
                    p, obs, action, *targets)
                updates, o = jax.vmap(tx.update)(grads, o, p)
                new_params.append(optax.apply_updates(p, updates))
                new_opts.append(o)
            return (tuple(new_params), tuple(new_opts)), None

        (params, _), _ = jax.lax.scan(step, (params, opts), jax.random.split(k_steps, steps))
        new_members = []
        for group, m, (actor, critic) in zip(ensemble.groups, members, params):
            is_teacher = jnp.asarray(np.array(group.members)) == teacher  # [k_g]
            keep = lambda old, new: jnp.where(  # noqa: E731
                is_teacher.reshape((-1,) + (1,) * (old.ndim - 1)), old, new)
            actor = jax.tree.map(keep, m.actor, actor)
            critic = jax.tree.map(keep, m.critic, critic)
            target = jax.tree.map(keep, m.target_critic, critic)
            new_members.append(m.replace(actor=actor, critic=critic, target_critic=target))
        new_members = tuple(new_members)
        kl_after, critic_after = gaps(new_members, teacher, *held)
        return new_members, PhaseStats(kl_before, kl_after, critic_before, critic_after)

    return phase
