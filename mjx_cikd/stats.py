"""Statistics over seeds for plots and tables: the mean and a percentile-bootstrap confidence band.

The paper (section 5.1) plots the mean over 5 seeds with a bootstrapped confidence interval
(Efron's percentile bootstrap). `bootstrap_ci` resamples the seeds with replacement, takes the
mean of every resample, and reads the interval off the percentiles of those means, independently
at every point of the curve. With one seed there is nothing to resample: the band collapses to
the line.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np


class Band(NamedTuple):
    mean: np.ndarray  # the mean over seeds
    low: np.ndarray  # lower end of the confidence interval
    high: np.ndarray  # upper end


def bootstrap_ci(samples, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> Band:
    """Mean over axis 0 (the seeds) of `samples` [S, ...] and its percentile-bootstrap interval.

    NaN entries (a seed without a value at that point) are left out of the means. Deterministic
    for a given `seed`.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("bootstrap_ci needs at least one sample along axis 0")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, quietly
        mean = np.nanmean(x, axis=0)
        if x.shape[0] == 1:
            return Band(mean, mean.copy(), mean.copy())
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, x.shape[0], size=(n_resamples, x.shape[0]))
        means = np.nanmean(x[idx], axis=1)  # [R, ...]
        alpha = 100 * (1 - confidence) / 2
        low, high = np.nanpercentile(means, [alpha, 100 - alpha], axis=0)
    return Band(mean, low, high)


def first_reach(steps, curve, threshold: float):
    """The first of `steps` at which `curve` >= `threshold`, or None if it never does."""
    steps, curve = np.asarray(steps), np.asarray(curve, dtype=np.float64)
    hits = np.flatnonzero(np.nan_to_num(curve, nan=-np.inf) >= threshold)
    return None if hits.size == 0 else steps[hits[0]].item()
