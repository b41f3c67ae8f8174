"""The cost of an evaluation before every phase (`--election_metric eval`, `--audit_election`),
against the training an interval holds.

Times, interleaved (`timing.time_interleaved`): one evaluation of every member (K x n episodes of
T steps, `trainer.evaluate`) and a chunk of the real loop without phases, in steady state
(updates running). The share of the run an evaluation per phase adds is
    t_eval / (t_eval + phase_period x t_iteration),
at the config's own interval (`Config.phase_period`); the distillation itself is not counted.

    python -m mjx_cikd.bench.election_cost --env CartpoleSwingup --num_envs 64 [--repeats 5]
"""

from __future__ import annotations

import json
import statistics
import sys

import jax

from mjx_cikd.bench import parts
from mjx_cikd.bench.benchmark import machine_facts
from mjx_cikd.bench.timing import Timed, per_round, time_interleaved
from mjx_cikd.config import ConfigError, config_from_args, replace
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host.compiled import seed_keys
from mjx_cikd.loop.trainer import make_train

LOOP_ITERS = 50  # iterations per timed chunk of the loop


def measure(config, repeats: int = 5) -> dict:
    task = envs.make_task(config)
    trainer = make_train(config, task)
    keys = seed_keys(config)
    state = jax.jit(jax.vmap(trainer.init))(keys)
    members, norm, start = state.members, state.norm, state.eval_start
    # as in the loop: under Warp from the fixed evaluation starts, under MJX-JAX from a reset
    evaluate = jax.jit(jax.vmap(trainer.evaluate))

    def one_evaluation(key, _):  # the returns stay in the carry: the timing waits for them
        return jax.vmap(jax.random.fold_in, in_axes=(0, None))(key, 1), evaluate(members, norm,
                                                                                 key, start)

    # the loop without phases, updating from its first step
    plain = replace(config, algo="ensemble", learning_starts=0, audit_election=False,
                    log_every=LOOP_ITERS * config.num_envs, eval_every=2**30,
                    checkpoint_every=0, compile_cache="")
    returns = evaluate(members, norm, keys, start)
    times = time_interleaved({"evaluation": Timed(one_evaluation, (keys, returns)),
                              "loop": parts.loop(plain, task)}, repeats)
    iteration = [t / LOOP_ITERS for t in times["loop"]]
    period = config.phase_period
    share = per_round(lambda e, i: e / (e + period * i), times["evaluation"], iteration)
    return {**machine_facts(), "env": config.env, "impl": task.impl, "num_envs": config.num_envs,
            "ensemble_size": config.ensemble_size, "eval_episodes": config.eval_episodes,
            "episode_length": task.episode_length, "num_seeds": config.num_seeds,
            "phase_period": period, "updates_per_step": config.updates_per_step,
            "evaluation_s": statistics.median(times["evaluation"]),
            "iteration_s": statistics.median(iteration), "eval_share_per_phase": share,
            "evaluation_round_s": times["evaluation"], "iteration_round_s": iteration}


def main(argv=None) -> int:
    try:
        config, args = config_from_args(argv, extra=lambda p: p.add_argument(
            "--repeats", type=int, default=5))
        envs.resolve_impl(config.env, config.impl)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(measure(config, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
