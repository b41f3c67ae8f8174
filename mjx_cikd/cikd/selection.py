"""Policy selection by index masks (paper section 4.3): which member runs each env slot.

`member[N]` says which member runs each env slot; a slot draws its member when it starts an
episode. Acting computes all K members' actions and picks with a one-hot mask, so every shape is
static. The draw (`--policy_selection`) is uniform (the paper's), or, as in the authors' code
(`custom_train_agent_batch.py:169-207`), softmax over R_k / temperature or
epsilon-greedy on R_k with epsilon decaying linearly; both only after the random warm-up (before
it, uniform, as theirs before `start_weighted_size`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjx_cikd.cikd.election import softmax_weights


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
        eligible = ~jnp.isnan(scores)
        best = jax.nn.one_hot(jnp.argmax(jnp.where(eligible, scores, -jnp.inf)), k)
        greedy = jnp.where(eligible.any(), best, uniform)
        return epsilon * uniform + (1 - epsilon) * greedy
    raise ValueError(f"unknown policy selection {rule!r}")


def redraw_finished(key, member: jax.Array, finished: jax.Array, ensemble_size: int,
                    probs: jax.Array | None = None):
    """Slots whose episode just ended draw their next member: uniformly, or from `probs` [K]."""
    if probs is None:
        new = draw_members(key, member.shape[0], ensemble_size)
    else:
        new = jax.random.choice(key, ensemble_size, shape=member.shape, p=probs)
    return jnp.where(finished, new.astype(member.dtype), member)


def select_actions(actions: jax.Array, member: jax.Array) -> jax.Array:
    """actions[K, N, A], member[N] -> [N, A] via a one-hot mask over K."""
    mask = jax.nn.one_hot(member, actions.shape[0], dtype=actions.dtype)  # [N, K]
    return jnp.einsum("nk,kna->na", mask, actions)
