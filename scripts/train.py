#!/usr/bin/env python
"""Train an ensemble of SAC agents with CIKD (or a baseline) on an MJX task.

    python scripts/train.py                          # CheetahRun, SAC-CIKD, K=3, defaults
    python scripts/train.py --num_envs 2048 --profile parallel
    python scripts/train.py --algo sac --env CartpoleSwingup --total_steps 300000

Every field of mjx_cikd.config.Config is a flag; --profile NAME loads profiles/NAME.toml first.
`--resume RUN_DIR [--total_steps N]` continues a run from its last checkpoint.
"""

import sys

from mjx_cikd.config import ConfigError, config_from_args


def main(argv=None) -> int:
    try:
        config, args = config_from_args(argv)
        from mjx_cikd import envs

        envs.resolve_impl(config.env, config.impl)
        from mjx_cikd.run import train

        train(config, resume=bool(args.resume))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
