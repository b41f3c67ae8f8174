"""The shared ring buffer returns what was written, wraps at capacity, and reports its bytes."""

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd.agent import replay


def _rows(start, n, obs=3, act=2):
    base = jnp.arange(start, start + n, dtype=jnp.float32)
    return replay.Batch(obs=base[:, None] * jnp.ones((1, obs)),
                        action=base[:, None] * jnp.ones((1, act)) + 0.5, reward=base + 0.25,
                        next_obs=base[:, None] * jnp.ones((1, obs)) + 1.0,
                        terminated=(base % 2 == 0) * 1.0, truncated=(base % 3 == 0) * 1.0)


def test_add_then_gather_returns_what_was_written():
    buf = replay.init(12, 3, 2)
    buf = replay.add(buf, _rows(0, 4))
    assert int(buf.size) == 4 and int(buf.ptr) == 4
    obs, act, rew, nxt, term, trunc = replay.gather(buf, jnp.arange(4))  # a Batch, named
    np.testing.assert_array_equal(obs[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(act[:, 1], [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(rew, [0.25, 1.25, 2.25, 3.25])
    np.testing.assert_array_equal(nxt[:, 2], [1, 2, 3, 4])
    np.testing.assert_array_equal(term, [1, 0, 1, 0])
    np.testing.assert_array_equal(trunc, [1, 0, 0, 1])


def test_wraps_around_overwriting_the_oldest_rows():
    buf = replay.init(12, 3, 2)
    for start in range(0, 16, 4):  # 16 rows into 12: the first 4 are overwritten
        buf = replay.add(buf, _rows(start, 4))
    assert int(buf.size) == 12 and int(buf.ptr) == 4
    np.testing.assert_array_equal(buf.data.obs[:, 0], [12, 13, 14, 15, 4, 5, 6, 7, 8, 9, 10, 11])


def test_add_is_one_slice_update_not_a_roll():
    # a roll/concatenate of the whole buffer would show up as a concatenate or a full copy
    hlo = jax.jit(replay.add).lower(replay.init(64, 3, 2), _rows(0, 4)).as_text()
    assert "dynamic_update_slice" in hlo or "dynamic-update-slice" in hlo
    assert "concatenate" not in hlo


def test_samples_only_filled_rows():
    buf = replay.add(replay.init(64, 3, 2), _rows(0, 8))
    idx = replay.sample_indices(buf, jax.random.key(0), (3, 500))
    assert idx.min() >= 0 and idx.max() < 8
    assert len(np.unique(np.asarray(idx))) == 8


def test_reported_bytes_equal_the_arrays_bytes():
    buf = replay.init(40, 17, 6)
    assert replay.nbytes(40, 17, 6) == replay.arrays_nbytes(buf)
