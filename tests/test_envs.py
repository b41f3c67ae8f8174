"""The task registry on a real MJX task: time-limit truncation apart from termination, the true
final observation of a finished episode, and auto-reset to a fresh initial state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.config import ConfigError
from mjx_cikd.envs import tasks as envs


def test_unknown_task_and_unavailable_impl_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown task 'Nope'"):
        envs.check_task("Nope")
    with pytest.raises(ConfigError, match="MJX-JAX only"):
        envs.resolve_impl("halfcheetah", "warp")
    assert "CheetahRun" in envs.task_names() and "hopper" in envs.task_names()


def test_mjx_cartpole_truncates_at_the_time_limit_and_resets():
    task = envs.make_task(tiny(env="CartpoleSwingup", impl="jax", episode_length=3))
    assert (task.obs_size, task.action_size, task.impl) == (5, 1, "jax")
    step = jax.jit(task.step)
    state = jax.jit(task.reset)(jax.random.split(jax.random.key(0), 4))
    first = np.asarray(state.obs)
    action = jnp.full((4, 1), 0.5)
    for t in range(3):
        prev = state
        state, out = step(state, action, jax.random.key(t + 1))
    assert np.all(np.asarray(out.truncated)) and not np.any(np.asarray(out.terminated))
    np.testing.assert_array_equal(state.t, 0)
    # the transition keeps the true last observation; the env already shows a new episode
    _, raw = jax.jit(task.step_raw)(prev, action)
    np.testing.assert_allclose(out.next_obs, raw.next_obs, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out.next_obs, state.obs)
    assert not np.allclose(state.obs, first)  # fresh random initial states, not a replay


def test_reset_batches_gives_what_separate_resets_give():
    task = envs.make_task(tiny(env="CartpoleSwingup", impl="jax", episode_length=50))
    a, b = jax.random.split(jax.random.key(3), 4), jax.random.split(jax.random.key(4), 6)
    both = jax.jit(lambda a, b: task.reset_batches(a, b, stagger=True))(a, b)
    alone = (jax.jit(lambda a: task.reset(a, stagger=True))(a), jax.jit(task.reset)(b))
    for got, want in zip(both, alone):
        np.testing.assert_allclose(got.obs, want.obs, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got.t, want.t)
        for x, y in zip(jax.tree.leaves(got.inner), jax.tree.leaves(want.inner)):
            assert np.shape(x) == np.shape(y)
    assert both[0].t.shape == (4,) and np.any(np.asarray(both[0].t) > 0)  # staggered
    np.testing.assert_array_equal(both[1].t, 0)  # only the first batch is
