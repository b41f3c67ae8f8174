#!/usr/bin/env python
"""Train an ensemble of SAC agents with CIKD (or a baseline) on an MJX task.

    python scripts/train.py                          # CheetahRun, SAC-CIKD, K=3, defaults
    python scripts/train.py --num_envs 2048 --profile parallel
    python scripts/train.py --algo sac --env CartpoleSwingup --total_steps 300000

Every field of mjx_cikd.config.Config is a flag (--help: what each means, its unit, allowed
values and default); --profile NAME loads profiles/NAME.toml first and flags override it.
`--resume RUN_DIR [--total_steps N]` continues a run from its newest checkpoint; `--overwrite`
replaces the run a --run_dir already holds. `--devices D` runs over D devices, and
`--coordinator HOST:PORT --num_processes P --process_id I` over P processes (docs/parallel.md).
Ctrl-C (or SIGTERM) stops after the current chunk with a checkpoint and prints the command that
resumes. A budget that trains nothing is refused; one that will run no phase, or spend most of
its time evaluating, is warned about (docs/survival.md). Exit codes: 0 done, 1 a numeric fault or
a failed save, 2 bad input, 128 + N stopped by signal N.
"""

import sys

from mjx_cikd.config import ConfigError, check_budget, config_from_args


def main(argv=None) -> int:
    try:
        config, args = config_from_args(argv, description=__doc__)
        check_budget(config)
        from mjx_cikd.envs import tasks as envs
        from mjx_cikd.loop import parallel

        if args.coordinator:  # before anything asks JAX for its devices
            parallel.join(args.coordinator, args.num_processes, args.process_id)

        envs.resolve_impl(config.env, config.impl)
        from mjx_cikd.host.run import Stopped, train

        try:
            train(config, resume=bool(args.resume), overwrite=args.overwrite)
        except Stopped as stop:
            print(f"\n[mjx_cikd] {stop}", file=sys.stderr)
            return stop.code
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the loop began: nothing to keep
        print("\n[mjx_cikd] interrupted before training began; nothing was trained",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
