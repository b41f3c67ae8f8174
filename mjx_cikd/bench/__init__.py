"""Measuring the training loop's speed and the cost of its parts.

    benchmark   the rows: one config per (N, K, algo), every part timed at one chunk's size
    parts       the timed parts: simulation, updates, one distillation phase, acting, the loop
    timing      interleaved timing rounds on a noisy machine, ratios taken within each round
    first_step  time to the first step of a fresh process, cold and warm compilation cache
    report      the command line (scripts/benchmark.py), the JSON and the Markdown table

The core (`mjx_cikd.*` outside this folder) never imports this subpackage: it only calls the
core's public functions (`compiled.build`, `trainer.sac_steps`, `trainer.act`,
`distillation.make_phase`), so measuring can change without touching what is measured.
Measured figures live in docs/benchmarks.md, with the command and JSON of each.
"""
