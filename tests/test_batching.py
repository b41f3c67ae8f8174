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


def test_a_state_with_leaves_outside_the_axis_maps_leaf_by_leaf():
    """MuJoCo Warp keeps some state leaves outside the seed axis under its own rule: over an axis
    of one those stay as they are, and the rest lose the axis and get it back."""
    def step(state):
        return {"obs": state["obs"] * 2, "contacts": state["contacts"] + 1}

    one = {"obs": jnp.ones(5), "contacts": jnp.zeros((100, 3))}
    batched = jax.eval_shape(lambda s: {"obs": s["obs"][None], "contacts": s["contacts"]}, one)
    axes = batching.leaf_axes(batched, jax.eval_shape(lambda s: s, one))
    assert axes == {"obs": 0, "contacts": None}
    seen = []
    fn = batching.vmap(lambda s: seen.append(s["obs"].shape) or step(s), 1, in_axes=(axes,),
                       out_axes=axes)
    out = fn({"obs": jnp.ones((1, 5)), "contacts": jnp.zeros((100, 3))})
    assert seen == [(5,)] and out["obs"].shape == (1, 5) and out["contacts"].shape == (100, 3)
    np.testing.assert_array_equal(out["contacts"], 1.0)
    with pytest.raises(ValueError, match="neither carries the axis"):
        batching.leaf_axes({"x": jax.ShapeDtypeStruct((2, 5), jnp.float32)},
                           {"x": jax.ShapeDtypeStruct((5,), jnp.float32)})


def test_a_single_cheetah_seed_under_warp_runs_unbatched_as_jax_vmap_would():
    """A real task whose MuJoCo Warp state keeps contact buffers outside the seed axis: host.build
    maps its single seed leaf by leaf, and two chunks (the second takes the first's state) log
    what the same chunk under jax.vmap logs."""
    from conftest import tiny

    from mjx_cikd.host import compiled as host
    from mjx_cikd.loop.trainer import make_train

    config = tiny(env="CheetahRun", impl="warp", num_envs=4, episode_length=64, log_every=128,
                  total_steps=256, algo="ensemble", ensemble_size=2)
    trainer = make_train(config)
    keys = host.seed_keys(config)
    starts = jax.vmap(trainer.starts)(keys)
    batched = jax.eval_shape(jax.vmap(trainer.init), keys, starts)
    one = jax.eval_shape(trainer.starts, keys[0])
    axes = batching.leaf_axes(batched, jax.eval_shape(trainer.init, keys[0], one))
    kept = jax.tree.leaves(axes, is_leaf=lambda a: a is None)
    assert 0 in kept and None in kept  # Warp leaves outside the axis, and the rest inside
    compiled = host.build(config, trainer, cache_dir="")
    reference = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, None), out_axes=(0, None, 0)))
    mine = compiled.init(keys, starts)
    theirs = jax.jit(jax.vmap(trainer.init))(keys, starts)
    sched = trainer.schedule()
    for _ in range(2):
        theirs, _, expected = reference(theirs, sched)
        mine, sched, log = compiled.chunk(mine, sched)
        for got, want in zip(jax.tree.leaves(log), jax.tree.leaves(expected)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert all(np.isfinite(v).all() for v in log.metrics.values())
