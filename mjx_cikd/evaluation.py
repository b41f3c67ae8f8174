"""Evaluation: each member plays n episodes with its deterministic action tanh(mean).

Runs on its own batch of K * n evaluation envs (member k owns envs k*n .. k*n+n-1), for one full
time limit, without auto-reset: an env stops accumulating reward at its first termination or
truncation. Pure and jittable, so the trainer calls it inside the compiled loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjx_cikd import networks
from mjx_cikd import normalizer as norm_lib
from mjx_cikd.config import Config
from mjx_cikd.ensemble import Ensemble, Members
from mjx_cikd.envs import Task


def make_evaluate(config: Config, task: Task, ensemble: Ensemble):
    """-> evaluate(members, normalizer, key, start=None) -> mean return per member [K].

    `start` (K * n env states) replaces the random reset: under MuJoCo Warp, whose reset costs
    seconds on a CPU, the trainer draws the evaluation starts once and reuses them."""
    k, n = ensemble.size, config.eval_episodes

    def evaluate(members: Members, norm, key, start=None):
        state = task.reset(jax.random.split(key, k * n)) if start is None else start
        actors = tuple(m.actor for m in members)

        def step(carry, _):
            state, total, alive = carry
            obs = norm_lib.normalize(norm, state.obs).reshape(k, n, -1)
            mean, _ = ensemble.policy_per_member(actors, obs)
            action = networks.deterministic_action(mean).reshape(k * n, -1)
            state, out = task.step_raw(state, action)
            total = total + alive * out.reward
            alive = alive * (1.0 - (out.terminated | out.truncated))
            return (state, total, alive), None

        init = (state, jnp.zeros(k * n), jnp.ones(k * n))
        (_, total, _), _ = jax.lax.scan(step, init, None, length=task.episode_length)
        return total.reshape(k, n).mean(-1)

    return evaluate
