"""n-step returns (`agent/returns.py`, issue 29): the sum stops at the first step that ends an
episode, a termination bootstraps nothing and a truncation bootstraps from its final
observation; the sampler reads only runs whose n transitions of one env have been written; n = 1
is SAC's one-step sample."""

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd.agent import normalizer, replay, returns

GAMMA, N_ENVS = 0.5, 2
REWARD = [[1, 2, 3, 4, 5], [10, 20, 30, 40, 50]]  # [env][t]
TRUNCATED = [[0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]  # env 0's time limit ends its episode at t = 1
TERMINATED = [[0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]  # env 1 terminates at t = 2


def _written(steps=5, capacity=10):
    """Vector steps t = 0..steps-1 of 2 envs: obs 100 i + t, next obs 100 i + t + 0.5."""
    buf = replay.init(capacity, 1, 1)
    for t in range(steps):
        at = lambda table: jnp.asarray([table[i][t % 5] for i in range(N_ENVS)], jnp.float32)  # noqa: E731
        obs = jnp.asarray([100.0 * i + t for i in range(N_ENVS)])[:, None]
        buf = replay.add(buf, replay.Batch(obs=obs, action=obs, reward=at(REWARD),
                                           next_obs=obs + 0.5, terminated=at(TERMINATED),
                                           truncated=at(TRUNCATED)))
    return buf


# by hand, n = 3, gamma = 1/2: (first obs) -> (return, bootstrap obs, discount)
BY_HAND = {
    0.0: (1 + 0.5 * 2, 1.5, 0.25),  # truncated at t = 1: two steps, bootstrapped
    1.0: (2, 1.5, 0.5),  # truncated at once: one step
    2.0: (3 + 0.5 * 4 + 0.25 * 5, 4.5, 0.125),  # three steps, nothing ends
    100.0: (10 + 0.5 * 20 + 0.25 * 30, 102.5, 0.0),  # terminated at the third: no bootstrap
    101.0: (20 + 0.5 * 30, 102.5, 0.0),
    102.0: (30, 102.5, 0.0),
}


def test_n_step_targets_against_a_hand_computation():
    buf = _written()
    first = jnp.asarray([0, 2, 4, 1, 3, 5])  # rows of (env 0, t = 0, 1, 2), (env 1, t = 0, 1, 2)
    runs = replay.gather(buf, first[None] + N_ENVS * jnp.arange(3)[:, None])
    out = returns.n_step(runs, GAMMA)
    for row, obs in enumerate(np.asarray(out.obs[:, 0])):
        want = BY_HAND[float(obs)]
        got = (out.reward[row], out.next_obs[row, 0], out.discount[row])
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-6)


def test_the_sampler_draws_only_runs_already_written_and_returns_their_targets():
    norm = normalizer.init(1, enabled=False)
    sample = returns.make_sampler(3, GAMMA, N_ENVS)
    out = sample(_written(), norm, jax.random.key(0), (400,))
    # a full ring of 5 vector steps: runs of 3 start at t = 0, 1 and 2 only, all six drawn
    assert set(np.asarray(out.obs[:, 0]).tolist()) == set(BY_HAND)
    for obs, reward, boot, discount in zip(np.asarray(out.obs[:, 0]), np.asarray(out.reward),
                                           np.asarray(out.next_obs[:, 0]),
                                           np.asarray(out.discount)):
        np.testing.assert_allclose([reward, boot, discount], BY_HAND[float(obs)], rtol=1e-6)


def test_runs_that_wrap_around_the_ring_start_at_the_oldest_row():
    buf = _written(steps=6)  # t = 5 overwrote t = 0: the oldest step is t = 1 (rows 2, 3)
    rows = replay.sample_runs(buf, jax.random.key(1), (400,), 3, N_ENVS)
    starts = sorted(set(np.asarray(replay.gather(buf, rows).obs[:, 0]).tolist()))
    assert starts == [1.0, 2.0, 3.0, 101.0, 102.0, 103.0]  # t = 3's run reads t = 5 at row 0
    half = _written(steps=3, capacity=10)  # not full: rows from 0, runs of 3 start at t = 0
    rows = replay.sample_runs(half, jax.random.key(2), (100,), 3, N_ENVS)
    assert set(np.asarray(rows).tolist()) == {0, 1}


def test_one_step_is_sacs_sample_of_the_stored_rows():
    buf, norm, key = _written(), normalizer.init(1, enabled=False), jax.random.key(3)
    out = returns.make_sampler(1, 0.99, N_ENVS)(buf, norm, key, (64,))
    rows = replay.sample(buf, norm, key, (64,))
    np.testing.assert_array_equal(out.reward, rows.reward)
    np.testing.assert_array_equal(out.next_obs, rows.next_obs)
    np.testing.assert_array_equal(out.discount, 0.99 * (1.0 - rows.terminated))
