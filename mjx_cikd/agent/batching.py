"""Mapping a function over members or seeds: `jax.vmap`, except over an axis of one.

Over an axis of size 1 the function runs on the inputs with that axis dropped, and its outputs
get it back. The result is the same; the program is not: XLA on the CPU compiles the gradient of a
LayerNorm'd network under a size-1 batch axis about 3x slower than the same network without the
axis (7 against 22 ms for a 2x256 critic at batch 512, and 35 against 11 ms for K = 3 members
inside a seed axis of 1; `docs/benchmarks.md`, "A batch axis of one"). Vanilla-SAC (K = 1) and
every single-seed run (S = 1) have such axes, and the defaults put LayerNorm in the critics.
`mapper` chooses for a whole state: MuJoCo Warp's state has leaves that its own batching rule
keeps without the axis, and there `jax.vmap` stays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

Axes = int | None | Sequence[int | None]


def _per(axes: Axes, count: int) -> tuple[int | None, ...]:
    if axes is None or isinstance(axes, int):
        return (axes,) * count
    if len(axes) != count:
        raise ValueError(f"{len(axes)} axes given for {count} values")
    return tuple(axes)


def vmap(fn: Callable[..., Any], size: int, in_axes: Axes = 0,
         out_axes: Axes = 0) -> Callable[..., Any]:
    """`jax.vmap(fn, in_axes, out_axes)` over an axis of `size`; for size 1, `fn` on the inputs
    without the axis, the axis put back on its outputs. `in_axes` and `out_axes`: one int or
    None for all, or one per argument / per output of a tuple-returning `fn`."""
    if size != 1:
        return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes)

    def drop(tree: Any, axis: int | None) -> Any:
        return tree if axis is None else jax.tree.map(lambda x: jnp.squeeze(x, axis), tree)

    def put_back(tree: Any, axis: int | None) -> Any:
        return tree if axis is None else jax.tree.map(lambda x: jnp.expand_dims(x, axis), tree)

    def on_one(*args: Any) -> Any:
        out = fn(*(drop(a, ax) for a, ax in zip(args, _per(in_axes, len(args)))))
        if isinstance(out_axes, (int, type(None))):
            return put_back(out, out_axes)
        back = [put_back(o, ax) for o, ax in zip(out, _per(out_axes, len(out)))]
        return tuple(back) if type(out) is tuple else type(out)(*back)

    return on_one


def mapper(size: int, trees: Any) -> Callable[..., Callable[..., Any]]:
    """-> map(fn, in_axes=..., out_axes=...) over an axis of `size` for a function of `trees`
    (shape pytrees, e.g. `jax.eval_shape`'s): `vmap` above where `size` is 1 and every leaf
    carries the axis first, else `jax.vmap` (some leaves are batched by a rule of their own)."""
    if size == 1 and all(x.shape[:1] == (1,) for x in jax.tree.leaves(trees)):
        return lambda fn, **axes: vmap(fn, 1, **axes)
    return jax.vmap
