"""Soft Actor-Critic for one member: its state, its three losses, and one gradient step.

References: Haarnoja et al. 2018, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep RL with a
Stochastic Actor" (critic Eq. 5-6, actor Eq. 7/10), and "Soft Actor-Critic Algorithms and
Applications" (automatic temperature, Eq. 17-18, target entropy -|A|). Everything here acts on a
single member; the ensemble vmaps it over members that share an architecture. The massively
parallel recipe's parts (issue 29) are options of the same losses: the target's n-step return
and discount (`returns.py`), the twin Qs' mean instead of their minimum (FastSAC), the actor and
temperature moved only every d-th update (`update(..., actor=False)`, TD3's delay), AdamW.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_cikd.agent import distributional, networks
from mjx_cikd.agent.gradient import gradient_step
from mjx_cikd.agent.returns import Sample
from mjx_cikd.config import Config
from mjx_cikd.loop import parallel


@struct.dataclass
class Agent:
    actor: Any
    critic: Any
    target_critic: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


class SAC(NamedTuple):
    """The pure functions of one architecture (width) of member."""

    actor: networks.Actor
    critic: networks.Critic
    actor_tx: optax.GradientTransformation
    critic_tx: optax.GradientTransformation
    alpha_tx: optax.GradientTransformation
    gamma: float
    tau: float
    init_alpha: float
    target_entropy: float
    obs_size: int
    action_size: int
    twin_q: str = "min"  # how the twin Qs combine in the target and the actor's objective
    support: distributional.Support | None = None  # C51's atoms, or None: scalar twin Qs

    def combine(self, q: jax.Array) -> jax.Array:
        """[..., 2] twin Qs -> [...]: their minimum (clipped double Q) or their mean."""
        return q.min(-1) if self.twin_q == "min" else q.mean(-1)

    def init(self, key: jax.Array) -> Agent:
        k_actor, k_critic = jax.random.split(key)
        obs = jnp.zeros((1, self.obs_size))
        act = jnp.zeros((1, self.action_size))
        actor = self.actor.init(k_actor, obs)
        critic = self.critic.init(k_critic, obs, act)
        log_alpha = jnp.log(jnp.asarray(self.init_alpha, jnp.float32))
        return Agent(actor=actor, critic=critic, target_critic=critic, log_alpha=log_alpha,
                     actor_opt=self.actor_tx.init(actor), critic_opt=self.critic_tx.init(critic),
                     alpha_opt=self.alpha_tx.init(log_alpha))

    # --- losses ---------------------------------------------------------------------
    def critic_loss(self, critic, agent: Agent, batch: Sample, key):
        """J_Q (Eq. 5): 1/2 (Q_i(s,a) - y)^2 with the soft target of Eq. 6, clipped double Q,
        y = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s')); over n steps,
        r and gamma (1 - terminated) are the sample's return and discount (`returns.py`)."""
        if self.support is not None:
            return self.distributional_critic_loss(critic, agent, batch, key)
        mean, log_std = self.actor.apply(agent.actor, batch.next_obs)
        next_action, next_logp = networks.sample_action(mean, log_std, key)
        next_q = self.combine(self.critic.apply(agent.target_critic, batch.next_obs, next_action))
        alpha = jnp.exp(agent.log_alpha)
        target = batch.reward + batch.discount * (next_q - alpha * next_logp)
        q = self.critic.apply(critic, batch.obs, batch.action)
        loss = 0.5 * jnp.mean(jnp.sum((q - jax.lax.stop_gradient(target)[:, None]) ** 2, -1))
        return loss, q.mean()

    def distributional_critic_loss(self, critic, agent: Agent, batch: Sample, key):
        """C51's J_Q (`distributional.py`): the cross-entropy of each twin's logits against the
        soft target's distribution, z' = r + gamma^m (1 - terminated) (z - alpha log pi(a'|s'))
        of the target critic's chosen twin, projected onto the support."""
        z = self.support.atoms_at()
        mean, log_std = self.actor.apply(agent.actor, batch.next_obs)
        next_action, next_logp = networks.sample_action(mean, log_std, key)
        probs = distributional.target_probs(
            self.critic.apply(agent.target_critic, batch.next_obs, next_action, True), z,
            self.twin_q)
        alpha = jnp.exp(agent.log_alpha)
        moved = batch.reward[:, None] + batch.discount[:, None] * (
            z - alpha * next_logp[:, None])
        target = jax.lax.stop_gradient(distributional.project(probs, moved, z))  # [B, A]
        logits = self.critic.apply(critic, batch.obs, batch.action, True)  # [B, 2, A]
        loss = -jnp.mean(jnp.sum(target[:, None] * jax.nn.log_softmax(logits, -1), (-2, -1)))
        return loss, distributional.mean(logits, z).mean()

    def actor_loss(self, actor, agent: Agent, batch: Sample, key):
        """J_pi (Eq. 7 with the reparameterisation of Eq. 10): alpha log pi(a|s) - min_i Q_i."""
        mean, log_std = self.actor.apply(actor, batch.obs)
        action, logp = networks.sample_action(mean, log_std, key)
        q = self.combine(self.critic.apply(agent.critic, batch.obs, action))
        alpha = jnp.exp(agent.log_alpha)
        return jnp.mean(alpha * logp - q), logp

    def alpha_loss(self, log_alpha, logp):
        """J(alpha) (Eq. 18): -alpha (log pi(a|s) + target_entropy), written on log alpha."""
        return -jnp.mean(log_alpha * jax.lax.stop_gradient(logp + self.target_entropy))

    # --- one gradient step of each (agent/gradient.py) -------------------------------------
    def update(self, agent: Agent, batch: Sample, key: jax.Array,
               actor: bool = True) -> tuple[Agent, dict]:
        """One gradient step of the critic, then (unless `actor` is False: the steps between
        two of `--policy_delay`) of the actor and the temperature; the target critic follows
        the critic by tau at every step. A step without the actor reports its losses as NaN."""
        k_critic, k_actor = jax.random.split(key)
        (c_loss, q_mean), critic, critic_opt = gradient_step(
            self.critic_loss, self.critic_tx, agent.critic, agent.critic_opt, agent, batch,
            k_critic, has_aux=True)
        agent = agent.replace(critic=critic, critic_opt=critic_opt)
        if not actor:
            target = optax.incremental_update(critic, agent.target_critic, self.tau)
            nan = jnp.full_like(c_loss, jnp.nan)
            return agent.replace(target_critic=target), {
                "critic_loss": c_loss, "actor_loss": nan, "alpha": jnp.exp(agent.log_alpha),
                "entropy": nan, "q": q_mean}

        (a_loss, logp), actor, actor_opt = gradient_step(
            self.actor_loss, self.actor_tx, agent.actor, agent.actor_opt, agent, batch, k_actor,
            has_aux=True)

        _, log_alpha, alpha_opt = gradient_step(self.alpha_loss, self.alpha_tx, agent.log_alpha,
                                                agent.alpha_opt, logp)

        target = optax.incremental_update(critic, agent.target_critic, self.tau)
        agent = agent.replace(actor=actor, actor_opt=actor_opt, log_alpha=log_alpha,
                              alpha_opt=alpha_opt, target_critic=target)
        metrics = {"critic_loss": c_loss, "actor_loss": a_loss, "alpha": jnp.exp(log_alpha),
                   "entropy": -jnp.mean(logp), "q": q_mean}
        return agent, metrics


