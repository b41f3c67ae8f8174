"""Measurements of the training loop and of its parts, on whatever device JAX runs on.

For one task and MJX implementation, and each (num_envs N, ensemble size K), everything sized to
one chunk of the loop (T iterations, a whole number of distillation periods):
  - simulation alone: T steps of `task.step` with a zero action inside a jitted `lax.scan`;
  - updates alone: the T x U SAC updates of a chunk, K members on batches of B drawn from a full
    buffer, sampled and normalised as the trainer does (`trainer.sac_steps`);
  - one distillation phase alone (K > 1): `distillation.make_phase`, teacher 0;
  - acting alone: T times `trainer.act` (K actors on N observations, the index mask);
  - the full loop (`trainer.chunk`, compiled by `compiled.build`, donated state) for sac
    (K = 1), and ensemble and cikd (K > 1), in steady state: updates from the first iteration
    (learning_starts = 0), phases from the first interval (distill_warmup = 0), a buffer that
    reads as full (batches gather from the whole ring, as after the first C/N iterations of a
    run), no evaluation inside the timed chunks but the one a phase point's election reads
    (cikd under `--election_metric eval`, the default: one per chunk, as in a run);
  - compile time, replay bytes, peak device memory, and optionally the time to the first step of
    a fresh process with a cold and then a warm persistent compilation cache (`first_step`).
The parts are built in `parts`; this module sizes them, times them together and turns the times
into rows.

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
import importlib.metadata
import os
import platform
import statistics
import sys

import jax

from mjx_cikd.agent.ensemble import make_ensemble
from mjx_cikd.bench import first_step, parts
from mjx_cikd.bench.timing import per_round, time_interleaved
from mjx_cikd.config import NO_EVAL, ConfigError, ceil_div, replace
from mjx_cikd.envs import contacts
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host.run import describe_device

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


def say_stderr(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# device facts


def peak_device_bytes() -> int | None:
    """Peak bytes in use on the first device so far in this process, if the backend reports it
    (GPU/TPU do; the CPU backend returns None)."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - backends without memory stats
        return None
    if not stats:
        return None
    value = stats.get("peak_bytes_in_use", stats.get("bytes_in_use"))
    return None if value is None else int(value)


def machine_facts() -> dict:
    """`run.describe_device`, and what else a record needs to be compared with a later one."""
    try:
        mjx_version = importlib.metadata.version("mujoco-mjx")
    except importlib.metadata.PackageNotFoundError:
        mjx_version = None
    return {**describe_device(), "device_count": jax.device_count(),
            "backend": jax.default_backend(), "mujoco_mjx": mjx_version,
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
    return period * max(1, ceil_div(iters, period))


def loop_config(base, num_envs: int, algo: str, ensemble_size: int, iters: int):
    """The config of one timed loop: the user's config at (N, algo, K), one chunk of
    `chunk_iters` iterations, updates and phases from the start, no evaluation inside but the
    one the election reads at a phase point."""
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
                     progress="off", tensorboard=False, compile_cache="",
                     checkpoint_every=0)
    t = chunk_iters(config, iters)
    return replace(config, total_steps=t * num_envs, log_every=t * num_envs)


def algos_for(ensemble_size: int) -> tuple[str, ...]:
    return ("sac",) if ensemble_size == 1 else ("ensemble", "cikd")


# ---------------------------------------------------------------------------------------------
# one N: every part and every loop timed in the same rounds


def _timed_parts(configs: dict, sizes: dict, task, t: int) -> dict:
    """The simulation once, the updates, acting and phase once per K (on the config of its
    last algo: they do not depend on it), and one loop per (K, algo)."""
    any_config = next(iter(configs.values()))
    timed = {"sim": parts.simulation(any_config, task, t)}
    filled = parts.prefilled(any_config, task)
    for k, algos in sizes.items():
        config = configs[(k, algos[-1])]
        ensemble = make_ensemble(config, task.obs_size, task.action_size, task.reward_bound)
        timed[("updates", k)] = parts.updates(config, ensemble, t * config.updates_per_step,
                                              filled)
        timed[("acting", k)] = parts.acting(config, task, ensemble, t)
        if k > 1:
            timed[("phase", k)] = parts.phase(config, ensemble, filled)
        for a in algos:
            timed[("loop", k, a)] = parts.loop(configs[(k, a)], task)
    return timed


