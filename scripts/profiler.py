#!/usr/bin/env python
"""Profile a config: a few chunks of the real loop under `jax.profiler`, and the phase breakdown.

    python scripts/profiler.py --env CartpoleSwingup --num_envs 256 --chunks 3 --trace_dir prof/
    tensorboard --logdir prof/     # Profile tab (tensorboard-plugin-profile), or xprof prof/

The trace covers `--chunks` chunks after one warm-up chunk (so compilation is not in it). The
table that follows times the parts of the same config alone (simulation, updates, one
distillation phase) and the loop, as `scripts/benchmark.py` does, with `loop_efficiency`.
"""

import sys

import jax

from mjx_cikd.bench import benchmark, report
from mjx_cikd.config import ConfigError, config_from_args
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host.compiled import build, enable_compile_cache, seed_keys


def _flags(parser):
    parser.add_argument("--chunks", type=int, default=3, help="chunks inside the trace")
    parser.add_argument("--trace_dir", default="profiles_out", help="where the trace goes")
    parser.add_argument("--repeats", type=int, default=3, help="timings per part; median")


def main(argv=None) -> int:
    try:
        config, args = config_from_args(argv, extra=_flags, description=__doc__, train_flags=False)
        envs.resolve_impl(config.env, config.impl)
        if args.chunks < 1:
            raise ConfigError("--chunks must be >= 1")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    enable_compile_cache(config.compile_cache)
    compiled = build(config)
    state, sched = compiled.start(seed_keys(config)), compiled.trainer.schedule()
    state, sched, log = compiled.chunk(state, sched)  # warm-up, outside the trace
    jax.block_until_ready(log)
    with jax.profiler.trace(args.trace_dir):
        for i in range(args.chunks):
            with jax.profiler.TraceAnnotation(f"chunk{i}"):
                state, sched, log = compiled.chunk(state, sched)
                jax.block_until_ready(log)
    print(f"trace written to {args.trace_dir} (open with tensorboard --logdir or xprof)",
          file=sys.stderr)
    k, iters = config.ensemble_size, config.iters_per_chunk
    # measure_configs adds the ensemble row a cikd row's distill_share is measured against
    rows, tasks = benchmark.measure_configs(config, [(config.num_envs, k)],
                                            algos={k: (config.algo,)}, iters=iters,
                                            repeats=args.repeats)
    print(report.markdown(benchmark.record(config, rows, tasks, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
