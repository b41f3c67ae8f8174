"""What a larger SAC batch costs per sample: the measurement behind `config.budget.BATCH_CAP`.

Times, interleaved (`timing.time_interleaved`), `--count` SAC updates of all K members at each
batch size B of `--batches`, on a full buffer of random transitions (`parts.updates`, as the
trainer samples and normalises them), and reports seconds per update and per sampled transition.
Where the time per sample falls as B grows, the larger batch is the cheap axis (an accelerator);
where it stays flat, a batch of 16 x B costs 16 updates of B (this project's CPU).

    python -m mjx_cikd.bench.batch_cost --env CheetahRun --ensemble_size 1 \\
        --batches 512,2048,8192 [--count 8] [--repeats 3]
"""

from __future__ import annotations

import json
import statistics
import sys

from mjx_cikd.agent.ensemble import make_ensemble
from mjx_cikd.bench import parts
from mjx_cikd.bench.benchmark import machine_facts
from mjx_cikd.bench.timing import time_interleaved
from mjx_cikd.config import ConfigError, config_from_args, replace
from mjx_cikd.envs import tasks as envs


def measure(config, batches: list[int], count: int, repeats: int) -> dict:
    task = envs.make_task(config)
    ensemble = make_ensemble(config, task.obs_size, task.action_size, task.reward_bound)
    filled = parts.prefilled(config, task)
    timed = {b: parts.updates(replace(config, batch_size=b), ensemble, count, filled)
             for b in batches}
    times = time_interleaved(timed, repeats)
    rows = []
    for b in batches:
        update_s = statistics.median(times[b]) / count
        rows.append(dict(batch_size=b, update_s=update_s, sample_us=update_s / b * 1e6,
                         round_s=times[b]))
    base = rows[0]["update_s"]
    for row in rows:
        row["cost_in_first_batches"] = row["update_s"] / base
    return {**machine_facts(), "env": config.env, "ensemble_size": config.ensemble_size,
            "hidden_width": config.hidden_width, "critic_layer_norm": config.critic_layer_norm,
            "updates_timed": count, "rows": rows}


def main(argv=None) -> int:
    try:
        config, args = config_from_args(argv, extra=lambda p: (
            p.add_argument("--batches", default="512,2048,8192"),
            p.add_argument("--count", type=int, default=8),
            p.add_argument("--repeats", type=int, default=3)))
        batches = [int(b) for b in args.batches.split(",")]
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(measure(config, batches, args.count, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
