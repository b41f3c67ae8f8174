"""Measurements of the training loop and of its parts, on whatever device JAX runs on.

For one task and MJX implementation, and each (num_envs N, ensemble size K), everything sized to
one chunk of the loop (T iterations, a whole number of distillation periods):
  - simulation alone: T steps of `task.step` with a zero action inside a jitted `lax.scan`;
  - updates alone: the T x U SAC updates of a chunk, K members on batches of B drawn from a full
    buffer, sampled and normalised as the trainer does (`trainer.sac_steps`);
  - one distillation phase alone (K > 1): `distillation.make_phase`, teacher 0;
  - acting alone: T times `trainer.act` (K actors on N observations, the index mask);
  - the full loop (`trainer.chunk`, compiled by `run.build`, donated state) for sac (K = 1), and
    ensemble and cikd (K > 1), in steady state: updates from the first iteration
    (learning_starts = 0), phases from the first interval (distill_warmup = 0), a buffer that
    reads as full (batches gather from the whole ring, as after the first C/N iterations of a
    run), no evaluation inside the timed chunks;
  - compile time, replay bytes, peak device memory, and optionally the time to the first step of
    a fresh process with a cold and then a warm persistent compilation cache (`first_step`).

Timing (`timing.time_interleaved`): every measurement at one N is compiled and warmed up first, then
timed in `repeats` rounds, each round calling every measurement once in turn. The machine's slow
drift (other tenants, clocks) lands on all the measurements of a round alike, so the ratios are
taken within each round and their median is reported. Rates are summed over the `num_seeds`
seeds that run side by side (vmap).

`loop_efficiency` = loop time per iteration / (simulation time per iteration + U x update time):
1 means the loop costs exactly its parts; above 1 is overhead (replay writes, acting, selection,
phases for cikd); below 1 means XLA overlapped or fused work across the parts.
`loop_rest_share` is the share of the chunk that no timed part holds (after simulation,
updates, acting and phases): replay writes, the normaliser, selection, the schedule.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys

from mjx_cikd import first_step
from mjx_cikd.timing import Timed, per_round, time_interleaved

NO_EVAL = 2**31 - 1  # eval_every that never falls inside a timed chunk (int32 step counter)

ROW_FIELDS = (
    "num_envs", "ensemble_size", "algo", "batch_size", "updates_per_step", "num_seeds",
    "chunk_iters", "phases_per_chunk",
    "sim_iter_s", "sim_env_steps_per_s",
    "update_s", "updates_per_s", "member_updates_per_s", "update_cost_vs_k1",
    "distill_phase_s", "act_iter_s",
    "loop_iter_s", "loop_env_steps_per_s", "loop_updates_per_s", "loop_member_updates_per_s",
    "env_steps_vs_sac", "distill_share", "distill_share_from_phase",
    "loop_efficiency", "loop_rest_share", "compile_s",
    "replay_bytes", "replay_array_bytes", "peak_device_bytes",
)


def _jax():
    import jax

    return jax


def say_stderr(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# device facts


def peak_device_bytes() -> int | None:
    """Peak bytes in use on the first device so far in this process, if the backend reports it
    (GPU/TPU do; the CPU backend returns None)."""
    try:
        stats = _jax().devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - backends without memory stats
        return None
    if not stats:
        return None
    value = stats.get("peak_bytes_in_use", stats.get("bytes_in_use"))
    return None if value is None else int(value)


def describe() -> dict:
    jax = _jax()
    import mujoco

    dev = jax.devices()[0]
    try:
        from importlib.metadata import version

        mjx_version = version("mujoco-mjx")
    except Exception:  # noqa: BLE001
        mjx_version = None
    return {"device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
            "device_count": jax.device_count(), "backend": jax.default_backend(),
            "jax": jax.__version__, "mujoco": mujoco.__version__, "mujoco_mjx": mjx_version,
            "python": platform.python_version(), "host": platform.node(),
            "cpu_count": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


# ---------------------------------------------------------------------------------------------
# configurations


def chunk_iters(config, iters: int) -> int:
    """Iterations per timed chunk: at least `iters`, and a whole number of distillation periods,
    so that every timed cikd chunk holds the same number of phases, at the config's own
    interval."""
    period = config.phase_period
    return period * max(1, -(-iters // period))


def loop_config(base, num_envs: int, algo: str, ensemble_size: int, iters: int):
    """The config of one timed loop: the user's config at (N, algo, K), one chunk of
    `chunk_iters` iterations, updates and phases from the start, no evaluation inside."""
    from mjx_cikd.config import ConfigError, replace

    widths = base.widths
    if widths and len(widths) != ensemble_size:
        if len(set(widths)) != 1:
            raise ConfigError(f"--widths {','.join(map(str, widths))} lists {len(widths)} "
                              f"members; it cannot be benchmarked at ensemble size "
                              f"{ensemble_size}")
        widths = ()
    config = replace(base, num_envs=num_envs, algo=algo, ensemble_size=ensemble_size,
                     widths=widths, extra_updates=base.extra_updates and algo != "cikd",
                     learning_starts=0, distill_warmup=0, eval_every=NO_EVAL,
                     progress=False, tensorboard=False, compile_cache="",
                     checkpoint_every=0)
    t = chunk_iters(config, iters)
    return replace(config, total_steps=t * num_envs, log_every=t * num_envs)


def algos_for(ensemble_size: int) -> tuple[str, ...]:
    return ("sac",) if ensemble_size == 1 else ("ensemble", "cikd")


# ---------------------------------------------------------------------------------------------
# the parts: each a Timed, ready for time_interleaved


def _seed_keys(config, salt: int):
    jax = _jax()
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(config.seed + salt), s))(
        _jax().numpy.arange(config.num_seeds))


def simulation(config, task, iters: int) -> Timed:
    """`iters` vector steps of `task.step` with a zero action, in one jitted scan."""
    jax = _jax()
    jnp = jax.numpy
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

    keys = _seed_keys(config, 1)
    env = jax.jit(jax.vmap(lambda k: task.reset(jax.random.split(k, n))))(keys)
    return Timed(jax.jit(jax.vmap(run), donate_argnums=(0,)), (env, keys))


def prefilled_buffer(config, task, key):
    """A full replay buffer of random transitions and a normaliser that has seen some of them
    (what the trainer samples from in steady state; the values do not change the cost)."""
    jax = _jax()
    jnp = jax.numpy
    from mjx_cikd import normalizer as norm_lib
    from mjx_cikd import replay

    c, o, a = config.buffer_rows, task.obs_size, task.action_size
    k = jax.random.split(key, 4)
    buf = replay.init(c, o, a).replace(
        obs=jax.random.normal(k[0], (c, o)), next_obs=jax.random.normal(k[1], (c, o)),
        action=jax.random.uniform(k[2], (c, a), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(k[3], (c,)), ptr=jnp.zeros((), jnp.int32),
        size=jnp.asarray(c, jnp.int32))
    norm = norm_lib.update(norm_lib.init(o, config.normalize_obs), buf.obs[:4096])
    return buf, norm


def prefilled(config, task, salt: int = 2):
    """`prefilled_buffer` for each seed (one per N: updates and phases read it, never write)."""
    jax = _jax()
    return jax.jit(jax.vmap(lambda key: prefilled_buffer(config, task, key)))(
        _seed_keys(config, salt))


def _on_members(config, ensemble, run, filled, salt: int) -> Timed:
    """`run(members, buf, norm, key) -> (members, key)`, vmapped over seeds, on freshly
    initialised members; the buffer is an argument (never a baked-in constant) and never an
    output (no copy in the timing)."""
    jax = _jax()
    buf, norm = filled
    keys = _seed_keys(config, salt)
    members = jax.jit(jax.vmap(ensemble.init))(keys)
    fn = jax.jit(jax.vmap(run), donate_argnums=(0,))
    return Timed(lambda m, key: fn(m, buf, norm, key), (members, keys))


def updates(config, ensemble, count: int, filled) -> Timed:
    """`count` SAC updates of all K members, each on its own batch of B (`trainer.sac_steps`)."""
    jax = _jax()
    from mjx_cikd.trainer import sac_steps

    def run(members, buf, norm, key):
        key, sub = jax.random.split(key)
        members, _ = sac_steps(ensemble, members, buf, norm, sub, count, config.batch_size)
        return members, key

    return _on_members(config, ensemble, run, filled, salt=3)


def phase(config, ensemble, filled) -> Timed:
    """One distillation phase (distill_steps steps at distill_batch_size), teacher 0."""
    jax = _jax()
    jnp = jax.numpy
    from mjx_cikd.distillation import make_phase

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
    jax = _jax()
    jnp = jax.numpy
    from mjx_cikd import normalizer as norm_lib
    from mjx_cikd import selection
    from mjx_cikd.trainer import act

    n, k = config.num_envs, ensemble.size

    def run(members, key, total):
        key, k_obs, k_member, k_scan = jax.random.split(key, 4)
        obs = jax.random.normal(k_obs, (n, task.obs_size))
        member = selection.draw_members(k_member, n, k)
        norm = norm_lib.update(norm_lib.init(task.obs_size, config.normalize_obs), obs)

        def body(obs, key):
            action = act(ensemble, members, norm, obs, member, key)
            return obs + 1e-3 * action.sum(-1, keepdims=True), None

        obs, _ = jax.lax.scan(body, obs, jax.random.split(k_scan, iters))
        return members, key, total + obs.sum()  # an output that needs every step

    keys = _seed_keys(config, 7)
    members = jax.jit(jax.vmap(ensemble.init))(keys)
    return Timed(jax.jit(jax.vmap(run)), (members, keys, jnp.zeros(config.num_seeds)))


def loop(config, task) -> Timed:
    """One compiled chunk of the real training loop (`run.build`), chained from chunk to chunk,
    from a state whose buffer reads as full (steady state: batches gather from the whole ring)."""
    jax = _jax()
    from mjx_cikd import replay
    from mjx_cikd.run import build, seed_keys
    from mjx_cikd.trainer import make_train

    compiled = build(config, make_train(config, task))
    state = compiled.init(seed_keys(config))
    buf = state.buffer
    state = state.replace(buffer=buf.replace(size=jax.numpy.full_like(buf.size,
                                                                        config.buffer_rows)))
    s = config.num_seeds
    info = {"compile_s": compiled.compile_s,
            "replay_bytes": s * replay.nbytes(config.buffer_rows, task.obs_size,
                                              task.action_size),
            "replay_array_bytes": replay.arrays_nbytes(buf)}
    chunk = lambda state, sched: compiled.chunk(state, sched)[:2]  # noqa: E731
    return Timed(chunk, (state, compiled.trainer.schedule()), info)


# ---------------------------------------------------------------------------------------------
# whole benchmark


def measure_group(base, n: int, sizes: dict, iters: int, repeats: int, say=say_stderr
                  ) -> tuple[list[dict], object]:
    """Rows for one N: `sizes` maps each K to its algos. All measurements at this N are timed
    in the same rounds (`time_interleaved`); the ratios are medians of per-round ratios."""
    from mjx_cikd import envs
    from mjx_cikd.ensemble import make_ensemble

    configs = {(k, a): loop_config(base, n, a, k, iters) for k, algos in sizes.items()
               for a in algos}
    any_config = next(iter(configs.values()))
    t, u = any_config.iters_per_chunk, any_config.updates_per_step
    task = envs.make_task(any_config)
    say(f"[bench] N={n}: compiling and warming up ({task.name}, impl={task.impl}, "
        f"{t} iterations per chunk)")
    timed = {"sim": simulation(any_config, task, t)}
    filled = prefilled(any_config, task)
    for k, algos in sizes.items():
        config = configs[(k, algos[-1])]
        ensemble = make_ensemble(config, task.obs_size, task.action_size)
        timed[("updates", k)] = updates(config, ensemble, t * u, filled)
        timed[("acting", k)] = acting(config, task, ensemble, t)
        if k > 1:
            timed[("phase", k)] = phase(config, ensemble, filled)
        for a in algos:
            timed[("loop", k, a)] = loop(configs[(k, a)], task)
    say(f"[bench] N={n}: {len(timed)} measurements x {repeats} rounds")
    times = time_interleaved(timed, repeats)
    peak = peak_device_bytes()
    sim, med = times["sim"], statistics.median
    rows = []
    for (k, algo), config in configs.items():
        upd, chunk = times[("updates", k)], times[("loop", k, algo)]
        acts, phase_times = times[("acting", k)], times.get(("phase", k))
        phases_on = algo == "cikd" or config.extra_updates
        p = t // config.phase_period if phases_on else 0
        s = config.num_seeds
        row = {"num_envs": n, "ensemble_size": k, "algo": algo, "env": task.name,
               "impl": task.impl, "batch_size": config.batch_size, "updates_per_step": u,
               "num_seeds": s, "distill_interval": config.distill_interval,
               "distill_steps": config.distill_steps,
               "distill_batch_size": config.distill_batch_size,
               "chunk_iters": t,
               "phases_per_chunk": p,
               "sim_iter_s": med(sim) / t, "sim_env_steps_per_s": t * n * s / med(sim),
               "update_s": med(upd) / (t * u), "updates_per_s": t * u * s / med(upd),
               "member_updates_per_s": t * u * k * s / med(upd),
               "update_cost_vs_k1": None,
               "distill_phase_s": med(phase_times) if phase_times else None,
               "act_iter_s": med(acts) / t,
               "chunk_s": med(chunk), "loop_iter_s": med(chunk) / t,
               "loop_env_steps_per_s": t * n * s / med(chunk),
               "loop_updates_per_s": t * u * s / med(chunk),
               "loop_member_updates_per_s": t * u * k * s / med(chunk),
               "env_steps_vs_sac": None, "distill_share": None,
               "distill_share_from_phase": None, "loop_efficiency_with_phase": None,
               # one chunk against the simulation and the updates that chunk holds
               "loop_efficiency": per_round(lambda c, m, w: c / (m + w), chunk, sim, upd),
               # what none of the timed parts holds (replay write, normaliser, selection, ...)
               "loop_rest_share": per_round(
                   lambda c, m, w, a, d: (c - m - w - a - p * d) / c, chunk, sim, upd, acts,
                   phase_times if p else [0.0] * len(chunk)),
               **(timed[("loop", k, algo)].info or {}), "peak_device_bytes": peak,
               "sim_times_s": sim, "update_times_s": upd, "act_times_s": acts,
               "distill_times_s": phase_times,
               "chunk_times_s": chunk}
        if ("updates", 1) in timed and k > 1:
            row["update_cost_vs_k1"] = per_round(lambda a, b: a / b, upd, times[("updates", 1)])
        if ("loop", 1, "sac") in timed and k > 1:
            row["env_steps_vs_sac"] = per_round(lambda a, b: b / a, chunk,
                                                times[("loop", 1, "sac")])
        if algo == "cikd" and ("loop", k, "ensemble") in timed:
            base_chunk = times[("loop", k, "ensemble")]
            row["distill_share"] = per_round(lambda c, e: (c - e) / c, chunk, base_chunk)
            row["distill_share_from_phase"] = per_round(lambda c, d: p * d / c, chunk,
                                                        phase_times)
            # loop_efficiency with the phases' cost among the parts
            row["loop_efficiency_with_phase"] = per_round(
                lambda c, m, w, d: c / (m + w + p * d), chunk, sim, upd, phase_times)
        rows.append(row)
    return rows, task


def measure_configs(base, pairs: list[tuple[int, int]], algos: dict | None = None,
                    iters: int = 20, repeats: int = 5, say=say_stderr) -> tuple[list[dict], dict]:
    """Rows for each (num_envs, K) in `pairs` and each algo of `algos_for(K)` (or `algos[K]`),
    one `measure_group` per N. A cikd row brings the ensemble row its distill_share needs."""
    groups: dict[int, dict] = {}
    for n, k in pairs:
        names = (algos or {}).get(k, algos_for(k))
        if "cikd" in names and "ensemble" not in names:
            names = ("ensemble", *names)
        groups.setdefault(n, {})[k] = tuple(names)
    rows, tasks = [], {}
    for n, sizes in groups.items():
        group_rows, tasks[n] = measure_group(base, n, sizes, iters, repeats, say)
        rows += group_rows
    return rows, tasks


def run_benchmark(base, num_envs: list[int], ensemble_sizes: list[int], iters: int = 20,
                  repeats: int = 5, check_cache: bool = True, say=say_stderr) -> dict:
    pairs = [(n, k) for n in num_envs for k in ensemble_sizes]
    rows, tasks = measure_configs(base, pairs, iters=iters, repeats=repeats, say=say)
    result = {**describe(), "env": base.env, "impl_requested": base.impl,
              "impl": next(iter(tasks.values())).impl, "iters": iters, "repeats": repeats,
              "num_envs": num_envs, "ensemble_sizes": ensemble_sizes,
              "config": base.to_dict(), "rows": rows, "cache_check": None}
    if check_cache:
        # one representative configuration: the largest N, the largest K, cikd if K > 1
        n, k = max(num_envs), max(ensemble_sizes)
        config = loop_config(base, n, algos_for(k)[-1], k, iters)
        say(f"[bench] cache check: N={n} K={k} {config.algo}, two fresh processes")
        result["cache_check"] = first_step.cache_check(config)
    return result
