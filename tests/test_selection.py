"""Policy selection by masks: uniform draws, and the authors' softmax and epsilon-greedy."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from mjx_cikd.cikd import selection


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


def test_softmax_selection_follows_the_scores_over_the_temperature():
    scores = jnp.array([1.0, 2.0, np.nan])
    probs = np.asarray(selection.selection_probs("softmax", scores, 0.5, 0.0))
    e = np.exp(np.array([2.0, 4.0]) - 4.0)
    np.testing.assert_allclose(probs, [e[0] / e.sum(), e[1] / e.sum(), 0.0], rtol=1e-6)
    draws = np.asarray(selection.redraw_finished(jax.random.key(2), jnp.zeros(20_000, jnp.int32),
                                                 jnp.ones(20_000, bool), 3, jnp.asarray(probs)))
    counts = np.bincount(draws, minlength=3)
    assert counts[2] == 0
    assert stats.chisquare(counts[:2], probs[:2] * 20_000).pvalue > 1e-3


def test_eps_greedy_mixes_uniform_and_the_best_member():
    probs = selection.selection_probs("eps_greedy", jnp.array([3.0, 7.0, 5.0]), 1.0, 0.3)
    np.testing.assert_allclose(probs, [0.1, 0.8, 0.1], rtol=1e-6)
    # no member has a score yet: uniform
    none = selection.selection_probs("eps_greedy", jnp.full(3, jnp.nan), 1.0, 0.3)
    np.testing.assert_allclose(none, [1 / 3] * 3, rtol=1e-6)
