"""MuJoCo Warp's contact buffer, sized for the worlds a run resets (envs/contacts.py)."""

import jax
import mujoco
import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.envs import contacts
from mjx_cikd.envs import tasks as envs

# four free bodies above a plane, and a capsule hinged to the sphere (its parent: filtered out)
BODIES = """
<mujoco>
  <worldbody>
    <geom type="plane" size="5 5 .1"/>
    <body pos="0 0 1"><freejoint/><geom type="sphere" size=".1"/>
      <body pos="0 0 .3"><joint type="hinge"/><geom type="capsule" size=".05 .1"/></body>
    </body>
    <body pos="1 0 1"><freejoint/><geom type="box" size=".1 .1 .1"/></body>
    <body pos="2 0 1"><freejoint/><geom type="capsule" size=".05 .1"/></body>
  </worldbody>
</mujoco>
"""


def test_each_world_gets_room_for_every_pair_that_may_collide_at_its_own_bound():
    model = mujoco.MjModel.from_xml_string(BODIES)
    # by hand: the plane with sphere 1, hinged capsule 2, box 8, free capsule 2; the sphere with
    # box 8 and free capsule 2 (not its own child); the hinged capsule with box 8 and free
    # capsule 2; the box with the free capsule 8
    assert contacts.per_world(model) == 1 + 2 + 8 + 2 + 8 + 2 + 8 + 2 + 8
    assert contacts.capacity(model, 10, 100_000) == 410
    assert contacts.capacity(model, 10, 300) == 300  # never above the source's own figure
    assert contacts.capacity(model, 10, 0) == 0  # a task that makes no contacts


def test_the_worlds_of_a_run_are_its_training_evaluation_and_audit_envs_over_its_seeds():
    config = tiny(num_envs=8, ensemble_size=3, eval_episodes=2, num_seeds=2)
    assert contacts.worlds(config) == 2 * (8 + 3 * 2)
    audited = tiny(num_envs=8, ensemble_size=3, eval_episodes=2, audit_election=True,
                   audit_episodes=5)
    assert contacts.worlds(audited) == 8 + 3 * 2 + 3 * 5


def test_cheetah_under_warp_steps_as_with_playgrounds_buffer_and_refuses_more_worlds():
    """CheetahRun: a buffer for its worlds (54 contacts each: 27 pairs of capsules and the
    plane) plays the same steps, reward for reward, as Playground's 100,000; a reset of more
    worlds than it was sized for is refused."""
    if not envs.warp_available():
        pytest.skip("MuJoCo Warp is not installed")
    config = tiny(env="CheetahRun", impl="warp", num_envs=4, episode_length=40)
    sized = envs.make_task(config)
    assert sized.worlds == contacts.worlds(config)
    assert contacts.per_world(sized.mj_model) == 54

    def rewards(task):
        def play(state, key):
            action = jax.random.uniform(key, (4, task.action_size), minval=-1, maxval=1)
            state, out = task.step(state, action, key)
            return state, out.reward
        start = task.reset(jax.random.split(jax.random.key(0), 4))
        return np.asarray(jax.jit(lambda s: jax.lax.scan(
            play, s, jax.random.split(jax.random.key(1), 40))[1])(start))

    shipped = envs.make_task(config, worlds=10**6)  # capacity = Playground's 100,000
    np.testing.assert_array_equal(rewards(sized), rewards(shipped))
    with pytest.raises(Exception, match="contact buffer holds"):
        sized.reset(jax.random.split(jax.random.key(0), sized.worlds + 1))
