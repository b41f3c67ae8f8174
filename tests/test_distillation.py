"""CIKD's phase: the closed-form KL, teacher election, and what a phase does to every member."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.agent import normalizer, replay
from mjx_cikd.agent.ensemble import make_ensemble
from mjx_cikd.cikd import distillation


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


def _setup(widths, steps=16, **controls):
    config = tiny(algo="cikd", widths=widths, ensemble_size=len(widths), distill_steps=steps,
                  distill_batch_size=64, **controls)
    obs_size, act_size = 4, 2
    ens = make_ensemble(config, obs_size, act_size)
    members = ens.init(jax.random.key(1))
    buf = replay.init(256, obs_size, act_size)
    k1, k2 = jax.random.split(jax.random.key(2))
    buf = replay.add(buf, replay.Batch(
        obs=jax.random.normal(k1, (256, obs_size)),
        action=jax.random.uniform(k2, (256, act_size), minval=-1, maxval=1),
        reward=jnp.zeros(256), next_obs=jnp.zeros((256, obs_size)), terminated=jnp.zeros(256),
        truncated=jnp.zeros(256)))
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
def _homogeneous_phase(**controls):
    ens, members, buf, norm, phase = _setup((32, 32, 32), steps=64, **controls)  # default D, lr
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


def test_soft_targets_take_one_tau_step_toward_the_new_critics():
    _, old, new, _ = _homogeneous_phase()  # distill_target soft: the default, the authors'
    tau = tiny().tau
    for c, t_old, t_new in zip(jax.tree.leaves(new[0].critic),
                               jax.tree.leaves(old[0].target_critic),
                               jax.tree.leaves(new[0].target_critic)):
        for k in (0, 2):
            np.testing.assert_allclose(t_new[k], tau * c[k] + (1 - tau) * t_old[k], rtol=1e-5,
                                       atol=1e-7)
            assert not np.allclose(t_new[k], c[k])
    np.testing.assert_array_equal(old[0].log_alpha, new[0].log_alpha)  # alpha is not distilled


def test_hard_targets_equal_the_students_new_critics():
    _, old, new, _ = _homogeneous_phase(distill_target="hard")
    for c, t in zip(jax.tree.leaves(new[0].critic), jax.tree.leaves(new[0].target_critic)):
        for k in (0, 2):
            np.testing.assert_array_equal(c[k], t[k])
    np.testing.assert_array_equal(old[0].log_alpha, new[0].log_alpha)


# (the students' targets still take the authors' one soft step: they call
# sync_target_network() after every distillation, pi-only included)
@pytest.mark.parametrize("parts, frozen, moved", [("policy", ("critic",), "actor"),
                                                  ("critic", ("actor", "actor_opt"), "critic")])
def test_distilling_one_part_leaves_the_other_bit_for_bit(parts, frozen, moved):
    _, old, new, stats = _homogeneous_phase(distill_parts=parts)
    for name in frozen:
        for a, b in zip(jax.tree.leaves(getattr(old[0], name)),
                        jax.tree.leaves(getattr(new[0], name))):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(getattr(old[0], moved)), jax.tree.leaves(getattr(new[0], moved))))
    gap = "kl" if parts == "policy" else "critic"
    assert np.all(np.asarray(getattr(stats, f"{gap}_after"))[[0, 2]]
                  < 0.5 * np.asarray(getattr(stats, f"{gap}_before"))[[0, 2]])


def test_hard_copy_makes_every_student_the_teacher():
    _, old, new, stats = _homogeneous_phase(hard_copy=True)
    for name in ("actor", "critic", "actor_opt", "critic_opt"):
        for leaf in jax.tree.leaves(getattr(new[0], name)):
            np.testing.assert_array_equal(leaf[0], leaf[1])
            np.testing.assert_array_equal(leaf[2], leaf[1])
    for a, b in zip(jax.tree.leaves(old[0].target_critic), jax.tree.leaves(new[0].target_critic)):
        np.testing.assert_array_equal(a, b)  # the authors copy no target
    np.testing.assert_allclose(stats.kl_after, 0.0, atol=1e-7)
    assert int(stats.steps) == 0


def _adam_steps(members, k):
    """The Adam step count member k's actor optimiser holds (after a handover: the phase's)."""
    return int(jax.tree.leaves(members[0].actor_opt[1].count)[0][k])


def test_epochs_run_ceil_e_filled_over_batch_steps():
    # 256 rows filled, B_d = 64: 2.5 epochs are ceil(2.5 * 256 / 64) = 10 steps. The handover
    # gives the student the distillation's Adam, whose count is the steps the loop really ran
    ens, members, buf, norm, phase = _setup((32, 32), distill_epochs=2.5,
                                            distill_optimizer="handover")
    new, stats = phase(members, buf, norm, jnp.int32(0), jax.random.key(5))
    assert int(stats.steps) == 10 and _adam_steps(new, 1) == 10
    assert _adam_steps(new, 0) == _adam_steps(members, 0) == 0  # the teacher's own, untouched
    half = replay.init(256, 4, 2)
    half = replay.add(half, jax.tree.map(lambda x: x[:96], buf.data))
    new, stats = phase(members, half, norm, jnp.int32(0), jax.random.key(5))
    assert int(stats.steps) == 4 and _adam_steps(new, 1) == 4  # ceil(2.5 * 96 / 64)
    assert stats.kl_after[1] < stats.kl_before[1]


@pytest.mark.parametrize("teacher, student", [(0, 1), (1, 0)])
def test_heterogeneous_256_1024_ensemble_distills_in_both_directions(teacher, student):
    ens, members, buf, norm, phase = _setup((256, 1024), steps=16)
    assert [g.width for g in ens.groups] == [256, 1024]
    new, stats = phase(members, buf, norm, jnp.int32(teacher), jax.random.key(4))
    assert stats.kl_after[student] < 0.5 * stats.kl_before[student]
    assert stats.critic_after[student] < stats.critic_before[student]
    for a, b in zip(_member(ens, members, teacher), _member(ens, new, teacher)):
        np.testing.assert_array_equal(a, b)
