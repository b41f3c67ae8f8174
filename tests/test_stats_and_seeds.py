"""Seeds and evaluation: bootstrap bands, independent seeds under num_seeds, num_seeds=S equal to S
plain runs, deterministic tanh(mean) evaluation. The experiment sets and reproduce.py:
tests/test_experiments.py; curves, tables and plot.py: tests/test_curves_and_tables.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from conftest import tiny

from mjx_cikd.agent import networks
from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.experiments import stats
from mjx_cikd.host.compiled import seed_keys
from mjx_cikd.loop.trainer import make_train

CHUNKS = 2


# --------------------------------------------------------------------------------------
# the bootstrap band (synthetic data)


def test_bootstrap_band_contains_the_mean_and_narrows_with_more_seeds():
    rng = np.random.default_rng(0)
    sigma, widths = 2.0, {}
    for s in (3, 10, 40):
        x = rng.normal(5.0, sigma, size=(s, 200))  # 200 evaluation points, s seeds
        band = stats.bootstrap_ci(x)
        np.testing.assert_allclose(band.mean, x.mean(0))
        assert np.all(band.low <= band.mean) and np.all(band.mean <= band.high)
        assert np.all(band.low < band.high)
        widths[s] = float(np.mean(band.high - band.low))
    assert widths[40] < widths[10] < widths[3]
    # a 95% interval of the mean: about 2 * 1.96 sigma / sqrt(S) wide
    np.testing.assert_allclose(widths[40], 2 * 1.96 * sigma / np.sqrt(40), rtol=0.12)


def test_bootstrap_band_covers_the_true_mean_about_95_percent_of_the_time():
    x = np.random.default_rng(1).normal(0.0, 1.0, size=(30, 1000))
    band = stats.bootstrap_ci(x, n_resamples=1000)
    coverage = np.mean((band.low <= 0.0) & (0.0 <= band.high))
    assert 0.89 < coverage < 0.985, coverage


def test_bootstrap_is_scipys_bca_and_collapses_for_one_seed():
    x = np.random.default_rng(2).exponential(1.0, size=12)  # skewed: BCa and percentile differ
    band = stats.bootstrap_ci(x, n_resamples=5000, seed=3)
    ref = scipy.stats.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=5000,
                                method="BCa", rng=np.random.default_rng(3)).confidence_interval
    assert (band.low, band.high) == pytest.approx((ref.low, ref.high))
    pct = scipy.stats.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=5000,
                                method="percentile", rng=np.random.default_rng(3))
    assert abs(band.low - pct.confidence_interval.low) > 1e-3  # not the percentile interval

    one = stats.bootstrap_ci(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(one.low, one.mean)
    np.testing.assert_array_equal(one.high, one.mean)
    np.testing.assert_array_equal(one.mean, [1.0, 2.0, 3.0])


def test_bootstrap_leaves_out_missing_seeds_point_by_point():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 1.0, size=(6, 5))
    x[2, 1] = np.nan  # one seed without a value at point 1
    x[:, 2] = 7.0  # every seed agrees: the interval is the point (scipy alone gives NaN)
    x[1:, 3] = np.nan  # one value left
    x[:, 4] = np.nan  # none
    band = stats.bootstrap_ci(x)
    alone = stats.bootstrap_ci(np.delete(x[:, 1], 2))
    assert (band.mean[1], band.low[1], band.high[1]) == pytest.approx(tuple(map(float, alone)))
    assert band.low[1] < band.mean[1] < band.high[1]
    assert band.mean[2] == band.low[2] == band.high[2] == 7.0
    assert band.mean[3] == band.low[3] == band.high[3] == x[0, 3]
    assert np.isnan([band.mean[4], band.low[4], band.high[4]]).all()
    whole = stats.bootstrap_ci(x[:, :1])  # the complete point: as if alone
    assert (band.low[0], band.high[0]) == pytest.approx((whole.low[0], whole.high[0]))


def test_a_95_percent_bootstrap_interval_undercovers_at_few_seeds():
    """What stats' docstring and docs/results.md claim: at 3 and 5 seeds a nominal 95% interval
    of the mean covers the true mean far less often (normal data, 2000 curves' points)."""
    coverage = {}
    for s in (3, 5):
        x = np.random.default_rng(s).normal(0.0, 1.0, size=(s, 2000))
        band = stats.bootstrap_ci(x, n_resamples=1000)
        coverage[s] = np.mean((band.low <= 0.0) & (0.0 <= band.high))
    assert 0.65 < coverage[3] < 0.80 and 0.77 < coverage[5] < 0.89, coverage
    assert coverage[3] < coverage[5]


def test_first_reach():
    steps, curve = np.array([10, 20, 30, 40]), np.array([0.0, 1.0, 3.0, 2.0])
    assert stats.first_reach(steps, curve, 2.5) == 30
    assert stats.first_reach(steps, curve, 1.0) == 20
    assert stats.first_reach(steps, curve, 3.5) is None


# --------------------------------------------------------------------------------------
# seeds side by side (one compile per distinct config, shared by the tests below)


@functools.cache
def _seeded(num_seeds: int, seed: int):
    """`CHUNKS` chunks of the vmapped loop (as mjx_cikd.host.run runs it) on the tiny config; the
    host copies of the state before the first chunk and after every chunk, and the logs."""
    config = tiny(num_seeds=num_seeds, seed=seed)
    trainer = make_train(config)
    init = jax.jit(jax.vmap(trainer.init))
    chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, None), out_axes=(0, None, 0)))
    state, sched = init(seed_keys(config)), trainer.schedule()
    states, logs = [jax.device_get(state)], []
    for _ in range(CHUNKS):
        state, sched, log = chunk(state, sched)
        states.append(jax.device_get(state))
        logs.append(jax.device_get(log))
    return config, trainer, states, logs, jax.device_get(sched)


