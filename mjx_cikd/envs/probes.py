"""Probe tasks: pure-JAX environments whose optimal values are known in closed form.

They share the Playground/Brax interface (`reset(key)`, `step(state, action)`, a state with
`obs`, `reward`, `done`) so that the trainer's tests exercise the same code path as MJX tasks,
at a fraction of the compile time.

- `ProbeConstant`: reward 1 forever; only the time limit (10 steps) ends an episode. With
  truncation bootstrapped, Q(s, a) = 1 / (1 - gamma) everywhere.
- `ProbeTerminal`: reward 1, then the task terminates. Q(s, a) = 1.
- `ProbeTarget`: observation x ~ U(-1, 1), reward -(a - x)^2, then termination. The optimal
  action is a = x, Q*(x, a) = -(a - x)^2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

PROBE_TASKS = ("ProbeConstant", "ProbeTerminal", "ProbeTarget")
# |r| per step at most: ProbeTarget's -(a - x)^2 with a and x in [-1, 1]
REWARD_BOUND = {"ProbeConstant": 1.0, "ProbeTerminal": 1.0, "ProbeTarget": 4.0}


@struct.dataclass
class ProbeState:
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    key: jax.Array


class Probe(NamedTuple):
    name: str
    episode_length: int
    observation_size: int = 1
    action_size: int = 1

    def reset(self, key: jax.Array) -> ProbeState:
        key, sub = jax.random.split(key)
        if self.name == "ProbeTarget":
            obs = jax.random.uniform(sub, (1,), minval=-1.0, maxval=1.0)
        else:
            obs = jnp.ones((1,))
        return ProbeState(obs=obs, reward=jnp.zeros(()), done=jnp.zeros(()), key=key)

    def step(self, state: ProbeState, action: jax.Array) -> ProbeState:
        if self.name == "ProbeTarget":
            reward = -jnp.sum((action - state.obs) ** 2)
        else:
            reward = jnp.ones(())
        done = jnp.zeros(()) if self.name == "ProbeConstant" else jnp.ones(())
        return state.replace(reward=reward, done=done)


def make(name: str) -> Probe:
    return Probe(name=name, episode_length=10)
