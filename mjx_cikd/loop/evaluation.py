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


class Score(NamedTuple):
    """Each member's mean deterministic return over n episodes, and its noise."""

    mean: jax.Array  # [K]
    se: jax.Array  # [K] standard error of the mean: sample std (ddof 1) / sqrt(n); NaN at n = 1


def score(returns: jax.Array) -> Score:
    """[K, n] episode returns -> their Score."""
    n = returns.shape[-1]
    se = (jnp.std(returns, axis=-1, ddof=1) / jnp.sqrt(n) if n > 1
          else jnp.full(returns.shape[:-1], jnp.nan))
    return Score(mean=returns.mean(-1), se=se)


def make_score(task: Task, ensemble: Ensemble, episodes: int):
    """-> score(members, normalizer, key, start=None) -> Score over `episodes` per member.

    `start` (K * episodes env states) replaces the random reset: under MuJoCo Warp, whose reset
    costs seconds on a CPU, the trainer draws the starts once and reuses them."""
    k, n = ensemble.size, episodes

    def evaluate(members: Members, norm, key, start=None) -> Score:
        state = task.reset(jax.random.split(key, k * n)) if start is None else start
        return score(rollout(task, ensemble, members, norm, state, n).returns)

    return evaluate


def make_evaluate(config: Config, task: Task, ensemble: Ensemble):
    """-> evaluate(members, normalizer, key, start=None) -> mean return per member [K], over
    `--eval_episodes` (the periodic evaluation)."""
    scorer = make_score(task, ensemble, config.eval_episodes)
    return lambda members, norm, key, start=None: scorer(members, norm, key, start).mean
