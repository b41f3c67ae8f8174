"""What a user sees of the benchmark (`benchmark`): its command line, the JSON it writes and the
Markdown table it prints (also printed by scripts/profiler.py).

    python scripts/benchmark.py --env CheetahRun --impl warp --num_envs 256,2048 \\
        --ensemble_sizes 1,3 --out bench.json

Every Config flag passes through (one parser: `config.config_from_args`); `--num_envs` and
`--ensemble_sizes` take comma lists; `--repeats`, `--iters`, `--cache_check true|false`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys

import numpy as np

from mjx_cikd.bench import batch_axis, benchmark
from mjx_cikd.config import ConfigError, coerce, config_from_args
from mjx_cikd.envs import tasks as envs


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "rate":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if kind == "s":
        return f"{value:.3g}"
    if kind == "ms":
        return f"{1000 * value:.3g}"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "x":
        return f"{value:.2f}"
    if kind == "mib":
        return f"{value / 2**20:,.1f}"
    return str(value)


TABLE = (("N", "num_envs", ""), ("K", "ensemble_size", ""), ("algo", "algo", ""),
         ("sim steps/s", "sim_env_steps_per_s", "rate"), ("updates/s", "updates_per_s", "rate"),
         ("update cost vs K=1", "update_cost_vs_k1", "x"),
         ("phase s", "distill_phase_s", "s"), ("act ms/iter", "act_iter_s", "ms"),
         ("loop steps/s", "loop_env_steps_per_s", "rate"),
         ("loop updates/s", "loop_updates_per_s", "rate"),
         ("steps/s vs sac", "env_steps_vs_sac", "x"),
         ("distill share", "distill_share", "pct"), ("efficiency", "loop_efficiency", "x"),
         ("rest", "loop_rest_share", "pct"),
         ("compile s", "compile_s", "s"), ("replay MiB", "replay_bytes", "mib"),
         ("peak MiB", "peak_device_bytes", "mib"))


def markdown(result: dict) -> str:
    first = result["rows"][0]
    chunks = {row["num_envs"]: row["chunk_iters"] for row in result["rows"]}
    head = (f"{result['env']} (impl={result['impl']}) on {result['device']}, jax {result['jax']}, "
            f"mujoco {result['mujoco']}, {result['date']}; {result['repeats']} interleaved "
            f"rounds (medians), U={first['updates_per_step']}, B={first['batch_size']}, "
            "iterations per chunk: " + ", ".join(f"{t} (N={n})" for n, t in chunks.items()))
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
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{flag}: cannot read {text!r} as a comma list of integers")
    if not values or min(values) < 1:
        raise ConfigError(f"--{flag} must list integers >= 1, got {text!r}")
    return values


def pop_flag(argv: list[str], name: str) -> tuple[list[str], str | None]:
    """Remove `--name V` / `--name=V` from argv (last one wins); -> (rest, V or None)."""
    rest, value, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == f"--{name}":
            if i + 1 >= len(argv):
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
    group.add_argument("--repeats", type=int, default=5,
                       help="interleaved timing rounds; medians and per-round ratios")
    group.add_argument("--iters", type=int, default=20,
                       help="iterations per timed chunk (rounded up to whole distillation "
                            "periods); the simulation and updates alone time one chunk's worth")
    group.add_argument("--out", default="bench.json", help="JSON output")
    group.add_argument("--cache_check", default="true",
                       help="time to first step with a cold and a warm compilation cache")
    group.add_argument("--batch_axis", default="false", choices=("false", "true", "loop"),
                       help="true: only what a vmap axis of size one costs a LayerNorm critic's "
                            "gradient; loop: one seed's loop (the run's config) under jax.vmap "
                            "against unbatched (mjx_cikd/bench/batch_axis.py)")


def parse(argv: list[str] | None):
    """-> (base Config, num_envs list, bench args, the config at each N). `--num_envs` takes a
    comma list here; the first value is handed to the base Config, and every N gets the config
    the same flags give at that N (its batch and U follow N unless given: `config/budget.py`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, num_envs_text = pop_flag(argv, "num_envs")
    num_envs = _int_list(num_envs_text, "num_envs") if num_envs_text is not None else None
    at = (lambda n: argv + ["--num_envs", str(n)]) if num_envs else (lambda n: argv)
    base, args = config_from_args(at(num_envs[0] if num_envs else 0), extra=_bench_flags)
    if num_envs is None:
        num_envs = [base.num_envs]
    args.bases = {n: config_from_args(at(n), extra=_bench_flags)[0] for n in num_envs}
    args.ensemble_sizes = _int_list(args.ensemble_sizes, "ensemble_sizes")
    args.cache_check = coerce("cache_check", args.cache_check, bool)
    if args.repeats < 1 or args.iters < 1:
        raise ConfigError("--repeats and --iters must be >= 1")
    return base, num_envs, args


def main(argv: list[str] | None = None) -> int:
    try:
        base, num_envs, args = parse(argv)
        envs.resolve_impl(base.env, base.impl)
        for n in num_envs:  # every configuration is valid before anything is compiled
            for k in args.ensemble_sizes:
                for algo in benchmark.algos_for(k):
                    benchmark.loop_config(args.bases[n], n, algo, k, args.iters)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.batch_axis == "true":
        result = batch_axis.measure(repeats=args.repeats)
    elif args.batch_axis == "loop":
        result = batch_axis.measure_loop(base, args.iters, args.repeats)
    else:
        result = benchmark.run_benchmark(base, num_envs, args.ensemble_sizes, iters=args.iters,
                                         repeats=args.repeats, check_cache=args.cache_check,
                                         bases=args.bases)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    show = {"true": batch_axis.markdown, "loop": batch_axis.loop_markdown}.get(args.batch_axis,
                                                                           markdown)
    print(show(result), flush=True)
    if args.out:
        print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)
