"""The compiled loop: SAC values on probe tasks, truncation vs termination, one compile across
chunks with phases, no host transfer inside a chunk, and the "(extra)" update budget."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny
from mjx_cikd import normalizer
from mjx_cikd.trainer import make_train


def _run(config, chunks):
    trainer = make_train(config)
    traces = []

    def chunk(state, sched):
        traces.append(1)
        return trainer.chunk(state, sched)

    run_chunk = jax.jit(chunk, donate_argnums=0)
    state, sched = jax.jit(trainer.init)(jax.random.key(0)), trainer.schedule()
    logs = []
    for _ in range(chunks):
        with jax.transfer_guard("disallow"):
            state, sched, log = run_chunk(state, sched)
        logs.append(jax.device_get(log))
    return trainer, state, logs, len(traces)


def _q(trainer, state, obs, action):
    critics = tuple(m.critic for m in state.members)
    return trainer.ensemble.q_values(critics, normalizer.normalize(state.norm, obs), action)


@functools.cache
def _probe(env):
    # gamma 0.5: Q = 1 / (1 - 0.5) = 2 under truncation, 1 under termination
    config = tiny(env=env, algo="ensemble", ensemble_size=2, gamma=0.5, num_envs=8,
                  log_every=512, updates_per_step=4, learning_starts=64, critic_lr=1e-3,
                  init_alpha=1e-4, alpha_lr=1e-9, tau=0.1)  # ~no entropy bonus: hard Q known
    return _run(config, chunks=3)


def test_truncation_bootstraps_the_critic_to_its_discounted_sum():
    trainer, state, _, _ = _probe("ProbeConstant")
    assert float(state.buffer.terminated[: int(state.buffer.size)].max()) == 0.0
    assert int(state.ring.count.sum()) > 0  # episodes did end, by the time limit
    q = _q(trainer, state, jnp.ones((16, 1)), jnp.linspace(-1, 1, 16)[:, None])
    np.testing.assert_allclose(q, 2.0, atol=0.08)  # truncation-as-termination gives 1.82


def test_termination_stops_the_bootstrap():
    trainer, state, _, _ = _probe("ProbeTerminal")
    assert float(state.buffer.terminated[: int(state.buffer.size)].min()) == 1.0
    q = _q(trainer, state, jnp.ones((16, 1)), jnp.linspace(-1, 1, 16)[:, None])
    np.testing.assert_allclose(q, 1.0, atol=0.1)


def test_sac_learns_the_optimal_action_and_its_value_on_probe_target():
    config = tiny(env="ProbeTarget", algo="sac", num_envs=16, log_every=1024, updates_per_step=4,
                  learning_starts=64, init_alpha=0.05)
    trainer, state, logs, _ = _run(config, chunks=3)
    evals = np.concatenate([log.eval_return[log.eval_due] for log in logs])
    assert evals[-1].max() > -0.05  # optimal return is 0, a random policy gets about -0.67
    x = jnp.linspace(-0.8, 0.8, 9)[:, None]
    q = _q(trainer, state, x, x)  # Q*(x, a=x) = 0, Q*(x, -x) = -4x^2
    np.testing.assert_allclose(q[0].min(-1), 0.0, atol=0.15)
    q_bad = _q(trainer, state, x, -x)[0].min(-1)
    assert np.corrcoef(q_bad, -4 * x[:, 0] ** 2)[0, 1] > 0.9


@functools.cache
def _cikd_run():
    config = tiny(env="ProbeTarget", algo="cikd", ensemble_size=3, distill_interval=128,
                  distill_warmup=128, distill_steps=8, log_every=256)
    return _run(config, chunks=3)


def test_chunk_compiles_once_across_chunks_with_phases_and_no_host_transfer():
    _, _, logs, traces = _cikd_run()  # _run holds each chunk under transfer_guard("disallow")
    assert traces == 1
    assert sum(int(log.phase_ran.sum()) for log in logs) >= 4


def test_phases_log_their_teacher_and_lower_the_kl():
    _, _, logs, _ = _cikd_run()
    log = logs[-1]
    ran = log.phase_ran
    assert ran.any()
    teachers = log.teacher[ran]
    returns = log.phase_returns[ran]
    np.testing.assert_array_equal(teachers, np.nanargmax(returns, axis=1))
    kl_before, kl_after = log.phase_stats.kl_before[ran], log.phase_stats.kl_after[ran]
    assert np.all(kl_after.sum(1) < kl_before.sum(1))


def _adam_count(opt_state):
    return np.asarray([x for x in jax.tree.leaves(opt_state) if x.dtype == jnp.int32][0])


@pytest.mark.parametrize("algo, k", [("sac", 1), ("ensemble", 2)])
def test_extra_updates_spend_the_phases_gradient_steps_on_sac(algo, k):
    common = dict(env="ProbeTarget", algo=algo, ensemble_size=k, log_every=256,
                  distill_interval=128, distill_warmup=128, distill_steps=8,
                  distill_batch_size=32, updates_per_step=2, learning_starts=64)
    _, plain, plain_logs, _ = _run(tiny(**common), chunks=2)
    _, extra, extra_logs, _ = _run(tiny(**common, extra_updates=True), chunks=2)
    phases = sum(int(log.phase_due.sum()) for log in extra_logs)
    assert phases == (2 * 256 - 128) // 128 + 1  # at 128, 256, 384, 512 env steps
    assert sum(int(log.phase_due.sum()) for log in plain_logs) == 0
    gained = _adam_count(extra.members[0].actor_opt) - _adam_count(plain.members[0].actor_opt)
    np.testing.assert_array_equal(gained, [8 * phases] * k)
