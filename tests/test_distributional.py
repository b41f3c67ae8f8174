"""The C51 critic (`agent/distributional.py`, `--critic_atoms`; issue 29): the projection
against hand cases, the support derived from the task's reward bound, and a critic that learns a
known value from its cross-entropy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.agent import distributional, returns
from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.config import ConfigError

Z = jnp.arange(4.0)  # atoms 0, 1, 2, 3


def test_the_projection_splits_each_target_between_its_neighbours_and_clips_the_ends():
    probs = jnp.asarray([[0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])
    targets = jnp.asarray([[0.25, 2.0, 5.0, -1.0],  # between 0 and 1; on 2; past both ends
                           [0.5, 1.5, 2.5, 3.5]])  # every atom half a step up
    by_hand = [[0.4 * 0.75 + 0.1, 0.4 * 0.25, 0.3, 0.2],
               [0.125, 0.25, 0.25, 0.125 + 0.25]]
    np.testing.assert_allclose(distributional.project(probs, targets, Z), by_hand, atol=1e-7)


def test_the_support_is_given_or_derived_from_the_reward_bound_and_gamma():
    assert distributional.support(tiny(), 1.0) is None  # a scalar critic by default
    derived = distributional.support(tiny(critic_atoms=51, gamma=0.99), 1.0)
    assert (derived.atoms, derived.v_min, derived.v_max) == (51, pytest.approx(-100),
                                                             pytest.approx(100))
    given = distributional.support(tiny(critic_atoms=11, v_min=-5, v_max=20), None)
    assert (given.v_min, given.v_max) == (-5, 20)
    with pytest.raises(ConfigError, match="--v_min and --v_max"):
        distributional.support(tiny(critic_atoms=11), None)
    with pytest.raises(ConfigError, match="0 \\(off\\) or >= 2"):
        tiny(critic_atoms=1)


def test_a_c51_critic_learns_the_value_of_its_target():
    """A one-step return of 2 that terminates: Q(s, a) = 2 everywhere. The expected value of the
    critic's distribution must reach it from its cross-entropy alone."""
    config = tiny(critic_atoms=21, v_min=-5.0, v_max=5.0, critic_lr=1e-2)
    sac = sac_lib.make_sac(config, 3, 1, 32)
    agent = sac.init(jax.random.key(0))
    b = 64
    batch = returns.Sample(obs=jax.random.normal(jax.random.key(1), (b, 3)),
                           action=jax.random.uniform(jax.random.key(2), (b, 1), minval=-1,
                                                     maxval=1),
                           reward=jnp.full(b, 2.0), next_obs=jnp.zeros((b, 3)),
                           discount=jnp.zeros(b))
    step = jax.jit(sac.update)
    losses = []
    for i in range(300):
        agent, metrics = step(agent, batch, jax.random.key(i))
        losses.append(float(metrics["critic_loss"]))
    q = sac.critic.apply(agent.critic, batch.obs, batch.action)
    np.testing.assert_allclose(q, 2.0, atol=0.05)
    assert losses[-1] < 0.5 * losses[0]
