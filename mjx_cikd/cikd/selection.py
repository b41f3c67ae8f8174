"""Policy selection by index masks (paper section 4.3): which member plays each env slot.

`player[N]` says which member plays each env slot; a slot draws its player when it starts an
episode. Acting computes all K members' actions and picks with a one-hot mask, so every shape is
static. The draw (`--policy_selection`) is uniform (the paper's), or, as in the authors' code
(`custom_train_agent_batch.py:169-207`), softmax over R_k / temperature or
epsilon-greedy on R_k with epsilon decaying linearly; both only after the random warm-up (before
it, uniform, as theirs before `start_weighted_size`): `episode_probs` is the whole rule at a
given env step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjx_cikd.agent.masks import nan_argmax
from mjx_cikd.cikd.election import softmax_weights
from mjx_cikd.config import Config


def draw_members(key: jax.Array, num_envs: int, ensemble_size: int) -> jax.Array:
    return jax.random.randint(key, (num_envs,), 0, ensemble_size)


def selection_probs(rule: str, scores: jax.Array, temperature: float,
                    epsilon: jax.Array) -> jax.Array:
    """[K] probabilities of each member for a new episode under `rule` ("softmax" or
    "eps_greedy"), from the scores R_k."""
    k = scores.shape[0]
    uniform = jnp.full(k, 1.0 / k)
    if rule == "softmax":
        return softmax_weights(scores, temperature)
    if rule == "eps_greedy":
        best = jax.nn.one_hot(nan_argmax(scores), k)
        greedy = jnp.where((~jnp.isnan(scores)).any(), best, uniform)
        return epsilon * uniform + (1 - epsilon) * greedy
    raise ValueError(f"unknown policy selection {rule!r}")


def episode_probs(config: Config, scores: jax.Array, env_steps: jax.Array,
                  acting: jax.Array) -> jax.Array | None:
    """[K] the probabilities a new episode draws its player with after `env_steps`, from the
    scores R_k: epsilon goes linearly from 1 to `--selection_epsilon` over
    `--selection_epsilon_steps` env steps, and the draw is uniform until the members act
    (`acting`). None under the paper's uniform rule (`redraw_finished` draws uniformly)."""
    if config.policy_selection == "uniform":
        return None
    ramp = (jnp.clip(env_steps / config.selection_epsilon_steps, 0.0, 1.0)
            if config.selection_epsilon_steps else 1.0)
    epsilon = 1.0 + ramp * (config.selection_epsilon - 1.0)
    return jnp.where(acting, selection_probs(config.policy_selection, scores,
                                             config.selection_temperature, epsilon),
                     1.0 / scores.shape[0])


def redraw_finished(key: jax.Array, player: jax.Array, finished: jax.Array, ensemble_size: int,
                    probs: jax.Array | None = None) -> jax.Array:
    """Slots whose episode just ended draw their next player: uniformly, or from `probs` [K]."""
    if probs is None:
        new = draw_members(key, player.shape[0], ensemble_size)
    else:
        new = jax.random.choice(key, ensemble_size, shape=player.shape, p=probs)
    return jnp.where(finished, new.astype(player.dtype), player)


def select_actions(actions: jax.Array, player: jax.Array) -> jax.Array:
    """actions[K, N, A], player[N] -> [N, A] via a one-hot mask over K."""
    mask = jax.nn.one_hot(player, actions.shape[0], dtype=actions.dtype)  # [N, K]
    return jnp.einsum("nk,kna->na", mask, actions)
