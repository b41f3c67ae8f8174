"""The distributional critic (C51; `--critic_atoms`, issue 29): each twin Q is a categorical
distribution over a fixed support of atoms z_1..z_A on [v_min, v_max] (Bellemare, Dabney and
Munos 2017, "A Distributional Perspective on Reinforcement Learning"), its Q the mean.

The soft target moves every atom, z' = r + discount (z - alpha log pi(a'|s')) (the n-step return
and discount of `returns.py`), and `project` puts the target's probabilities back onto the
support (the paper's Algorithm 1); the critic's loss is the cross-entropy of its logits against
that projection. The support is given (`--v_min`, `--v_max`) or derived from the task's reward
bound and gamma: +-r_max / (1 - gamma) holds every discounted return (`support`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.config import Config, ConfigError


class Support(NamedTuple):
    v_min: float
    v_max: float
    atoms: int

    def atoms_at(self) -> jax.Array:
        """[A] z_1..z_A, evenly spaced on [v_min, v_max]."""
        return jnp.linspace(self.v_min, self.v_max, self.atoms)


def support(config: Config, reward_bound: float | None) -> Support | None:
    """The critic's support, or None for a scalar critic (`--critic_atoms 0`). `reward_bound`:
    the task's bound on |r| per step (`envs.tasks.reward_bound`), None where it has none."""
    if config.critic_atoms == 0:
        return None
    if config.v_min or config.v_max:
        return Support(config.v_min, config.v_max, config.critic_atoms)
    if reward_bound is None:
        raise ConfigError(f"--critic_atoms needs --v_min and --v_max on {config.env}: its "
                          f"rewards have no known bound to derive the support from")
    bound = reward_bound / (1.0 - config.gamma)
    return Support(-bound, bound, config.critic_atoms)


def project(probs: jax.Array, targets: jax.Array, z: jax.Array) -> jax.Array:
    """The C51 projection: probabilities `probs` [..., A] sitting at `targets` [..., A] onto the
    support `z` [A]. Each target is clipped to [z_1, z_A] and split between its two neighbouring
    atoms in proportion to its distance from each (all of it to one atom it lands on)."""
    a = z.shape[0]
    dz = (z[-1] - z[0]) / (a - 1)
    b = (jnp.clip(targets, z[0], z[-1]) - z[0]) / dz  # fractional atom index, in [0, A - 1]
    lower = jnp.floor(b)
    upper = jnp.ceil(b)
    to_lower = jnp.where(upper == lower, 1.0, upper - b)
    to_upper = 1.0 - to_lower
    onto = jax.nn.one_hot(lower.astype(jnp.int32), a) * (probs * to_lower)[..., None] + \
        jax.nn.one_hot(upper.astype(jnp.int32), a) * (probs * to_upper)[..., None]
    return onto.sum(-2)


def mean(logits: jax.Array, z: jax.Array) -> jax.Array:
    """[..., A] logits -> [...] the distribution's mean."""
    return jnp.sum(jax.nn.softmax(logits, -1) * z, -1)


def target_probs(next_logits: jax.Array, z: jax.Array, twin_q: str) -> jax.Array:
    """The bootstrap's distribution from the target critic's twins [..., 2, A]: the twin whose
    mean is lower (clipped double Q on distributions, as FastTD3) or the twins' mixture."""
    probs = jax.nn.softmax(next_logits, -1)
    if twin_q == "mean":
        return probs.mean(-2)
    lower = jnp.argmin(jnp.sum(probs * z, -1), -1)  # [...]
    return jnp.take_along_axis(probs, lower[..., None, None], axis=-2)[..., 0, :]
