"""The timed parts of the loop, each a `Timed` ready for `timing.time_interleaved`.

Every part is vmapped over the config's seeds, as the loop is, and sized by its caller to one
chunk of the loop. Each builds its own carry (envs, members, keys), so a part that donates its
carry invalidates nothing that another part holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjx_cikd.agent import batching, replay
from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.bench.timing import Timed
from mjx_cikd.cikd import selection
from mjx_cikd.cikd.distillation import make_phase
from mjx_cikd.host.compiled import build, seed_keys
from mjx_cikd.loop.parallel import Parallel
from mjx_cikd.loop.trainer import Updates, act, make_train, sac_steps


def _salted_keys(config, salt: int) -> jax.Array:
    return jax.random.split(jax.random.key(config.seed + salt), config.num_seeds)


def simulation(config, task, iters: int) -> Timed:
    """`iters` vector steps of `task.step` with a zero action, in one jitted scan."""
    n = config.num_envs

    def run(env, key):
        action = jnp.zeros((n, task.action_size))

        def body(carry, _):
            env, key = carry
            key, sub = jax.random.split(key)
            env, out = task.step(env, action, sub)
            return (env, key), out.reward.sum()

        (env, key), _ = jax.lax.scan(body, (env, key), None, length=iters)
        return env, key

    keys = _salted_keys(config, 1)
    env = jax.jit(jax.vmap(lambda k: task.reset(jax.random.split(k, n))))(keys)
    # env states keep jax.vmap: MuJoCo Warp batches some leaves by a rule of its own
    return Timed(jax.jit(jax.vmap(run), donate_argnums=(0,)), (env, keys))


def prefilled_buffer(config, task, key):
    """A full replay buffer of random transitions and a normaliser that has seen some of them
    (what the trainer samples from in steady state; the values do not change the cost)."""
    c, o, a = config.buffer_rows, task.obs_size, task.action_size
    k = jax.random.split(key, 4)
    buf = replay.init(c, o, a)
    buf = buf.replace(data=buf.data._replace(
        obs=jax.random.normal(k[0], (c, o)), next_obs=jax.random.normal(k[1], (c, o)),
        action=jax.random.uniform(k[2], (c, a), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(k[3], (c,))), ptr=jnp.zeros((), jnp.int32),
        size=jnp.asarray(c, jnp.int32))
    norm = norm_lib.update(norm_lib.init(o, config.normalize_obs), buf.data.obs[:4096])
    return buf, norm


def prefilled(config, task, salt: int = 2):
    """`prefilled_buffer` for each seed (one per N: updates and phases read it, never write)."""
    return jax.jit(jax.vmap(lambda key: prefilled_buffer(config, task, key)))(
        _salted_keys(config, salt))


def _on_members(config, ensemble, run, filled, salt: int) -> Timed:
    """`run(members, buf, norm, key) -> (members, key)`, vmapped over seeds, on freshly
    initialised members; the buffer is an argument (never a baked-in constant) and never an
    output (no copy in the timing)."""
    buf, norm = filled
    keys = _salted_keys(config, salt)
    members = jax.jit(jax.vmap(ensemble.init))(keys)
    fn = jax.jit(batching.vmap(run, config.num_seeds), donate_argnums=(0,))
    return Timed(lambda m, key: fn(m, buf, norm, key), (members, keys))


def updates(config, ensemble, count: int, filled) -> Timed:
    """`count` SAC updates of all K members, each on its own batch of B (`trainer.sac_steps`)."""

    updates = Updates.of(config, Parallel(config))

    def run(members, buf, norm, key):
        key, sub = jax.random.split(key)
        members, _ = sac_steps(ensemble, updates, members, buf, norm, sub, count)
        return members, key

    return _on_members(config, ensemble, run, filled, salt=3)


def phase(config, ensemble, filled) -> Timed:
    """One distillation phase (distill_steps steps at distill_batch_size), teacher 0."""
    distill = make_phase(config, ensemble)

    def run(members, buf, norm, key):
        key, sub = jax.random.split(key)
        members, _ = distill(members, buf, norm, jnp.asarray(0, jnp.int32), sub)
        return members, key

    return _on_members(config, ensemble, run, filled, salt=5)


def acting(config, task, ensemble, iters: int) -> Timed:
    """`iters` times the loop's acting (`trainer.act`: K actors on all N observations, one
    sample each, the index mask), which neither the simulation nor the updates hold. Each
    step's observations depend on the previous actions, so XLA cannot hoist the forward pass
    out of the scan."""
    n, k = config.num_envs, ensemble.size

    def run(members, key, total):
        key, k_obs, k_player, k_scan = jax.random.split(key, 4)
        obs = jax.random.normal(k_obs, (n, task.obs_size))
        player = selection.draw_members(k_player, n, k)
        norm = norm_lib.update(norm_lib.init(task.obs_size, config.normalize_obs), obs)

        def body(obs, key):
            action = act(ensemble, members, norm, obs, player, key)
            return obs + 1e-3 * action.sum(-1, keepdims=True), None

        obs, _ = jax.lax.scan(body, obs, jax.random.split(k_scan, iters))
        return members, key, total + obs.sum()  # an output that needs every step

    keys = _salted_keys(config, 7)
    members = jax.jit(jax.vmap(ensemble.init))(keys)
    return Timed(jax.jit(batching.vmap(run, config.num_seeds)),
                 (members, keys, jnp.zeros(config.num_seeds)))


def loop(config, task) -> Timed:
    """One compiled chunk of the real training loop (`compiled.build`), chained from chunk to chunk,
    from a state whose buffer reads as full (steady state: batches gather from the whole ring)."""
    compiled = build(config, make_train(config, task))
    state = compiled.start(seed_keys(config))
    buf = state.buffer
    state = state.replace(buffer=buf.replace(size=jnp.full_like(buf.size, config.buffer_rows)))
    info = {"compile_s": compiled.compile_s,
            "replay_bytes": config.num_seeds * replay.nbytes(config.buffer_rows, task.obs_size,
                                                             task.action_size),
            "replay_array_bytes": replay.arrays_nbytes(buf)}

    def chunk(state, sched):  # the log stays out of the carry: it is not fed back
        return compiled.chunk(state, sched)[:2]

    return Timed(chunk, (state, compiled.trainer.schedule()), info)
