"""Paired forks from a checkpoint of an Ensemble-SAC run: what one distillation phase gives a
student, and for how long (issue 30).

    python scripts/train.py --algo ensemble --env CartpoleSwingup --num_seeds 10 \
        --total_steps 400000 --checkpoint_every 200000 --keep_checkpoints 3 --run_dir runs/base
    python scripts/forks.py runs/base --step 200000 --out runs/forks-200k

Writes OUT/forks.jsonl (re-run to resume). The arms and what they differ by: mjx_cikd/cikd/forks.py.
"""

import argparse
import sys

from mjx_cikd.cikd import forks
from mjx_cikd.config import ConfigError
from mjx_cikd.host import fork_runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("run_dir", help="an Ensemble-SAC run directory with checkpoints")
    parser.add_argument("--step", type=int, help="the checkpoint's env step (default: newest)")
    parser.add_argument("--out", required=True, help="where forks.jsonl goes")
    parser.add_argument("--arms", help="comma-separated arms (default: all): "
                                       + ", ".join(f"{a.key} ({a.name})" for a in forks.ARMS))
    parser.add_argument("--episodes", type=int, default=100, help="audit episodes per member")
    parser.add_argument("--horizons", default=",".join(map(str, fork_runs.HORIZONS)),
                        help="SAC updates of each member after the fork at which to audit")
    args = parser.parse_args(argv)
    by_key = {a.key: a for a in forks.ARMS}
    keys = args.arms.split(",") if args.arms else list(by_key)
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        parser.error(f"unknown arms {unknown}; known: {', '.join(by_key)}")
    try:
        forker = fork_runs.Forker(fork_runs.load(args.run_dir, args.step, args.episodes),
                                  args.episodes)
        path = fork_runs.run(forker, args.out, tuple(by_key[k] for k in keys),
                             tuple(int(h) for h in args.horizons.split(",")))
    except ConfigError as err:
        sys.exit(f"error: {err}")
    print(path)


if __name__ == "__main__":
    main()
