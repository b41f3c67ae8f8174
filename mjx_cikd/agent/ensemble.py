"""The ensemble of K SAC members: stacked pytrees grouped by architecture.

Members that share a width form one group, stacked along a leading axis and updated by one
vmapped function (`batching.vmap`: a group of one runs unbatched, which XLA compiles far better
on the CPU); a homogeneous ensemble is a single group. The member index k (0..K-1) is the
user's order; `outputs in member order` gathers the groups' stacked outputs back into it, so a
traced member index (the teacher) can pick any member's output.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd.agent import batching
from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.agent.returns import Sample
from mjx_cikd.config import Config

Members = tuple[sac_lib.Agent, ...]  # one Agent per group, stacked over its members


class Group(NamedTuple):
    width: int
    members: tuple[int, ...]  # member indices, in stack order
    sac: sac_lib.SAC


class Ensemble(NamedTuple):
    groups: tuple[Group, ...]
    size: int
    order: np.ndarray  # position in the groups' concatenation -> member index
    inverse: np.ndarray  # member index -> position in the concatenation

    def init(self, key: jax.Array) -> Members:
        """Member k is initialised from the k-th of K independent keys."""
        keys = jax.random.split(key, self.size)
        return tuple(jax.vmap(g.sac.init)(keys[np.array(g.members)]) for g in self.groups)

    def _member_order(self, per_group: list) -> jax.Array:
        stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *per_group)
        if np.array_equal(self.inverse, np.arange(self.size)):
            return stacked
        return jax.tree.map(lambda x: x[self.inverse], stacked)

    def split(self, tree) -> list:
        """A pytree with a leading member axis [K, ...] -> one slice per group."""
        return [jax.tree.map(lambda x: x[np.array(g.members)], tree) for g in self.groups]

    def finite(self, members: Members) -> jax.Array:
        """[K] whether each member's parameters (actor, critic, temperature) are all finite."""
        per_group = []
        for m in members:
            leaves = [jnp.isfinite(x).reshape(x.shape[0], -1).all(1)
                      for x in jax.tree.leaves((m.actor, m.critic, m.log_alpha))]
            per_group.append(jnp.stack(leaves).all(0))
        return self._member_order(per_group)

    def policy(self, members: Members, obs: jax.Array):
        """Every member's (mean, log_std) on the same obs: [K, ..., A] each."""
        outs = [batching.vmap(g.sac.actor.apply, len(g.members), in_axes=(0, None))(m.actor, obs)
                for g, m in zip(self.groups, members)]
        return self._member_order(outs)

    def policy_per_member(self, actor_params: tuple, obs: jax.Array):
        """Each member on its own obs: obs [K, B, obs] -> [K, B, A] each."""
        outs = [batching.vmap(g.sac.actor.apply, len(g.members))(p, o)
                for g, p, o in zip(self.groups, actor_params, self.split(obs))]
        return self._member_order(outs)

    def q_values(self, critic_params: tuple, obs: jax.Array, action: jax.Array):
        """Every member's twin Q on the same (obs, action): [K, B, 2]."""
        outs = [batching.vmap(g.sac.critic.apply, len(g.members), in_axes=(0, None, None))(
                    p, obs, action) for g, p in zip(self.groups, critic_params)]
        return self._member_order(outs)

    def update(self, members: Members, batch: Sample, keys: jax.Array, actor: bool = True):
        """One SAC step for every member, each on its own batch ([K, B, ...]); the critics only
        where `actor` is False (`SAC.update`)."""
        new, metrics = [], []
        for g, m, b, k in zip(self.groups, members, self.split(batch), self.split(keys)):
            step = lambda m, b, k, sac=g.sac: sac.update(m, b, k, actor)  # noqa: E731
            m, met = batching.vmap(step, len(g.members))(m, b, k)
            new.append(m)
            metrics.append(met)
        return tuple(new), self._member_order(metrics)


def make_ensemble(config: Config, obs_size: int, action_size: int,
                  reward_bound: float | None = None) -> Ensemble:
    """The K members' SAC by width; `reward_bound`: the task's |r| per step, which derives a C51
    critic's support (`Task.reward_bound`)."""
    widths = config.member_widths
    groups = []
    for width in dict.fromkeys(widths):  # first-appearance order
        members = tuple(k for k, w in enumerate(widths) if w == width)
        groups.append(Group(width, members, sac_lib.make_sac(config, obs_size, action_size, width,
                                                             reward_bound)))
    order = np.array([k for g in groups for k in g.members])
    return Ensemble(groups=tuple(groups), size=len(widths), order=order,
                    inverse=np.argsort(order))
