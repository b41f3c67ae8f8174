"""CIKD's phase: the closed-form KL, teacher election, and what a phase does to every member."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny
from mjx_cikd import distillation, election, normalizer, replay
from mjx_cikd.ensemble import make_ensemble


def _squashed_log_prob(action, mean, log_std):
    """log density of a = tanh(u), u ~ N(mean, std^2), written independently of networks.py."""
    u = jnp.arctanh(action)
    std = jnp.exp(log_std)
    log_n = -0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    return jnp.sum(log_n - jnp.log1p(-action**2), -1)


def test_closed_form_kl_matches_monte_carlo_of_tanh_gaussians():
    key = jax.random.key(0)
    mp, lp = jnp.array([0.3, -0.2, 0.1]), jnp.array([-1.0, -0.7, -1.2])
    mq, lq = jnp.array([0.1, 0.2, -0.1]), jnp.array([-0.8, -1.1, -0.9])
    u = mp + jnp.exp(lp) * jax.random.normal(key, (400_000, 3))
    a = jnp.clip(jnp.tanh(u), -1 + 1e-6, 1 - 1e-6)
    log_ratio = _squashed_log_prob(a, mp, lp) - _squashed_log_prob(a, mq, lq)
    mc, err = float(log_ratio.mean()), float(log_ratio.std() / np.sqrt(a.shape[0]))
    exact = float(distillation.gaussian_kl(mp, lp, mq, lq))
    assert exact > 0.1
    assert abs(mc - exact) < 4 * err + 1e-3


def test_kl_is_zero_for_identical_policies_and_positive_otherwise():
    m, s = jnp.array([0.5, -1.0]), jnp.array([-0.3, 0.2])
    assert float(distillation.gaussian_kl(m, s, m, s)) == 0.0
    assert float(distillation.gaussian_kl(m, s, m + 0.1, s)) > 0.0


@pytest.mark.parametrize("returns, teacher, eligible", [
    ([1.0, 5.0, 3.0], 1, True),
    ([4.0, 2.0, 4.0], 0, True),  # tie: lowest index
    ([np.nan, -10.0, np.nan], 1, True),  # a member with no episode cannot win
    ([np.nan, np.nan], 0, False),  # nobody eligible: no phase
])
def test_teacher_is_the_argmax_of_recent_returns(returns, teacher, eligible):
    k, ok = election.elect_teacher(jnp.array(returns))
    assert bool(ok) is eligible
    if eligible:
        assert int(k) == teacher


def _setup(widths, steps=16):
    config = tiny(algo="cikd", widths=widths, ensemble_size=len(widths), distill_steps=steps,
                  distill_batch_size=64)
    obs_size, act_size = 4, 2
    ens = make_ensemble(config, obs_size, act_size)
    members = ens.init(jax.random.key(1))
    buf = replay.init(256, obs_size, act_size)
    k1, k2 = jax.random.split(jax.random.key(2))
    buf = replay.add(buf, jax.random.normal(k1, (256, obs_size)),
                     jax.random.uniform(k2, (256, act_size), minval=-1, maxval=1),
                     jnp.zeros(256), jnp.zeros((256, obs_size)), jnp.zeros(256))
    norm = normalizer.init(obs_size, enabled=False)
    return ens, members, buf, norm, jax.jit(distillation.make_phase(config, ens))


def _member(ens, members, k):
    """Member k's (actor, critic, target) as a flat list of arrays."""
    for g, m in zip(ens.groups, members):
        if k in g.members:
            i = g.members.index(k)
            return jax.tree.leaves(jax.tree.map(lambda x: x[i], (m.actor, m.critic,
                                                                 m.target_critic, m.log_alpha)))


@functools.cache
def _homogeneous_phase():
    ens, members, buf, norm, phase = _setup((32, 32, 32), steps=64)  # the default D and lr
    new, stats = phase(members, buf, norm, jnp.int32(1), jax.random.key(3))
    return ens, members, new, stats


def test_phase_lowers_every_students_kl_and_critic_gap():
    _, _, _, stats = _homogeneous_phase()
    for k in (0, 2):
        assert stats.kl_after[k] < 0.5 * stats.kl_before[k]
        assert stats.critic_after[k] < 0.5 * stats.critic_before[k]
    assert stats.kl_before[1] == 0 and stats.kl_after[1] == 0


def test_phase_leaves_the_teacher_bit_for_bit_unchanged():
    ens, old, new, _ = _homogeneous_phase()
    for a, b in zip(_member(ens, old, 1), _member(ens, new, 1)):
        np.testing.assert_array_equal(a, b)
    changed = [not np.array_equal(a, b) for a, b in zip(_member(ens, old, 0), _member(ens, new, 0))]
    assert any(changed)


def test_students_targets_equal_their_new_critics_and_alpha_is_not_distilled():
    _, old, new, _ = _homogeneous_phase()
    m_old, m_new = old[0], new[0]
    for k in (0, 2):
        for c, t in zip(jax.tree.leaves(m_new.critic), jax.tree.leaves(m_new.target_critic)):
            np.testing.assert_array_equal(c[k], t[k])
    np.testing.assert_array_equal(m_old.log_alpha, m_new.log_alpha)


@pytest.mark.parametrize("teacher, student", [(0, 1), (1, 0)])
def test_heterogeneous_256_1024_ensemble_distills_in_both_directions(teacher, student):
    ens, members, buf, norm, phase = _setup((256, 1024), steps=16)
    assert [g.width for g in ens.groups] == [256, 1024]
    new, stats = phase(members, buf, norm, jnp.int32(teacher), jax.random.key(4))
    assert stats.kl_after[student] < 0.5 * stats.kl_before[student]
    assert stats.critic_after[student] < stats.critic_before[student]
    for a, b in zip(_member(ens, members, teacher), _member(ens, new, teacher)):
        np.testing.assert_array_equal(a, b)
