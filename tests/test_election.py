"""The election's statistics (the ring of last M returns with its staleness, the reward rate)
and its rules (best, worst, random teacher; the authors' adaptive schedule)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_cikd.cikd import election


def _record(ring, member, ret, finished, start=None):
    start = jnp.zeros(len(member), jnp.int32) if start is None else jnp.asarray(start)
    return election.record(ring, jnp.asarray(member), jnp.asarray(ret), jnp.asarray(finished),
                           start)


def test_ring_keeps_the_last_m_when_many_episodes_end_in_one_step():
    ring = election.init_ring(2, 3)
    # step 1: member 0 finishes episodes with returns 1, 2 (env order)
    ring = _record(ring, [0, 0, 1], [1.0, 2.0, 9.0], [True, True, False])
    np.testing.assert_allclose(election.recent_mean(ring), [1.5, np.nan])
    # step 2: member 0 finishes five at once (10..14): only the last three (12, 13, 14) stay
    ring = _record(ring, [0, 1, 0, 0, 0, 0, 1], [10.0, 100.0, 11.0, 12.0, 13.0, 14.0, 5.0],
                   [True, False, True, True, True, True, True])
    np.testing.assert_array_equal(ring.count, [7, 1])
    assert sorted(np.asarray(ring.returns[0]).tolist()) == [12.0, 13.0, 14.0]
    np.testing.assert_allclose(election.recent_mean(ring), [13.0, 5.0])


def test_ring_is_a_ring_across_steps():
    ring = election.init_ring(1, 2)
    for r in [1.0, 2.0, 3.0, 4.0]:
        ring = _record(ring, [0], [r], [True])
    np.testing.assert_allclose(election.recent_mean(ring), [3.5])


def test_staleness_is_the_mean_age_in_phase_points_of_the_episodes_behind_r():
    ring = election.init_ring(2, 2)
    ring = _record(ring, [0, 0, 1], [1.0, 2.0, 3.0], [True, True, False], start=[1, 3, 0])
    np.testing.assert_allclose(election.staleness(ring, jnp.asarray(5)), [3.0, np.nan])
    ring = _record(ring, [0], [5.0], [True], start=[4])  # pushes out the one begun at 1
    np.testing.assert_allclose(election.staleness(ring, jnp.asarray(5)), [1.5, np.nan])


def test_reward_rate_is_each_members_mean_reward_per_step_times_t():
    rate = election.init_rate(3)
    rate = election.accumulate(rate, jnp.array([0, 1, 0]), jnp.array([1.0, 2.0, 3.0]), True)
    rate = election.accumulate(rate, jnp.array([0, 1, 1]), jnp.array([5.0, 0.0, 1.0]), True)
    rate = election.accumulate(rate, jnp.array([2, 2, 2]), jnp.array([9.0, 9.0, 9.0]), False)
    # member 0: (1 + 3 + 5) / 3 steps; member 1: (2 + 0 + 1) / 3; member 2 never acted
    np.testing.assert_allclose(election.reward_rate(rate, 10), [30.0, 10.0, np.nan])


@pytest.mark.parametrize("returns, teacher, eligible", [
    ([1.0, 5.0, 3.0], 1, True),
    ([4.0, 2.0, 4.0], 0, True),  # tie: lowest index
    ([np.nan, -10.0, np.nan], 1, True),  # a member with no episode cannot win
    ([np.nan, np.nan], 0, False),  # nobody eligible: no phase
])
def test_best_teacher_is_the_argmax_of_the_statistic(returns, teacher, eligible):
    k, ok = election.elect_teacher(jnp.array(returns))
    assert bool(ok) is eligible
    if eligible:
        assert int(k) == teacher


def test_worst_teacher_is_the_argmin_among_the_eligible():
    k, ok = election.elect_teacher(jnp.array([np.nan, 5.0, 2.0, 9.0]), "worst")
    assert bool(ok) and int(k) == 2


def test_random_teacher_is_uniform_over_the_eligible():
    scores = jnp.array([1.0, np.nan, 7.0, 3.0])
    keys = jax.random.split(jax.random.key(0), 3000)
    picks = np.asarray(jax.vmap(lambda key: election.elect_teacher(scores, "random", key)[0])(
        keys))
    counts = np.bincount(picks, minlength=4)
    assert counts[1] == 0
    assert np.all(np.abs(counts[[0, 2, 3]] / 3000 - 1 / 3) < 0.04)


def test_ada_schedule_distils_only_when_one_member_dominates():
    # softmax([0, 0.5, 3]) = [0.04, 0.07, 0.89]: dominated at threshold 0.8, not at 0.9
    scores = jnp.array([0.0, 0.5, 3.0])
    assert bool(election.ada_wants_phase(scores, 1.0, 0.8))
    assert not bool(election.ada_wants_phase(scores, 1.0, 0.9))
    assert not bool(election.ada_wants_phase(scores, 10.0, 0.8))  # a higher temperature flattens
    assert not bool(election.ada_wants_phase(jnp.full(3, jnp.nan), 1.0, 0.1))


def test_audit_score_is_hit_and_regret_against_the_audited_best():
    hit, regret = election.audit_score([3.0, 7.0, 5.0], 2)
    assert not hit and regret == 2.0
    hit, regret = election.audit_score([[4.0, 4.0, 1.0], [np.nan, 2.0, 1.0]], [1, 1])
    np.testing.assert_array_equal(hit, [False, True])  # a tie goes to the lowest index
    np.testing.assert_array_equal(regret, [0.0, 0.0])  # ... and costs nothing
