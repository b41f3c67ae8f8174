"""`batching.vmap`: the same values as `jax.vmap`, and over an axis of one the function sees its
inputs without that axis (the program XLA compiles well on the CPU)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_cikd.agent import batching


def _fn(seen):
    def fn(x, y, scale):
        seen.append((x.shape, y["b"].shape))
        return (x * scale).sum(-1) + y["b"], scale * 2.0

    return fn


@pytest.mark.parametrize("size", [1, 3])
def test_the_same_values_as_jax_vmap_over_any_size(size):
    x = jnp.arange(size * 4.0).reshape(size, 4)
    y = {"b": jnp.arange(float(size))}
    scale = jnp.float32(1.5)
    mine = batching.vmap(_fn([]), size, in_axes=(0, 0, None), out_axes=(0, None))(x, y, scale)
    ref = jax.vmap(_fn([]), in_axes=(0, 0, None), out_axes=(0, None))(x, y, scale)
    assert type(mine) is tuple
    for a, b in zip(mine, ref):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b)


def test_over_an_axis_of_one_the_function_sees_no_batch_axis():
    seen = []
    fn = batching.vmap(_fn(seen), 1, in_axes=(0, 0, None), out_axes=(0, None))
    jax.jit(fn)(jnp.ones((1, 4)), {"b": jnp.ones(1)}, jnp.float32(1.0))
    assert seen == [((4,), ())]
    seen.clear()
    jax.jit(batching.vmap(_fn(seen), 2, in_axes=(0, 0, None), out_axes=(0, None)))(
        jnp.ones((2, 4)), {"b": jnp.ones(2)}, jnp.float32(1.0))
    assert seen == [((4,), ())]  # under jax.vmap the trace sees the same per-item shapes...
    text = jax.jit(batching.vmap(lambda x: x @ x.T, 1)).lower(jnp.ones((1, 3, 3))).as_text()
    assert "dot_general" in text and "batching_dims" not in text  # ...but no batched dot here


class Pair(NamedTuple):
    batched: jax.Array
    shared: jax.Array


def test_named_outputs_keep_their_type_and_a_mismatched_axes_list_is_refused():
    fn = batching.vmap(lambda a, b: Pair(a + b, b), 1, in_axes=(0, None))
    out = fn(jnp.ones((1, 2)), jnp.ones(2))
    assert type(out) is Pair and out.batched.shape == (1, 2) and out.shared.shape == (1, 2)
    with pytest.raises(ValueError, match="2 axes given for 3 values"):
        batching.vmap(lambda a, b, c: a, 1, in_axes=(0, None))(jnp.ones((1, 2)), 1, 2)


def test_a_state_with_leaves_outside_the_axis_keeps_jax_vmap():
    """MuJoCo Warp keeps some state leaves unbatched under its own rule: squeezing them would be
    wrong, so a single seed of such a state maps with jax.vmap, and a plain state runs unbatched."""
    plain = {"obs": jax.ShapeDtypeStruct((1, 5), jnp.float32)}
    warp = {**plain, "contacts": jax.ShapeDtypeStruct((100, 3), jnp.float32)}
    assert batching.mapper(1, warp) is jax.vmap
    assert batching.mapper(2, plain) is jax.vmap
    seen = []
    fn = batching.mapper(1, plain)(lambda x: seen.append(x.shape) or x * 2)
    assert fn(jnp.ones((1, 5))).shape == (1, 5) and seen == [(5,)]
