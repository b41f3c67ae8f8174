"""Timing jitted calls against each other on a noisy machine (used by `benchmark`).

A measurement is a `Timed`: a call `fn(*carry) -> carry` chained from call to call. All of them
are warmed up first, then timed in rounds, each round calling every measurement once, so that
the machine's slow drift (other tenants, clocks) lands on the measurements of a round alike.
Ratios are taken within each round (`per_round`) and their median is reported, because the same
computation timed in two separate blocks can move by as much as the differences being measured
(docs/benchmarks.md, "How it is timed").
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, NamedTuple

import jax

MIN_TIMING_S = 0.2  # a timing shorter than this averages several back-to-back calls


class Timed(NamedTuple):
    """One measurement: `fn(*carry) -> carry`, chained from call to call (so donated inputs stay
    valid), and what is known of it besides its times (`info`: compile time, bytes, ...)."""

    fn: Callable
    carry: tuple
    info: dict | None = None


def time_interleaved(timed: dict, repeats: int, min_time: float = MIN_TIMING_S) -> dict:
    """Seconds per call of each `Timed` in `timed`, over `repeats` rounds -> {name: [s, ...]}.

    Each is called once to warm up (compile) and once more to size its timing: a call shorter
    than `min_time` (tiny configs, where timer and scheduler noise would dominate) is timed as
    the mean of enough back-to-back calls to fill it. Then each round times every measurement
    once, blocked until ready, in an order rotated from round to round, so that the k-th entry of
    every list was taken under the same conditions."""
    carries, calls = {}, {}
    for name, t in timed.items():
        carry = jax.block_until_ready(t.fn(*t.carry))
        start = time.perf_counter()
        carries[name] = jax.block_until_ready(t.fn(*carry))
        first = time.perf_counter() - start
        calls[name] = max(1, math.ceil(min_time / max(first, 1e-9))) if first < min_time else 1
    names, times = list(timed), {name: [] for name in timed}
    for r in range(max(1, repeats)):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, carry = timed[name].fn, carries[name]
            start = time.perf_counter()
            for _ in range(calls[name]):
                carry = fn(*carry)
            carries[name] = jax.block_until_ready(carry)
            times[name].append((time.perf_counter() - start) / calls[name])
    return times


def per_round(fn, *series: list[float]) -> float:
    """Median over rounds of `fn(a_r, b_r, ...)`: a ratio taken within each round."""
    return statistics.median(fn(*values) for values in zip(*series))
