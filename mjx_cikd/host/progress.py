"""What a run shows while it trains (`--progress`): a tqdm bar redrawn in place (`bar`), one line
per log point (`plain`: batch logs such as SLURM's keep every carriage return a bar draws), or
nothing (`off`).

Both say the same things with the same labels: env steps summed over the seeds and their rate
(the `sps` of the `log` records, which also sums the seeds), each member's R_k and the newest
evaluation's best member, averaged over the seeds when there are several (then labelled
`mean of S seeds`), and the audited election's hit rate so far.
"""

from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from mjx_cikd.config import Config
from mjx_cikd.host import records


def _mean_over_seeds(values) -> np.ndarray:
    """Per member, the mean over the seeds that have a value (NaN where none has)."""
    arr = np.asarray(values, dtype=float)
    counts = np.sum(np.isfinite(arr), axis=0)
    sums = np.nansum(arr, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _short(x: float) -> str:
    """A return in few characters: whole numbers where they are large, 3 digits where small."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def summary(config: Config, log, rows: list[dict]) -> dict[str, str]:
    """The values a log point shows, by label: R_k per member, the newest evaluation's best
    member, the hit rate; over several seeds their means, and the labels say so."""
    label = "" if config.num_seeds == 1 else f" (mean of {config.num_seeds} seeds)"
    r = _mean_over_seeds(log.recent_return)
    out = {f"R{label}": "/".join("-" if np.isnan(x) else _short(x) for x in r)}
    best = records.final_evals(rows, config.num_seeds)["final_eval_best"]
    if any(b is not None for b in best):
        out[f"eval best{label}"] = _short(np.mean([b for b in best if b is not None]))
    hits = records.election_summary(rows)
    if hits["election_phases"]:
        out["election hit"] = f"{hits['election_hit_rate']:.0%}"
    return out


class Progress:
    """The progress of one run from vector step `start_iteration` (a resumed run's checkpoint)."""

    def __init__(self, config: Config, start_iteration: int, mode: str):
        self.config, self.mode = config, mode
        self.per_step = config.num_envs * config.num_seeds  # env steps of all seeds per step
        self.bar = None
        if mode == "bar":
            desc = "env steps" + (f" x {config.num_seeds} seeds" if config.num_seeds > 1 else "")
            self.bar = tqdm(total=max(config.total_iters, start_iteration) * self.per_step,
                            initial=start_iteration * self.per_step, desc=desc, unit="step",
                            unit_scale=True, dynamic_ncols=True, file=sys.stderr)

    def update(self, log, rows: list[dict], iteration: int, sps: float) -> None:
        """After the chunk that ended at vector step `iteration`, at `sps` env steps per second
        (all seeds)."""
        shown = summary(self.config, log, rows)
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(iteration * self.per_step - self.bar.n)
        elif self.mode == "plain":
            c = self.config
            done, total = iteration * c.num_envs, c.total_iters * c.num_envs
            seeds = f" per seed x {c.num_seeds} seeds" if c.num_seeds > 1 else ""
            parts = [f"env step {done:,}/{total:,}{seeds} ({done / total:.0%})",
                     f"{sps:,.0f} steps/s"] + [f"{k} {v}" for k, v in shown.items()]
            print("[mjx_cikd] " + ", ".join(parts), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
