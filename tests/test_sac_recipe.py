"""The SAC parts of the massively parallel recipe (issue 29), each a flag: the twin Qs' mean in
the target and the actor's objective (`--twin_q mean`), the actors moved at every d-th update
(`--policy_delay`), AdamW's decay (`--weight_decay`), per-layer widths (`--actor_layers`,
`--critic_layers`), and per-env exploration scales drawn at episode starts
(`--explore_std_min/max`), the last on a real task."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import stepwise, tiny

from mjx_cikd.agent import networks, returns
from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.agent.ensemble import make_ensemble
from mjx_cikd.loop import parallel
from mjx_cikd.loop.trainer import Updates, sac_steps

OBS, ACT = 4, 2


def _sample(key, b=32):
    k = jax.random.split(key, 4)
    return returns.Sample(obs=jax.random.normal(k[0], (b, OBS)),
                          action=jax.random.uniform(k[1], (b, ACT), minval=-1, maxval=1),
                          reward=jax.random.normal(k[2], (b,)),
                          next_obs=jax.random.normal(k[3], (b, OBS)), discount=jnp.full(b, 0.9))


def test_the_twin_qs_mean_enters_the_target_and_the_actors_objective():
    sac = sac_lib.make_sac(tiny(twin_q="mean"), OBS, ACT, 16)
    agent = sac.init(jax.random.key(0))
    # a target critic apart from the critic, so its twins differ from each other and from it
    agent = agent.replace(target_critic=sac.init(jax.random.key(1)).critic)
    batch, key = _sample(jax.random.key(2)), jax.random.key(3)
    loss, _ = sac.critic_loss(agent.critic, agent, batch, key)
    mean, log_std = sac.actor.apply(agent.actor, batch.next_obs)
    nxt, logp = networks.sample_action(mean, log_std, key)
    twins = sac.critic.apply(agent.target_critic, batch.next_obs, nxt)
    assert float(jnp.abs(twins[:, 0] - twins[:, 1]).mean()) > 1e-3
    alpha = jnp.exp(agent.log_alpha)
    y = batch.reward + batch.discount * (twins.mean(-1) - alpha * logp)
    q = sac.critic.apply(agent.critic, batch.obs, batch.action)
    np.testing.assert_allclose(loss, 0.5 * jnp.mean(jnp.sum((q - y[:, None]) ** 2, -1)),
                               rtol=1e-5)
    with_min = 0.5 * jnp.mean(jnp.sum(
        (q - (batch.reward + batch.discount * (twins.min(-1) - alpha * logp))[:, None]) ** 2, -1))
    assert abs(float(loss - with_min)) > 1e-4  # the flag changes the loss

    a_loss, logp = sac.actor_loss(agent.actor, agent, batch, key)
    mean, log_std = sac.actor.apply(agent.actor, batch.obs)
    action, _ = networks.sample_action(mean, log_std, key)
    by_hand = jnp.mean(alpha * logp - sac.critic.apply(agent.critic, batch.obs, action).mean(-1))
    np.testing.assert_allclose(a_loss, by_hand, rtol=1e-5)


def _steps_taken(opt_state) -> int:
    """The update count an Adam state holds (every integer leaf counts the same steps)."""
    counts = {int(np.asarray(x).reshape(-1)[0]) for x in jax.tree.leaves(opt_state)
              if jnp.issubdtype(x.dtype, jnp.integer)}
    (count,) = counts
    return count


def test_the_actors_move_at_every_dth_update_and_the_critics_at_every_one():
    from mjx_cikd.agent import normalizer, replay

    config = tiny(algo="ensemble", ensemble_size=2, updates_per_step=4, policy_delay=2,
                  batch_size=16)
    ensemble = make_ensemble(config, OBS, ACT)
    members = ensemble.init(jax.random.key(0))
    buf = replay.init(64, OBS, ACT)
    s = _sample(jax.random.key(1), 64)
    buf = replay.add(buf, replay.Batch(obs=s.obs, action=s.action, reward=s.reward,
                                       next_obs=s.next_obs, terminated=jnp.zeros(64),
                                       truncated=jnp.zeros(64)))
    updates = Updates.of(config, parallel.Parallel(config))
    after, metrics = jax.jit(lambda m: sac_steps(ensemble, updates, m, buf,
                                                 normalizer.init(OBS, enabled=False),
                                                 jax.random.key(2), 4))(members)
    (group,) = after
    assert _steps_taken(group.critic_opt) == 4
    assert _steps_taken(group.actor_opt) == 2 and _steps_taken(group.alpha_opt) == 2
    # the updates without the actor report no actor loss; the critic's is there at every one
    assert np.isnan(np.asarray(metrics["actor_loss"])).all(axis=1).tolist() == [
        False, True, False, True]
    assert np.isfinite(np.asarray(metrics["critic_loss"])).all()


def test_weight_decay_shrinks_parameters_that_no_gradient_moves():
    params = {"w": jnp.full(3, 2.0)}
    for decay, expected in [(0.0, 2.0), (0.1, 2.0 * (1 - 1e-2 * 0.1))]:
        tx = sac_lib.adam(tiny(weight_decay=decay), 1e-2)
        updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(params), params)
        np.testing.assert_allclose(params["w"] + updates["w"], expected, rtol=1e-6)


def _kernels(params) -> list[tuple[int, ...]]:
    return [leaf.shape for path, leaf in jax.tree_util.tree_leaves_with_path(params)
            if "kernel" in jax.tree_util.keystr(path)]


def test_per_layer_widths_shape_the_actor_and_each_twin_critic():
    sac = sac_lib.make_sac(tiny(actor_layers=(24, 12, 6), critic_layers=(20, 10)), OBS, ACT, 16)
    agent = sac.init(jax.random.key(0))
    assert _kernels(agent.actor) == [(OBS, 24), (24, 12), (12, 6), (6, 2 * ACT)]
    twin = [(OBS + ACT, 20), (20, 10), (10, 1)]
    assert _kernels(agent.critic) == twin + twin
    # without them, --hidden_layers layers of the member's width
    plain = sac_lib.make_sac(tiny(hidden_layers=3), OBS, ACT, 16).init(jax.random.key(0))
    assert _kernels(plain.actor) == [(OBS, 16), (16, 16), (16, 16), (16, 2 * ACT)]


def test_each_env_explores_with_its_own_scale_redrawn_only_when_its_episode_starts():
    """CartpoleSwingup with episodes of 6 steps (staggered: they end at different steps), with
    every part of the recipe on at once: they train together, every update finite."""
    config = tiny(env="CartpoleSwingup", episode_length=6, num_envs=8, algo="ensemble",
                  ensemble_size=2, explore_std_min=0.25, explore_std_max=2.0, log_every=8,
                  total_steps=80, learning_starts=16, n_step=3, critic_atoms=11,
                  twin_q="mean", policy_delay=2, weight_decay=1e-3, critic_layers=(24, 12))
    _, states, logs = stepwise(config, 8)
    for log in logs:  # one vector step each; the updates begin at the third
        for name in ("critic_loss", "actor_loss", "q"):
            assert np.isfinite(np.asarray(log.metrics[name])).all(), name
    assert sum(bool((np.asarray(log.metrics["critic_loss"]) > 0).all()) for log in logs) >= 5
    scales = [np.asarray(s.slots.std_scale) for s in states]
    assert len(set(scales[0].tolist())) == 8 and (scales[0] >= 0.25).all() and (
        scales[0] <= 2.0).all()
    redrawn = 0
    for before, after in zip(states, states[1:]):
        started = np.asarray(after.slots.env.t) == 0  # the env reset after this step's end
        changed = np.asarray(after.slots.std_scale) != np.asarray(before.slots.std_scale)
        np.testing.assert_array_equal(changed, started)
        redrawn += started.sum()
    assert redrawn >= 8  # every env's episode ended at least once
