"""The actor's log-std bounds: the smooth squash (default) and the authors' hard clip."""

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd.agent import networks


def _log_std(bounds, scale):
    actor = networks.Actor((16,), 2, bounds)
    params = actor.init(jax.random.key(0), jnp.zeros((1, 3)))
    params = jax.tree.map(lambda x: x * scale, params)  # huge weights: pre-activations far out
    obs = jax.random.normal(jax.random.key(1), (256, 3))
    return np.asarray(actor.apply(params, obs)[1])


def test_clip_bounds_are_the_authors_hard_minus_20_to_2():
    log_std = _log_std("clip", 30.0)
    assert log_std.min() == -20.0 and log_std.max() == 2.0  # reached and held exactly
    assert ((log_std > -20.0) & (log_std < 2.0)).any()


def test_smooth_bounds_stay_strictly_inside_minus_5_to_2():
    log_std = _log_std("smooth", 30.0)
    assert log_std.min() >= networks.LOG_STD_MIN and log_std.max() <= networks.LOG_STD_MAX
    small = _log_std("smooth", 1e-3)  # near zero pre-activation: the middle of the range
    np.testing.assert_allclose(small, (networks.LOG_STD_MIN + networks.LOG_STD_MAX) / 2, atol=0.05)
