"""Evaluation: each member plays n episodes with its deterministic action tanh(mean).

Runs on its own batch of K * n evaluation envs (member k owns envs k*n .. k*n+n-1), for one full
time limit, without auto-reset: an env stops accumulating reward at its first termination or
truncation. Pure and jittable, so the trainer calls it inside the compiled loop; `rollout` is the
same play with every episode kept apart (`mjx_cikd.host.playback` tabulates and renders it).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.agent import networks
from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.agent.ensemble import Ensemble, Members
from mjx_cikd.config import Config
from mjx_cikd.envs.tasks import EnvState, Task


class Episodes(NamedTuple):
    """K x n deterministic episodes (`rollout`); member k played episodes k*n .. k*n+n-1."""

    returns: jax.Array  # [K, n] reward summed until the episode's first termination or truncation
    lengths: jax.Array  # [K, n] steps the episode lasted (that step included)
    trace: Any = None  # [T, K * n, ...] `record` of the state each step's action was chosen in


def rollout(task: Task, ensemble: Ensemble, members: Members, norm, state: EnvState,
            episodes: int, record: Callable[[EnvState], Any] | None = None) -> Episodes:
    """Each member's deterministic policy on its own `episodes` envs of `state` (K * episodes
    envs) for one full time limit; `record(state)` is kept for every step when given."""
    k, n = ensemble.size, episodes
    actors = tuple(m.actor for m in members)

    def step(carry, _):
        state, total, alive, length = carry
        seen = None if record is None else record(state)
        obs = norm_lib.normalize(norm, state.obs).reshape(k, n, -1)
        mean, _ = ensemble.policy_per_member(actors, obs)
        action = networks.deterministic_action(mean).reshape(k * n, -1)
        state, out = task.step_raw(state, action)
        total = total + alive * out.reward
        length = length + alive.astype(jnp.int32)
        alive = alive * (1.0 - (out.terminated | out.truncated))
        return (state, total, alive, length), seen

    init = (state, jnp.zeros(k * n), jnp.ones(k * n), jnp.zeros(k * n, jnp.int32))
    (_, total, _, length), trace = jax.lax.scan(step, init, None, length=task.episode_length)
    return Episodes(returns=total.reshape(k, n), lengths=length.reshape(k, n), trace=trace)


def make_evaluate(config: Config, task: Task, ensemble: Ensemble):
    """-> evaluate(members, normalizer, key, start=None) -> mean return per member [K].

    `start` (K * n env states) replaces the random reset: under MuJoCo Warp, whose reset costs
    seconds on a CPU, the trainer draws the evaluation starts once and reuses them."""
    k, n = ensemble.size, config.eval_episodes

    def evaluate(members: Members, norm, key, start=None):
        state = task.reset(jax.random.split(key, k * n)) if start is None else start
        return rollout(task, ensemble, members, norm, state, n).returns.mean(-1)

    return evaluate
