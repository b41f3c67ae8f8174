"""Actor and critic networks, and the tanh-squashed Gaussian policy they define.

The actor outputs the mean and log-std of a diagonal Gaussian u ~ N(mu, sigma^2); the action is
a = tanh(u), so log pi(a|s) = log N(u) - sum log(1 - tanh(u)^2) (Haarnoja et al. 2018, App. C).
The deterministic action used by evaluation is tanh(mu). The critic is a twin Q (clipped double Q).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from mjx_cikd.agent import distributional

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
CLIP_LOG_STD_MIN = -20.0  # the authors' hard clip is [-20, 2] (train_ensemble_sac.py:82)
SOFTPLUS_MIN_STD = 0.001  # brax/training/distribution.py, NormalTanhDistribution(min_std)


class MLP(nn.Module):
    sizes: tuple[int, ...]  # each hidden layer's width, input side first
    out: int
    layer_norm: bool = False  # LayerNorm after each hidden activation (Brax's MLP order)

    @nn.compact
    def __call__(self, x):
        for size in self.sizes:
            x = nn.relu(nn.Dense(size)(x))
            if self.layer_norm:
                x = nn.LayerNorm()(x)
        return nn.Dense(self.out)(x)


class Actor(nn.Module):
    """s -> (mu, log_sigma) of the pre-tanh Gaussian."""

    sizes: tuple[int, ...]  # hidden layers' widths (Config.actor_sizes)
    action_size: int
    log_std_bounds: str = "smooth"  # smooth | clip | softplus (config.log_std_bounds)

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.sizes, 2 * self.action_size)(obs)
        mean, raw = jnp.split(out, 2, axis=-1)
        if self.log_std_bounds == "clip":
            return mean, jnp.clip(raw, CLIP_LOG_STD_MIN, LOG_STD_MAX)
        if self.log_std_bounds == "softplus":  # Brax's NormalTanhDistribution: std 0.69 at 0
            return mean, jnp.log(nn.softplus(raw) + SOFTPLUS_MIN_STD)
        # smooth squashing into [LOG_STD_MIN, LOG_STD_MAX] keeps gradients alive at the edges
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)
        return mean, log_std


class Critic(nn.Module):
    """(s, a) -> [Q1, Q2], two independent MLPs, with LayerNorm in their hidden layers when
    `layer_norm` (as MuJoCo Playground's tuned SAC, `q_network_layer_norm`). With `support`
    (C51, `distributional.py`) each twin outputs logits over the support's atoms: the call gives
    their means as [Q1, Q2], and with `logits=True` the logits [..., 2, A]."""

    sizes: tuple[int, ...]  # each twin's hidden layers' widths (Config.critic_sizes)
    layer_norm: bool = False
    support: distributional.Support | None = None  # C51's atoms, or None: a scalar Q

    @nn.compact
    def __call__(self, obs, action, logits: bool = False):
        x = jnp.concatenate([obs, action], axis=-1)
        if self.support is None:
            q = [MLP(self.sizes, 1, self.layer_norm)(x)[..., 0] for _ in range(2)]
            return jnp.stack(q, axis=-1)
        out = jnp.stack([MLP(self.sizes, self.support.atoms, self.layer_norm)(x)
                         for _ in range(2)], axis=-2)
        return out if logits else distributional.mean(out, self.support.atoms_at())


def sample_action(mean, log_std, key):
    """A reparameterised tanh-Gaussian sample and its log-probability."""
    std = jnp.exp(log_std)
    u = mean + std * jax.random.normal(key, mean.shape)
    action = jnp.tanh(u)
    log_normal = -0.5 * (((u - mean) / std) ** 2 + 2 * log_std + math.log(2 * math.pi))
    # log(1 - tanh(u)^2) written stably: 2 (log 2 - u - softplus(-2u))
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return action, jnp.sum(log_normal - log_det, axis=-1)


def deterministic_action(mean):
    return jnp.tanh(mean)