def adam(config: Config, lr: float) -> optax.GradientTransformation:
    """The Adam of an actor or critic, SAC's and the distillation's alike (so that one's state
    can take the other's place), on gradients averaged over devices (parallel.py); AdamW's
    decoupled weight decay with `--weight_decay` > 0. Its learning rate lives in its state
    (`optax.inject_hyperparams`) in every run, those that change it (`--distill_optimizer
    handover`, `--lr_after_warmup`) or not: a constant learning rate is compiled into other
    roundings, so a run that changes it and its twin that does not would part before the
    change (issue 30)."""
    if config.weight_decay > 0:
        inner = optax.inject_hyperparams(optax.adamw)(learning_rate=lr,
                                                      weight_decay=config.weight_decay)
    else:
        inner = optax.inject_hyperparams(optax.adam)(learning_rate=lr)
    return parallel.Parallel(config).optimizer(inner)


def set_lr(opt_state, lr: float):
    """An `adam` state (with its learning rate in the state) with the learning rate `lr`."""
    averaging, inner = opt_state
    rate = inner.hyperparams["learning_rate"]
    return averaging, inner._replace(hyperparams={**inner.hyperparams,
                                                  "learning_rate": jnp.full_like(rate, lr)})


def learning_rate(opt_state) -> jax.Array:
    """The learning rate an `adam` state with a runtime learning rate holds."""
    return opt_state[1].hyperparams["learning_rate"]


def make_sac(config: Config, obs_size: int, action_size: int, width: int,
             reward_bound: float | None = None) -> SAC:
    """One width's SAC; `reward_bound` (the task's |r| per step, `envs.tasks.reward_bound`)
    derives a C51 critic's support where the config gives none."""
    # over several devices the gradients are averaged across them first (parallel.py)
    tx = parallel.Parallel(config).optimizer
    support = distributional.support(config, reward_bound)
    return SAC(
        actor=networks.Actor(config.actor_sizes(width), action_size, config.log_std_bounds),
        critic=networks.Critic(config.critic_sizes(width), config.critic_layer_norm, support),
        actor_tx=adam(config, config.actor_lr),
        critic_tx=adam(config, config.critic_lr),
        alpha_tx=tx(optax.adam(config.alpha_lr)),
        gamma=config.gamma, tau=config.tau, init_alpha=config.init_alpha,
        target_entropy=-config.target_entropy_scale * action_size, obs_size=obs_size,
        action_size=action_size, twin_q=config.twin_q, support=support)
