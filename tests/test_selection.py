"""Policy selection by masks, and the ring of each member's last M returns (R_k)."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from mjx_cikd import selection


def test_member_draws_are_uniform():
    members = np.asarray(selection.draw_members(jax.random.key(0), 30_000, 3))
    counts = np.bincount(members, minlength=3)
    assert set(np.unique(members)) == {0, 1, 2}
    assert stats.chisquare(counts).pvalue > 1e-3


def test_only_finished_slots_redraw():
    member = jnp.zeros(1000, jnp.int32)
    finished = jnp.arange(1000) % 2 == 0
    new = np.asarray(selection.redraw_finished(jax.random.key(1), member, finished, 4))
    assert (new[1::2] == 0).all()
    assert len(np.unique(new[0::2])) == 4


def test_mask_picks_each_env_its_members_action():
    k, n, a = 3, 7, 2
    actions = jnp.arange(k * n * a, dtype=jnp.float32).reshape(k, n, a)
    member = jnp.array([0, 1, 2, 2, 1, 0, 1])
    picked = selection.select_actions(actions, member)
    np.testing.assert_array_equal(picked, actions[member, jnp.arange(n)])


def test_ring_keeps_the_last_m_when_many_episodes_end_in_one_step():
    ring = selection.init_ring(2, 3)
    # step 1: member 0 finishes episodes with returns 1, 2 (env order)
    ring = selection.record(ring, jnp.array([0, 0, 1]), jnp.array([1.0, 2.0, 9.0]),
                            jnp.array([True, True, False]))
    np.testing.assert_allclose(selection.recent_mean(ring), [1.5, np.nan])
    # step 2: member 0 finishes five at once (10..14): only the last three (12, 13, 14) stay
    member = jnp.array([0, 1, 0, 0, 0, 0, 1])
    ret = jnp.array([10.0, 100.0, 11.0, 12.0, 13.0, 14.0, 5.0])
    finished = jnp.array([True, False, True, True, True, True, True])
    ring = selection.record(ring, member, ret, finished)
    np.testing.assert_array_equal(ring.count, [7, 1])
    assert sorted(np.asarray(ring.returns[0]).tolist()) == [12.0, 13.0, 14.0]
    np.testing.assert_allclose(selection.recent_mean(ring), [13.0, 5.0])


def test_ring_is_a_ring_across_steps():
    ring = selection.init_ring(1, 2)
    for r in [1.0, 2.0, 3.0, 4.0]:
        ring = selection.record(ring, jnp.array([0]), jnp.array([r]), jnp.array([True]))
    np.testing.assert_allclose(selection.recent_mean(ring), [3.5])