def _seed(tree, s):
    return jax.tree.map(lambda x: x[s], tree)


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


def _actors(state):
    return tuple(m.actor for m in state.members)


def test_seeds_get_different_initial_parameters_and_different_data():
    config, _, states, _, _ = _seeded(2, 0)
    first, after = states[0], states[1]
    a0, a1 = _flat(_seed(_actors(first), 0)), _flat(_seed(_actors(first), 1))
    assert a0.shape == a1.shape
    assert np.abs(a0 - a1).max() > 1e-2  # independent initialisations
    c0, c1 = (_flat(_seed(tuple(m.critic for m in first.members), s)) for s in (0, 1))
    assert np.abs(c0 - c1).max() > 1e-2
    # different data: envs start elsewhere, and the buffers hold different transitions
    assert not np.allclose(first.slots.env.obs[0], first.slots.env.obs[1])
    size = np.asarray(after.buffer.size)
    assert size[0] == size[1] == config.iters_per_chunk * config.num_envs
    n = int(size[0])
    for field in ("obs", "action", "reward", "next_obs"):
        rows = np.asarray(getattr(after.buffer.data, field))[:, :n]
        assert np.abs(rows[0] - rows[1]).max() > 1e-2, field
    # and the seeds keep training apart
    b0, b1 = _flat(_seed(_actors(after), 0)), _flat(_seed(_actors(after), 1))
    assert np.abs(b0 - b1).max() > 1e-2


def test_seed_s_of_a_multi_seed_run_equals_a_plain_run_with_seed_plus_s():
    _, _, states2, logs2, _ = _seeded(2, 0)  # seeds 0 and 1 side by side
    _, _, states1, logs1, _ = _seeded(1, 1)  # seed 1 alone
    for t in (0, CHUNKS):
        np.testing.assert_allclose(_flat(_seed(states2[t].members, 1)),
                                   _flat(_seed(states1[t].members, 0)), rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(_seed(states2[0].buffer.data.obs, 1),
                                  _seed(states1[0].buffer.data.obs, 0))
    np.testing.assert_allclose(_seed(states2[-1].buffer.data.obs, 1),
                               _seed(states1[-1].buffer.data.obs, 0),
                               rtol=1e-3, atol=1e-3)
    evals = 0
    for log2, log1 in zip(logs2, logs1):
        due = np.asarray(log1.eval_due)[0]
        np.testing.assert_array_equal(np.asarray(log2.eval_due)[1], due)
        np.testing.assert_allclose(np.asarray(log2.eval_return)[1][due],
                                   np.asarray(log1.eval_return)[0][due], rtol=1e-3, atol=1e-3)
        evals += int(due.sum())
    # eval_every 0: one evaluation at every point of the phase schedule (every 16 vector steps)
    assert evals == CHUNKS * tiny().iters_per_chunk // tiny().phase_period == 8
    # seed 0 of the pair is a different run
    assert np.abs(_flat(_seed(states2[-1].members, 0))
                  - _flat(_seed(states1[-1].members, 0))).max() > 1e-2


# --------------------------------------------------------------------------------------
# evaluation


def _member_means(trainer, members, obs):
    """Each member's actor mean on its own obs [K, n, obs], straight from its flax module."""
    out = [None] * trainer.ensemble.size
    for group, m in zip(trainer.ensemble.groups, members):
        for i, k in enumerate(group.members):
            params = jax.tree.map(lambda x: x[i], m.actor)
            out[k] = group.sac.actor.apply(params, obs[k])
    return jnp.stack([mean for mean, _ in out]), jnp.stack([log_std for _, log_std in out])


def test_evaluation_is_deterministic_and_plays_tanh_of_the_mean():
    config, trainer, states, logs, sched = _seeded(1, 1)
    assert config.env == "ProbeTarget"
    state = _seed(states[-1], 0)
    evaluate = jax.jit(trainer.evaluate)
    key = jax.random.key(7)
    first = np.asarray(evaluate(state.members, state.norm, key).mean)
    second = np.asarray(evaluate(state.members, state.norm, key).mean)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, evaluate(state.members, state.norm, jax.random.key(8)).mean)

    # ProbeTarget: one step from x ~ U(-1, 1), reward -(a - x)^2, then termination
    k, n = trainer.ensemble.size, config.eval_episodes
    x = trainer.task.reset(jax.random.split(key, k * n)).obs.reshape(k, n, -1)
    mean, log_std = _member_means(trainer, state.members, norm_lib.normalize(state.norm, x))
    expected = -jnp.sum((networks.deterministic_action(mean) - x) ** 2, -1).mean(-1)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(networks.deterministic_action(mean), jnp.tanh(mean))
    # a sampled action would score differently: the test tells the two apart
    sampled, _ = networks.sample_action(mean, log_std, jax.random.key(3))
    assert not np.allclose(-jnp.sum((sampled - x) ** 2, -1).mean(-1), expected, atol=1e-4)

    # the evaluation logged at the end of the last chunk is this same function, with the loop's
    # evaluation key for that iteration, on the members before that iteration's phase: the
    # teacher, whom its own phase leaves as it was, scores what the final teacher scores
    last = int(sched.iteration) - 1
    logged = np.asarray(logs[-1].eval_return)[0][-1]
    assert bool(np.asarray(logs[-1].eval_due)[0][-1])
    assert bool(np.asarray(logs[-1].phase.ran)[0][-1])
    teacher = int(np.asarray(logs[-1].phase.teacher)[0][-1])
    again = evaluate(state.members, state.norm, jax.random.fold_in(state.eval_key, last))
    np.testing.assert_allclose(logged[teacher], again.mean[teacher], rtol=1e-5, atol=1e-6)
