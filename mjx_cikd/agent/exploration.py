"""Per-env exploration scales (`--explore_std_min`, `--explore_std_max`; issue 29).

Each env slot acts with its player's policy std times a scale of its own, drawn uniformly from
[min, max] at each of its episode starts and kept for the whole episode, as FastTD3 and PQL give
each env its own noise scale (FastTD3: U[0.001, 0.4] of a deterministic actor's Gaussian noise,
PQL U[0.05, 0.8]; for SAC the scale multiplies the policy's own std, which the temperature
already tunes). The targets, the losses and the evaluation read the policy unscaled. Both bounds
1 (the default): every scale is 1 and acting is SAC's own.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mjx_cikd.config import Config


class Scales(NamedTuple):
    low: float
    high: float

    @staticmethod
    def of(config: Config) -> Scales:
        return Scales(config.explore_std_min, config.explore_std_max)

    @property
    def on(self) -> bool:
        return (self.low, self.high) != (1.0, 1.0)

    def draw(self, key: jax.Array, n: int) -> jax.Array:
        """[n] fresh scales (all 1 when off)."""
        if not self.on:
            return jnp.ones(n)
        return jax.random.uniform(key, (n,), minval=self.low, maxval=self.high)

    def redraw(self, key: jax.Array, scale: jax.Array, started: jax.Array) -> jax.Array:
        """`scale` [N] with a fresh draw where a new episode starts (`started`) only."""
        if not self.on:
            return scale
        return jnp.where(started, self.draw(key, scale.shape[0]), scale)
