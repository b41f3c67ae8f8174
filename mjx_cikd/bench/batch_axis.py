"""What a batch axis of one costs: the gradient of one critic (the defaults' 2 x 256 twin Q with
LayerNorm, batch 512) under nested vmaps of the given sizes, against the same network unbatched.

    python scripts/benchmark.py --batch_axis [--out FILE.json]

Each shape is compiled once and timed as a scan of `steps` gradient steps, median of `repeats`;
the figure is milliseconds per gradient of one network (the total over the product of the axes).
It is why `agent/batching.py` runs a member or seed axis of size 1 unbatched.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from mjx_cikd.agent.networks import Critic

SHAPES = ((), (1,), (3,), (1, 3), (1, 1), (5, 3))


def time_shape(shape: tuple[int, ...], layer_norm: bool, batch: int = 512, width: int = 256,
               steps: int = 50, repeats: int = 5) -> float:
    """ms per critic gradient under vmaps of `shape` (outermost first)."""
    critic = Critic(width, 2, layer_norm)
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
