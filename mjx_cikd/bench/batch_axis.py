"""What a batch axis of one costs: the gradient of one critic (the defaults' 2 x 256 twin Q with
LayerNorm, batch 512) under nested vmaps of the given sizes, against the same network unbatched;
and the whole loop of a single seed under `jax.vmap` against the same loop unbatched.

    python scripts/benchmark.py --batch_axis true [--out FILE.json]
    python scripts/benchmark.py --batch_axis loop [--FIELD VALUE ...] [--out FILE.json]

Each critic shape is compiled once and timed as a scan of `steps` gradient steps, median of
`repeats`; the figure is milliseconds per gradient of one network (the total over the product of
the axes). It is why `agent/batching.py` runs a member or seed axis of size 1 unbatched. The loop
(`loop`): the run's config at one seed, a chunk of `--iters` iterations with updates (and
phases) from the start, compiled both ways and timed in interleaved rounds (`timing`).
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd.agent.networks import Critic
from mjx_cikd.bench import timing

SHAPES = ((), (1,), (3,), (1, 3), (1, 1), (5, 3))


def time_shape(shape: tuple[int, ...], layer_norm: bool, batch: int = 512, width: int = 256,
               steps: int = 50, repeats: int = 5) -> float:
    """ms per critic gradient under vmaps of `shape` (outermost first)."""
    critic = Critic((width,) * 2, layer_norm)
    obs, action = jnp.ones((batch, 5)), jnp.ones((batch, 1))
    params = critic.init(jax.random.key(0), obs, action)
    grad = jax.grad(lambda p, o, a: jnp.mean(critic.apply(p, o, a) ** 2))
    for n in reversed(shape):
        params, obs, action = jax.tree.map(lambda x, n=n: jnp.stack([x] * n),
                                           (params, obs, action))
        grad = jax.vmap(grad)

    def run(p, o, a):
        def step(p, _):
            return jax.tree.map(lambda x, g: x - 1e-4 * g, p, grad(p, o, a)), None

        return jax.lax.scan(step, p, None, length=steps)[0]

    fn = jax.jit(run)
    jax.block_until_ready(fn(params, obs, action))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(params, obs, action))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) / steps / max(1, math.prod(shape))


def measure(shapes=SHAPES, **kwargs) -> dict:
    rows = [{"vmap_axes": list(s), "layer_norm": ln, "ms_per_network_grad": time_shape(s, ln,
                                                                                        **kwargs)}
            for ln in (True, False) for s in shapes]
    return {"what": "critic gradient (2 x 256, batch 512) under vmap axes of these sizes",
            "device": str(jax.devices()[0]), "jax": jax.__version__, "rows": rows}


def markdown(record: dict) -> str:
    lines = ["| vmap axes | LayerNorm | ms per network gradient |", "|---|---|---:|"]
    lines += [f"| {tuple(r['vmap_axes'])} | {r['layer_norm']} | {r['ms_per_network_grad']:.2f} |"
              for r in record["rows"]]
    return "\n".join(lines)


def measure_loop(base, iters: int, repeats: int) -> dict:
    """A single seed's loop (the `base` config at its N, K and algo) mapped over its seed axis of
    one by `jax.vmap` and by `host.compiled.over_seeds` (unbatched, leaf by leaf under MuJoCo Warp):
    env steps per second of each, and their ratio within each round."""
    from mjx_cikd.bench.benchmark import loop_config, machine_facts, say_stderr
    from mjx_cikd.host import compiled
    from mjx_cikd.loop.trainer import make_train

    one = dataclasses.replace(base, num_seeds=1)
    if base.algo != "cikd":  # no phases: a chunk need not be a whole period of them
        one = dataclasses.replace(one, distill_interval_updates=iters * base.updates_per_step,
                                  distill_interval=0)
    config = loop_config(one, base.num_envs, base.algo, base.ensemble_size, iters)
    trainer = make_train(config)
    keys = compiled.seed_keys(config)
    say_stderr(f"[batch_axis] {config.env} ({trainer.task.impl}): first states")
    starts = jax.jit(jax.vmap(trainer.starts))(keys)
    shape = jax.eval_shape(jax.vmap(trainer.init), keys, starts)
    init, unbatched = compiled.over_seeds(trainer, 1, keys, starts, shape)
    sched = trainer.schedule()
    programs = {"jax.vmap": jax.vmap(trainer.chunk, in_axes=(0, None), out_axes=(0, None, 0)),
                "unbatched": unbatched}
    first_state = jax.jit(init)
    timed = {}
    for name, chunk in programs.items():  # each its own state: the chunk donates it
        fn = jax.jit(chunk, donate_argnums=0)
        timed[name] = timing.Timed(lambda state, fn=fn: fn(state, sched)[:1],
                                   (first_state(keys, starts),))
    say_stderr("[batch_axis] compiling and timing both programs")
    times = timing.time_interleaved(timed, repeats)
    env_steps = config.total_steps
    return {"what": "one seed's loop over its seed axis of one: jax.vmap against unbatched",
            "task": config.env, "impl": trainer.task.impl, "algo": config.algo,
            "ensemble_size": config.ensemble_size, "num_envs": config.num_envs,
            "batch_size": config.batch_size, "updates_per_step": config.updates_per_step,
            "critic_layer_norm": config.critic_layer_norm, "env_steps_per_chunk": env_steps,
            "seconds": times, **machine_facts(),
            "env_steps_per_s": {k: env_steps / float(np.median(v)) for k, v in times.items()},
            "speedup_per_round": timing.per_round(lambda a, b: a / b, times["jax.vmap"],
                                                  times["unbatched"])}


def loop_markdown(record: dict) -> str:
    rate = record["env_steps_per_s"]
    return (f"{record['task']} ({record['impl']}), {record['algo']} K = {record['ensemble_size']}, "
            f"N = {record['num_envs']}, one seed: jax.vmap {rate['jax.vmap']:.0f} env steps/s, "
            f"unbatched {rate['unbatched']:.0f}; speed-up {record['speedup_per_round']:.2f}x "
            "(median of per-round ratios)")
