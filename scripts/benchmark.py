#!/usr/bin/env python
"""Speed and memory of the loop and of its parts, JSON out, Markdown table (the measurements:
mjx_cikd/bench/benchmark.py; the flags and the report: mjx_cikd/bench/report.py).

    python scripts/benchmark.py --env CheetahRun --impl jax --num_envs 256,2048 \\
        --ensemble_sizes 1,3 --out bench.json

Every Config flag passes through (--batch_size, --updates_per_step, --profile tiny, ...);
--num_envs and --ensemble_sizes take comma lists; --repeats, --iters, --cache_check true|false;
--batch_axis true times only what a vmap axis of one costs a critic, --batch_axis loop one seed's
loop under jax.vmap against unbatched (mjx_cikd/bench/batch_axis.py).
"""

import sys

from mjx_cikd.bench.report import main

if __name__ == "__main__":
    sys.exit(main())
