"""Measurements of the training loop and of its parts, on whatever device JAX runs on.

For one task and MJX implementation, and each (num_envs N, ensemble size K):
  - simulation alone: `task.step` with a zero action inside a jitted `lax.scan`;
  - updates alone: `ensemble.update` of K members on batches of B drawn from a prefilled buffer,
    sampled and normalised as the trainer does;
  - one distillation phase alone (K > 1): `distillation.make_phase`, teacher 0;
  - the full loop (`trainer.chunk`, compiled by `run.build`, donated state) for sac (K = 1), and
    ensemble and cikd (K > 1), with updates from the first iteration (learning_starts = 0), phases
    from the first interval (distill_warmup = 0) and no evaluation inside the timed chunks;
  - compile time, replay bytes, peak device memory, and optionally the time to the first step of
    a fresh process with a cold and then a warm persistent compilation cache (`first_step`).
Every timing is the median of `repeats` calls after one warm-up call, each call a jitted scan,
blocked until ready. Rates are summed over the `num_seeds` seeds that run side by side (vmap).

`loop_efficiency` = loop time per iteration / (simulation time per iteration + U x update time):
1 means the loop costs exactly its parts; above 1 is overhead (replay writes, acting, selection,
phases for cikd); below 1 means XLA overlapped or fused work across the parts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time

from mjx_cikd import first_step

NO_EVAL = 2**31 - 1  # eval_every that never falls inside a timed chunk (int32 step counter)

ROW_FIELDS = (
    "num_envs", "ensemble_size", "algo", "batch_size", "updates_per_step", "num_seeds",
    "chunk_iters", "phases_per_chunk",
    "sim_iter_s", "sim_env_steps_per_s",
    "update_s", "updates_per_s", "member_updates_per_s",
    "distill_phase_s",
    "loop_iter_s", "loop_env_steps_per_s", "loop_updates_per_s", "loop_member_updates_per_s",
    "distill_share", "distill_share_from_phase",
    "loop_efficiency", "compile_s",
    "replay_bytes", "replay_array_bytes", "peak_device_bytes",
)


def _jax():
    import jax

    return jax


def say_stderr(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# timing


MIN_TIMING_S = 0.2  # a timing shorter than this averages several back-to-back calls


def time_calls(fn, carry: tuple, repeats: int, min_time: float = MIN_TIMING_S
               ) -> tuple[float, list[float], tuple]:
    """Call `fn(*carry) -> carry` once to warm up (compile), then take `repeats` timings, each
    blocked until ready. The output feeds the next call, so donated inputs stay valid. A call
    shorter than `min_time` (tiny configs, where timer and scheduler noise would dominate) is
    timed as the mean of enough back-to-back calls to fill `min_time`; large configs take one
    call per timing. -> (median seconds per call, all timings, last carry)."""
    jax = _jax()
    carry = jax.block_until_ready(fn(*carry))
    start = time.perf_counter()
    carry = jax.block_until_ready(fn(*carry))  # a second warm call sizes the timings
    first = time.perf_counter() - start
    calls = max(1, math.ceil(min_time / max(first, 1e-9))) if first < min_time else 1
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        for _ in range(calls):
            carry = fn(*carry)
        carry = jax.block_until_ready(carry)
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times), times, carry


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


def distill_period(config) -> int:
    """Iterations from one distillation phase to the next: ceil(I / N)."""
    return -(-config.distill_interval // config.num_envs)


def chunk_iters(config, iters: int) -> int:
    """Iterations per timed chunk: at least `iters`, and a whole number of distillation periods,
    so that every timed cikd chunk holds the same number of phases, at the config's own
    interval."""
    period = distill_period(config)
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
# the parts


def _seed_keys(config, salt: int):
    jax = _jax()
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(config.seed + salt), s))(
        _jax().numpy.arange(config.num_seeds))


def measure_simulation(config, task, iters: int, repeats: int) -> dict:
    """Vector env steps/s of `task.step` with a zero action, `iters` steps per jitted scan."""
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
    fn = jax.jit(jax.vmap(run), donate_argnums=(0,))
    median, times, _ = time_calls(fn, (env, keys), repeats)
    return {"sim_iter_s": median / iters,
            "sim_env_steps_per_s": iters * n * config.num_seeds / median,
            "sim_times_s": times}


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


def _prefilled(config, task, salt: int):
    jax = _jax()
    return jax.jit(jax.vmap(lambda key: prefilled_buffer(config, task, key)))(
        _seed_keys(config, salt))


def measure_updates(config, task, iters: int, repeats: int, ensemble=None) -> dict:
    """SAC updates/s of all K members at batch B, `iters` updates per jitted scan, each member on
    its own batch sampled from a full buffer and normalised, as the trainer does."""
    jax = _jax()
    from mjx_cikd.ensemble import make_ensemble
    from mjx_cikd.trainer import sac_steps

    ensemble = ensemble or make_ensemble(config, task.obs_size, task.action_size)
    k = ensemble.size

    def run(members, buf, norm, key):
        key, sub = jax.random.split(key)
        members, _ = sac_steps(ensemble, members, buf, norm, sub, iters, config.batch_size)
        return members, key

    median, times = _time_members(config, task, ensemble, run, repeats, salt=2)
    return {"update_s": median / iters, "updates_per_s": iters * config.num_seeds / median,
            "member_updates_per_s": iters * k * config.num_seeds / median,
            "update_times_s": times}


def _time_members(config, task, ensemble, run, repeats: int, salt: int):
    """Time `run(members, buf, norm, key) -> (members, key)`, vmapped over seeds, on freshly
    initialised members and a prefilled buffer. The buffer is an argument (never a baked-in
    constant) and never an output (no copy in the timing). -> (median s, timings)."""
    jax = _jax()
    buf, norm = _prefilled(config, task, salt)
    keys = _seed_keys(config, salt + 1)
    members = jax.jit(jax.vmap(ensemble.init))(keys)
    fn = jax.jit(jax.vmap(run), donate_argnums=(0,))
    median, times, _ = time_calls(lambda m, key: fn(m, buf, norm, key), (members, keys), repeats)
    return median, times


def measure_phase(config, task, repeats: int, ensemble=None) -> dict:
    """Seconds per distillation phase (distill_steps steps at distill_batch_size), teacher 0."""
    jax = _jax()
    jnp = jax.numpy
    from mjx_cikd.distillation import make_phase
    from mjx_cikd.ensemble import make_ensemble

    ensemble = ensemble or make_ensemble(config, task.obs_size, task.action_size)
    phase = make_phase(config, ensemble)

    def run(members, buf, norm, key):
        key, sub = jax.random.split(key)
        members, stats = phase(members, buf, norm, jnp.asarray(0, jnp.int32), sub)
        return members, key

    median, times = _time_members(config, task, ensemble, run, repeats, salt=4)
    return {"distill_phase_s": median, "distill_times_s": times}


def measure_loop(config, task, repeats: int) -> dict:
    """One compiled chunk of the real training loop (`run.build`), chained from chunk to chunk."""
    from mjx_cikd import replay
    from mjx_cikd.run import build, seed_keys
    from mjx_cikd.trainer import make_train

    compiled = build(config, make_train(config, task))
    state = compiled.init(seed_keys(config))
    array_bytes = replay.arrays_nbytes(state.buffer)
    chunk = lambda state, sched: compiled.chunk(state, sched)[:2]  # noqa: E731
    median, times, (state, sched) = time_calls(chunk, (state, compiled.trainer.schedule()),
                                               repeats)
    t, n, s = config.iters_per_chunk, config.num_envs, config.num_seeds
    phases_on = config.algo == "cikd" or config.extra_updates
    del state
    return {"chunk_iters": t,
            "phases_per_chunk": t // distill_period(config) if phases_on else 0,
            "chunk_s": median, "loop_iter_s": median / t,
            "loop_env_steps_per_s": t * n * s / median,
            "loop_updates_per_s": t * config.updates_per_step * s / median,
            "loop_member_updates_per_s":
                t * config.updates_per_step * config.ensemble_size * s / median,
            "compile_s": compiled.compile_s,
            "replay_bytes": s * replay.nbytes(config.buffer_rows, task.obs_size,
                                              task.action_size),
            "replay_array_bytes": array_bytes,
            "peak_device_bytes": peak_device_bytes(), "chunk_times_s": times}


def efficiency(loop_iter_s: float, sim_iter_s: float, update_s: float, updates_per_step: int):
    return loop_iter_s / (sim_iter_s + updates_per_step * update_s)


# ---------------------------------------------------------------------------------------------
# whole benchmark


def _distill_shares(rows: list[dict]) -> None:
    """distill_share of each cikd row, from the ensemble row at the same N and K."""
    for row in rows:
        if row["algo"] != "cikd":
            continue
        base = next(r for r in rows if r["algo"] == "ensemble" and r["num_envs"] ==
                    row["num_envs"] and r["ensemble_size"] == row["ensemble_size"])
        row["distill_share"] = (row["chunk_s"] - base["chunk_s"]) / row["chunk_s"]
        row["distill_share_from_phase"] = (row["phases_per_chunk"] * row["distill_phase_s"]
                                           / row["chunk_s"])
        # the same ratio as loop_efficiency with the phases' amortised cost among the parts
        row["loop_efficiency_with_phase"] = row["loop_iter_s"] / (
            row["sim_iter_s"] + row["updates_per_step"] * row["update_s"]
            + row["phases_per_chunk"] * row["distill_phase_s"] / row["chunk_iters"])


def measure_configs(base, pairs: list[tuple[int, int]], algos: dict | None = None,
                    iters: int = 20, repeats: int = 5, say=say_stderr) -> tuple[list[dict], dict]:
    """Rows for each (num_envs, K) in `pairs` and each algo of `algos_for(K)` (or `algos[K]`)."""
    from mjx_cikd import envs
    from mjx_cikd.ensemble import make_ensemble

    rows, tasks, sims = [], {}, {}
    for n, k in pairs:
        names = (algos or {}).get(k, algos_for(k))
        if "cikd" in names and "ensemble" not in names:
            names = ("ensemble", *names)  # the baseline of distill_share
        configs = {a: loop_config(base, n, a, k, iters) for a in names}
        any_config = next(iter(configs.values()))
        task = tasks.get(n) or tasks.setdefault(n, envs.make_task(any_config))
        if n not in sims:
            say(f"[bench] N={n}: simulation ({task.name}, impl={task.impl})")
            sims[n] = measure_simulation(any_config, task, iters, repeats)
        sim = sims[n]
        ensemble = make_ensemble(any_config, task.obs_size, task.action_size)
        say(f"[bench] N={n} K={k}: updates (B={any_config.batch_size})")
        upd = measure_updates(any_config, task, iters, repeats, ensemble)
        phase = {"distill_phase_s": None}
        if k > 1:
            say(f"[bench] N={n} K={k}: one distillation phase (D={any_config.distill_steps}, "
                f"B_d={any_config.distill_batch_size})")
            phase = measure_phase(configs.get("cikd", any_config), task, repeats, ensemble)
        for algo, config in configs.items():
            say(f"[bench] N={n} K={k}: loop {algo} ({config.iters_per_chunk} iterations/chunk)")
            loop = measure_loop(config, task, repeats)
            row = {"num_envs": n, "ensemble_size": k, "algo": algo, "env": task.name,
                   "impl": task.impl, "batch_size": config.batch_size,
                   "updates_per_step": config.updates_per_step, "num_seeds": config.num_seeds,
                   "distill_interval": config.distill_interval,
                   "distill_steps": config.distill_steps,
                   "distill_batch_size": config.distill_batch_size,
                   **sim, **upd, **phase, **loop,
                   "distill_share": None, "distill_share_from_phase": None,
                   "loop_efficiency_with_phase": None}
            row["loop_efficiency"] = efficiency(row["loop_iter_s"], row["sim_iter_s"],
                                                row["update_s"], row["updates_per_step"])
            rows.append(row)
    _distill_shares(rows)
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


# ---------------------------------------------------------------------------------------------
# output


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "rate":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if kind == "s":
        return f"{value:.3g}"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "x":
        return f"{value:.2f}"
    if kind == "mib":
        return f"{value / 2**20:,.1f}"
    return str(value)


TABLE = (("N", "num_envs", ""), ("K", "ensemble_size", ""), ("algo", "algo", ""),
         ("sim steps/s", "sim_env_steps_per_s", "rate"), ("updates/s", "updates_per_s", "rate"),
         ("phase s", "distill_phase_s", "s"), ("loop steps/s", "loop_env_steps_per_s", "rate"),
         ("loop updates/s", "loop_updates_per_s", "rate"),
         ("distill share", "distill_share", "pct"), ("efficiency", "loop_efficiency", "x"),
         ("compile s", "compile_s", "s"), ("replay MiB", "replay_bytes", "mib"),
         ("peak MiB", "peak_device_bytes", "mib"))


def markdown(result: dict) -> str:
    head = (f"{result['env']} (impl={result['impl']}) on {result['device']}, jax {result['jax']}, "
            f"mujoco {result['mujoco']}, {result['date']}; median of {result['repeats']}, "
            f"U={result['rows'][0]['updates_per_step']}, B={result['rows'][0]['batch_size']}")
    lines = [head, "", "| " + " | ".join(h for h, _, _ in TABLE) + " |",
             "|" + "|".join("---:" if kind else "---" for _, _, kind in TABLE) + "|"]
    for row in result["rows"]:
        lines.append("| " + " | ".join(_fmt(row.get(key), kind) for _, key, kind in TABLE) + " |")
    cc = result.get("cache_check")
    if cc:
        c = cc["config"]
        lines += ["", f"first step (N={c['num_envs']}, K={c['ensemble_size']}, {c['algo']}): "
                  f"cold cache {cc['first_step_cold_s']:.1f}s, warm cache "
                  f"{cc['first_step_warm_s']:.1f}s, ratio {cc['first_step_ratio']:.2f}x"]
        for name in ("cold", "warm"):
            stages = cc.get(f"stages_{name}_s") or {}
            lines.append(f"  {name}: " + ", ".join(
                f"{k.removesuffix('_s')} {v:.1f}s" for k, v in stages.items()))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# command line


def _int_list(text: str, flag: str) -> list[int]:
    from mjx_cikd.config import ConfigError

    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{flag}: cannot read {text!r} as a comma list of integers")
    if not values or min(values) < 1:
        raise ConfigError(f"--{flag} must list integers >= 1, got {text!r}")
    return values


def _bool(text) -> bool:
    from mjx_cikd.config import coerce

    return coerce("cache_check", text, bool)


def pop_flag(argv: list[str], name: str) -> tuple[list[str], str | None]:
    """Remove `--name V` / `--name=V` from argv (last one wins); -> (rest, V or None)."""
    rest, value, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == f"--{name}":
            if i + 1 >= len(argv):
                from mjx_cikd.config import ConfigError

                raise ConfigError(f"argument --{name}: expected one argument")
            value, i = argv[i + 1], i + 2
            continue
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, value


def _bench_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("benchmark")
    group.add_argument("--ensemble_sizes", default="1,3", help="comma list of K (default 1,3)")
    group.add_argument("--repeats", type=int, default=5, help="timings per measurement; median")
    group.add_argument("--iters", type=int, default=20,
                       help="iterations per timed scan (a loop chunk is rounded up to whole "
                            "distillation periods)")
    group.add_argument("--out", default="bench.json", help="JSON output")
    group.add_argument("--cache_check", default="true",
                       help="time to first step with a cold and a warm compilation cache")


def parse(argv: list[str] | None):
    """-> (base Config, num_envs list, bench args). `--num_envs` takes a comma list here; the
    first value is handed to the Config (so its validation sees a real N)."""
    from mjx_cikd.config import config_from_args

    argv = list(sys.argv[1:] if argv is None else argv)
    argv, num_envs_text = pop_flag(argv, "num_envs")
    num_envs = _int_list(num_envs_text, "num_envs") if num_envs_text is not None else None
    if num_envs:
        argv += ["--num_envs", str(num_envs[0])]
    base, args = config_from_args(argv, extra=_bench_flags)
    if num_envs is None:
        num_envs = [base.num_envs]
    args.ensemble_sizes = _int_list(args.ensemble_sizes, "ensemble_sizes")
    args.cache_check = _bool(args.cache_check)
    if args.repeats < 1 or args.iters < 1:
        from mjx_cikd.config import ConfigError

        raise ConfigError("--repeats and --iters must be >= 1")
    return base, num_envs, args


def main(argv: list[str] | None = None) -> int:
    from mjx_cikd.config import ConfigError

    try:
        base, num_envs, args = parse(argv)
        from mjx_cikd import envs

        envs.resolve_impl(base.env, base.impl)
        for n in num_envs:  # every configuration is valid before anything is compiled
            for k in args.ensemble_sizes:
                for algo in algos_for(k):
                    loop_config(base, n, algo, k, args.iters)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = run_benchmark(base, num_envs, args.ensemble_sizes, iters=args.iters,
                           repeats=args.repeats, check_cache=args.cache_check)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    print(markdown(result), flush=True)
    if args.out:
        print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


def _json_default(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    except ImportError:
        pass
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
