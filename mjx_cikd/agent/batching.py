"""Mapping a function over members or seeds: `jax.vmap`, except over an axis of one.

Over an axis of size 1 the function runs on the inputs with that axis dropped, and its outputs
get it back (leaf by leaf where a state has leaves outside the axis: `leaf_axes`). The result
is the same; the program is not: XLA on the CPU compiles the gradient of a LayerNorm'd network
under a size-1 batch axis about 3x slower than the same network without the axis (7 against 22
ms for a 2x256 critic at batch 512, and 35 against 11 ms for K = 3 members inside a seed axis of
1; `docs/benchmarks.md`, "A batch axis of one"). Vanilla-SAC (K = 1) and
every single-seed run (S = 1) have such axes, and the defaults put LayerNorm in the critics.
MuJoCo Warp's state has leaves that its own batching rule keeps without the axis: `leaf_axes`
finds them, and a single seed under Warp runs unbatched too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

Axes = int | None | Sequence[Any]  # per argument: an int, None, or a pytree prefix of them


def _prefix_map(f: Callable[[jax.Array, int], jax.Array], axes: Any, tree: Any) -> Any:
    """`f(leaf, axis)` on every leaf of `tree` whose axis is not None; `axes` is a pytree prefix
    of `tree`, as `jax.vmap`'s in_axes and out_axes are."""
    def on(axis: int | None, sub: Any) -> Any:
        return sub if axis is None else jax.tree.map(lambda x: f(x, axis), sub)

    return jax.tree.map(on, axes, tree, is_leaf=lambda a: a is None)


def vmap(fn: Callable[..., Any], size: int, in_axes: Axes = 0,
         out_axes: Any = 0) -> Callable[..., Any]:
    """`jax.vmap(fn, in_axes, out_axes)` over an axis of `size`; for size 1, `fn` on the inputs
    without the axis, the axis put back on its outputs. As for `jax.vmap`, `in_axes` is one int
    or None for all arguments or one per argument, and each entry, like `out_axes`, a pytree
    prefix of its value (e.g. `leaf_axes`'s, for a state with leaves outside the axis)."""
    if size != 1:
        return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes)

    def on_one(*args: Any) -> Any:
        axes = in_axes if in_axes is None or isinstance(in_axes, int) else tuple(in_axes)
        if isinstance(axes, tuple) and len(axes) != len(args):
            raise ValueError(f"{len(axes)} axes given for {len(args)} values")
        out = fn(*_prefix_map(jnp.squeeze, axes, args))
        return _prefix_map(jnp.expand_dims, out_axes, out)

    return on_one


def leaf_axes(batched: Any, unbatched: Any) -> Any:
    """Per leaf of a state mapped over an axis of one (shape pytrees: `jax.eval_shape` of the
    function under `jax.vmap` and without it): 0 where the leaf carries the axis, None where the
    mapping left it without (MuJoCo Warp's batching rule keeps its contact buffers, one for all
    worlds, outside the axis)."""
    def axis(b: jax.ShapeDtypeStruct, u: jax.ShapeDtypeStruct) -> int | None:
        if b.shape == (1, *u.shape):
            return 0
        if b.shape == u.shape:
            return None
        raise ValueError(f"a leaf of shape {b.shape} mapped over an axis of one, {u.shape} "
                         "without it: neither carries the axis nor is left without it")

    return jax.tree.map(axis, batched, unbatched)