def _row(config, task, times: dict) -> dict:
    """One configuration's row from the times of its group's rounds."""
    n, k, algo = config.num_envs, config.ensemble_size, config.algo
    t, u, s = config.iters_per_chunk, config.updates_per_step, config.num_seeds
    sim, med = times["sim"], statistics.median
    upd, chunk = times[("updates", k)], times[("loop", k, algo)]
    acts, phase_times = times[("acting", k)], times.get(("phase", k))
    p = t // config.phase_period if config.phases_on else 0
    row = {"num_envs": n, "ensemble_size": k, "algo": algo, "env": task.name,
           "impl": task.impl, "batch_size": config.batch_size, "updates_per_step": u,
           "num_seeds": s, "phase_period": config.phase_period,
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
           "sim_times_s": sim, "update_times_s": upd, "act_times_s": acts,
           "distill_times_s": phase_times,
           "chunk_times_s": chunk}
    if ("updates", 1) in times and k > 1:
        row["update_cost_vs_k1"] = per_round(lambda a, b: a / b, upd, times[("updates", 1)])
    if ("loop", 1, "sac") in times and k > 1:
        row["env_steps_vs_sac"] = per_round(lambda a, b: b / a, chunk,
                                            times[("loop", 1, "sac")])
    if algo == "cikd" and ("loop", k, "ensemble") in times:
        base_chunk = times[("loop", k, "ensemble")]
        row["distill_share"] = per_round(lambda c, e: (c - e) / c, chunk, base_chunk)
        row["distill_share_from_phase"] = per_round(lambda c, d: p * d / c, chunk, phase_times)
        row["loop_efficiency_with_phase"] = per_round(
            lambda c, m, w, d: c / (m + w + p * d), chunk, sim, upd, phase_times)
    return row


def measure_group(base, n: int, sizes: dict, iters: int, repeats: int, say=say_stderr
                  ) -> tuple[list[dict], object]:
    """Rows for one N: `sizes` maps each K to its algos. All measurements at this N are timed
    in the same rounds (`time_interleaved`); the ratios are medians of per-round ratios."""
    configs = {(k, a): loop_config(base, n, a, k, iters) for k, algos in sizes.items()
               for a in algos}
    any_config = next(iter(configs.values()))
    t = any_config.iters_per_chunk
    task = envs.make_task(any_config, max(contacts.worlds(c) for c in configs.values()))
    say(f"[bench] N={n}: compiling and warming up ({task.name}, impl={task.impl}, "
        f"{t} iterations per chunk)")
    timed = _timed_parts(configs, sizes, task, t)
    say(f"[bench] N={n}: {len(timed)} measurements x {repeats} rounds")
    times = time_interleaved(timed, repeats)
    peak = peak_device_bytes()
    rows = [{**_row(config, task, times), **(timed[("loop", k, a)].info or {}),
             "peak_device_bytes": peak} for (k, a), config in configs.items()]
    return rows, task


# ---------------------------------------------------------------------------------------------
# whole benchmark


def measure_configs(base, pairs: list[tuple[int, int]], algos: dict | None = None,
                    iters: int = 20, repeats: int = 5, say=say_stderr,
                    bases: dict | None = None) -> tuple[list[dict], dict]:
    """Rows for each (num_envs, K) in `pairs` and each algo of `algos_for(K)` (or `algos[K]`),
    one `measure_group` per N. A cikd row brings the ensemble row its distill_share needs.
    `bases`: the user's config resolved at each N (the batch and U that follow N,
    `config/budget.py`), where it differs from `base`."""
    groups: dict[int, dict] = {}
    for n, k in pairs:
        names = (algos or {}).get(k, algos_for(k))
        if "cikd" in names and "ensemble" not in names:
            names = ("ensemble", *names)
        groups.setdefault(n, {})[k] = tuple(names)
    rows, tasks = [], {}
    for n, sizes in groups.items():
        group_rows, tasks[n] = measure_group((bases or {}).get(n, base), n, sizes, iters,
                                             repeats, say)
        rows += group_rows
    return rows, tasks


def record(base, rows: list[dict], tasks: dict, repeats: int, **more) -> dict:
    """The JSON of a measurement: the machine, the task, the user's config and the rows."""
    return {**machine_facts(), "env": base.env, "impl_requested": base.impl,
            "impl": next(iter(tasks.values())).impl, "repeats": repeats,
            "config": base.to_dict(), "rows": rows, "cache_check": None, **more}


def run_benchmark(base, num_envs: list[int], ensemble_sizes: list[int], iters: int = 20,
                  repeats: int = 5, check_cache: bool = True, say=say_stderr,
                  bases: dict | None = None) -> dict:
    pairs = [(n, k) for n in num_envs for k in ensemble_sizes]
    rows, tasks = measure_configs(base, pairs, iters=iters, repeats=repeats, say=say,
                                  bases=bases)
    result = record(base, rows, tasks, repeats, iters=iters, num_envs=num_envs,
                    ensemble_sizes=ensemble_sizes)
    if check_cache:
        # two fresh processes per configuration are slow: check only the one that starts
        # slowest (the largest N and K, cikd if K > 1)
        n, k = max(num_envs), max(ensemble_sizes)
        config = loop_config((bases or {}).get(n, base), n, algos_for(k)[-1], k, iters)
        say(f"[bench] cache check: N={n} K={k} {config.algo}, two fresh processes")
        result["cache_check"] = first_step.cache_check(config)
    return result
