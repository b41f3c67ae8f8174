"""The prepared GPU check (issue 29; `docs/gpu.md`): one command, at most 10 minutes on one H100,
that measures what the project most wants of an accelerator and writes it as JSON.

1. The training loop's env steps/s at N = 2048 and 8192, K = 1 (Vanilla-SAC) and K = 3
   (SAC-CIKD), each at the batch and U that follow N (`config/budget.py`): one compiled chunk of
   the real loop (`parts.loop`), timed in interleaved rounds (`timing.time_interleaved`).
2. The `parallel` profile's wall-clock to a best evaluation of 600 on CheetahRun: `train.py
   --profile parallel` in a process of its own for the time the first part left (SIGTERM at the
   end: the run checkpoints and stops), read from its `metrics.jsonl`; an evaluation every
   `--eval_every` env steps so that the time is known to about that resolution.

`--dry_run` runs both parts at tiny sizes (the tiny profile's task and networks, N = 8, a
target the first evaluation meets) so that a CPU test keeps the script from rotting.

    python scripts/gpu_figures.py --out docs/bench/gpu-CARD-figures.json [--budget_s 570]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import signal
import statistics
import subprocess
import sys
import time

from mjx_cikd.bench import parts
from mjx_cikd.bench.benchmark import loop_config, machine_facts, say_stderr
from mjx_cikd.bench.timing import time_interleaved
from mjx_cikd.config import config_from_args
from mjx_cikd.envs import tasks as envs

ROOT = pathlib.Path(__file__).resolve().parents[2]
FULL = dict(num_envs=(2048, 8192), sizes={1: "sac", 3: "cikd"}, iters=20, repeats=3,
            train=["--profile", "parallel", "--env", "CheetahRun", "--algo", "cikd"],
            eval_every=204_800, target=600.0)
DRY = dict(num_envs=(8,), sizes={1: "sac", 3: "cikd"}, iters=4, repeats=1,
           train=["--profile", "tiny", "--total_steps", "1024", "--algo", "cikd"],
           eval_every=256, target=-1e9)


def loop_rates(plan: dict, flags: list[str], say=say_stderr) -> list[dict]:
    """Part 1: env steps/s of one compiled chunk of the loop at each N and K."""
    rows = []
    for n in plan["num_envs"]:
        base, _ = config_from_args([*flags, "--num_envs", str(n)])
        for k, algo in plan["sizes"].items():
            config = loop_config(base, n, algo, k, plan["iters"])
            task = envs.make_task(config)
            say(f"[gpu] N={n} K={k} {algo}: B {config.batch_size}, U {config.updates_per_step}")
            timed = parts.loop(config, task)
            times = time_interleaved({"loop": timed}, plan["repeats"])["loop"]
            t = config.iters_per_chunk
            rows.append(dict(num_envs=n, ensemble_size=k, algo=algo, impl=task.impl,
                             batch_size=config.batch_size,
                             updates_per_step=config.updates_per_step,
                             compile_s=(timed.info or {}).get("compile_s"),
                             env_steps_per_s=t * n / statistics.median(times),
                             chunk_times_s=times))
    return rows


def time_to_target(plan: dict, run_dir: pathlib.Path, seconds: float, say=say_stderr) -> dict:
    """Part 2: a training run in its own process for at most `seconds`; the first evaluation
    whose best member reaches the target, its env steps and the run's wall_s there."""
    argv = [sys.executable, str(ROOT / "scripts" / "train.py"), *plan["train"],
            "--eval_every", str(plan["eval_every"]), "--run_dir", str(run_dir),
            "--progress", "plain"]
    say(f"[gpu] training for at most {seconds:.0f} s: {' '.join(argv[1:])}")
    start = time.monotonic()
    proc = subprocess.Popen(argv)
    try:
        proc.wait(timeout=max(seconds, 1.0))
        stopped = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the run checkpoints and stops (docs/survival.md)
        proc.wait(timeout=120)
        stopped = True
    metrics = run_dir / "metrics.jsonl"  # absent where the run was stopped before its first record
    records = [json.loads(line) for line in metrics.read_text().splitlines()
               if line.strip()] if metrics.is_file() else []
    evals = [r for r in records if r["event"] == "eval"]
    hit = next((r for r in evals if r["best"] >= plan["target"]), None)
    wall = None
    if hit is not None:
        wall = next((r["wall_s"] for r in records
                     if r["event"] == "log" and r["env_steps"] >= hit["env_steps"]), None)
    return dict(command=argv[1:], target=plan["target"], stopped_at_limit=stopped,
                process_s=time.monotonic() - start, returncode=proc.returncode,
                reached=hit is not None, env_steps_at_target=hit and hit["env_steps"],
                wall_s_at_target=wall, best_eval=max((r["best"] for r in evals), default=None),
                evaluations=[(r["env_steps"], r["best"]) for r in evals])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the JSON to write")
    parser.add_argument("--budget_s", type=float, default=570.0,
                        help="wall-clock for both parts together (the device's limit, less a "
                             "margin)")
    parser.add_argument("--dry_run", action="store_true", help="tiny sizes, for a CPU test")
    args = parser.parse_args(argv)
    plan = DRY if args.dry_run else FULL
    flags = ["--profile", "tiny"] if args.dry_run else ["--env", "CheetahRun"]
    start = time.monotonic()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {**machine_facts(), "dry_run": args.dry_run, "budget_s": args.budget_s,
              "loop": loop_rates(plan, flags)}
    out.write_text(json.dumps(result, indent=1) + "\n")  # part 1 stands if part 2 is cut
    left = args.budget_s - (time.monotonic() - start)
    run_dir = out.with_suffix("") / "run"
    result["to_target"] = time_to_target(plan, run_dir, left)
    result["total_s"] = time.monotonic() - start
    out.write_text(json.dumps(result, indent=1) + "\n")
    for row in result["loop"]:
        print(f"N={row['num_envs']:>5} K={row['ensemble_size']} {row['algo']:>5}: "
              f"{row['env_steps_per_s']:,.0f} env steps/s (B {row['batch_size']}, "
              f"U {row['updates_per_step']})")
    hit = result["to_target"]
    print(f"best evaluation >= {hit['target']:g}: " + (
        f"at {hit['env_steps_at_target']:,} env steps, {hit['wall_s_at_target']:.0f} s"
        if hit["reached"] else f"not reached (best {hit['best_eval']})"))
    return 0
