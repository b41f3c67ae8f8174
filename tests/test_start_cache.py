"""The start cache: a second identical run loads its env starts instead of simulating them, and
gets the very state a fresh reset gives; any change of keys or task is a miss."""

import jax
import numpy as np
from conftest import tiny

from mjx_cikd.envs import tasks as envs
from mjx_cikd.host import compiled, start_cache
from mjx_cikd.loop.trainer import make_train


def _bits(x):
    return np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x)


def _same(a, b) -> bool:
    """Bit for bit; NaN equals NaN (a state holds NaN where a statistic has no value yet)."""
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(_bits(x), _bits(y), equal_nan=np.issubdtype(_bits(x).dtype, np.floating))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_files_are_keyed_by_the_seed_keys_and_the_task(tmp_path):
    config = tiny(num_envs=4)
    task = envs.make_task(config)
    keys = compiled.seed_keys(config)

    def file(task=task, keys=keys, **changes):
        return start_cache.path(str(tmp_path), task, make_train(tiny(num_envs=4, **changes),
                                                                 task).layout, keys)

    here = file()
    assert here == file(keys=compiled.seed_keys(config))
    assert here != file(keys=compiled.seed_keys(tiny(num_envs=4, seed=1)))
    assert here != file(eval_episodes=3)
    assert here != file(audit_election=True)  # the audit's own starts are part of the file
    assert here != file(task=envs.make_task(tiny(env="ProbeConstant", num_envs=4)))
    # only a task with fixed starts (MuJoCo Warp) is worth a file, and only with a cache directory
    assert start_cache.enabled("dir", task.replace(impl="warp"))
    assert not start_cache.enabled("dir", task) and not start_cache.enabled("", task.replace(
        impl="warp"))


def test_a_saved_start_loads_back_exactly_and_a_mismatched_file_is_a_miss(tmp_path):
    config = tiny(num_envs=4)
    trainer = make_train(config)
    keys = compiled.seed_keys(config)
    starts = jax.jit(jax.vmap(trainer.starts))(keys)
    like = jax.eval_shape(jax.vmap(trainer.starts), keys)
    file = start_cache.path(str(tmp_path), trainer.task, trainer.layout, keys)
    assert start_cache.load(file, like) is None  # nothing yet
    start_cache.save(file, starts)
    assert _same(start_cache.load(file, like), starts)
    wider = jax.eval_shape(jax.vmap(make_train(tiny(num_envs=8)).starts), keys)
    assert start_cache.load(file, wider) is None  # the shapes differ: recompute, never reuse


def test_a_second_build_skips_the_reset_and_starts_from_the_same_state(tmp_path, monkeypatch):
    monkeypatch.setattr(start_cache, "enabled", lambda cache_dir, task: bool(cache_dir))
    config = tiny(num_envs=4)
    keys = compiled.seed_keys(config)
    fresh = jax.jit(jax.vmap(make_train(config).init))(keys)
    first = compiled.build(config, cache_dir=str(tmp_path))
    assert first.starts.compiled is not None  # cold: the reset is compiled
    state = first.start(keys)
    assert len(list((tmp_path / start_cache.SUBDIR).glob("*.npz"))) == 1
    second = compiled.build(config, cache_dir=str(tmp_path))
    assert second.starts.compiled is None  # warm: no reset compiled, the starts come from the file
    again = second.start(keys)
    assert _same(again, state) and _same(again, fresh)
