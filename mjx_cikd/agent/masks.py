"""Choices by mask, for code under jit and vmap, where a Python branch cannot read a traced value:
`tree_where` picks between two pytrees leaf by leaf, `nan_argmax` the best score where NaN never
wins. Each is written once here, for every room that builds on agent/ (cikd/, loop/)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def tree_where(pred: jax.Array, a: Any, b: Any) -> Any:
    """`jnp.where(pred, a, b)` at every leaf of two pytrees of one structure. `pred`'s axes are
    the leaves' leading ones: a scalar picks whole trees, a [K] mask picks member rows."""

    def pick(x: jax.Array, y: jax.Array) -> jax.Array:
        leading = jnp.shape(pred) + (1,) * (jnp.ndim(x) - jnp.ndim(pred))
        return jnp.where(jnp.reshape(pred, leading), x, y)

    return jax.tree.map(pick, a, b)


def nan_argmax(scores: jax.Array, axis: int = -1) -> jax.Array:
    """The index of the largest score along `axis`, NaN never chosen (ties go to the lowest
    index; 0 when every score is NaN, which the caller tells apart)."""
    return jnp.argmax(jnp.where(jnp.isnan(scores), -jnp.inf, scores), axis=axis)
