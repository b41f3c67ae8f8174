#!/usr/bin/env python
"""The prepared GPU check of docs/gpu.md: loop env steps/s at N = 2048 and 8192 (K = 1 and 3) and
the parallel profile's time to a best evaluation of 600 on CheetahRun, in at most 10 minutes on
one H100 (mjx_cikd/bench/gpu_figures.py). `--dry_run`: the same at tiny sizes, on any CPU.

    python scripts/gpu_figures.py --out docs/bench/gpu-h100-figures.json
"""

import sys

from mjx_cikd.bench.gpu_figures import main

if __name__ == "__main__":
    sys.exit(main())
