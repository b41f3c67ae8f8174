#!/usr/bin/env python
"""Speed and memory of the loop and of its parts, JSON out, Markdown table (the measurements:
mjx_cikd/benchmark.py; the flags and the report: mjx_cikd/benchmark_report.py).

    python scripts/benchmark.py --env CheetahRun --impl jax --num_envs 256,2048 \\
        --ensemble_sizes 1,3 --out bench.json

Every Config flag passes through (--batch_size, --updates_per_step, --profile tiny, ...);
--num_envs and --ensemble_sizes take comma lists; --repeats, --iters, --cache_check true|false.
"""

import pathlib
import sys

# sys.path[0] is scripts/, where scripts/profile.py would shadow the standard library's `profile`
# (imported by warp through cProfile): replace it with the project root rather than prepend
sys.path[0] = str(pathlib.Path(__file__).resolve().parent.parent)

from mjx_cikd.benchmark_report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
