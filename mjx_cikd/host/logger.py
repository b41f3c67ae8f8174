"""The run directory: `config.json`, `run.json`, `metrics.jsonl` and TensorBoard events.

`run.json` says what the config resolved to and where it ran: the MJX implementation, the
episode length, the device and the libraries' versions (`run.run_facts`).
`metrics.jsonl` holds one JSON object per line, each with an `event`:
  - `log`: per seed and log point: env_steps, wall_s, sps, R (R_k per member), episodes, and the
    chunk's mean critic_loss, actor_loss, alpha, entropy, q per member;
  - `eval`: per seed and evaluation: every member's mean deterministic return, best/worst/mean;
  - `distill`: per seed and phase point: the election's metric and rule, the statistic it ranked
    (`statistic`, also as `R`), every cheap statistic (`train_returns`, `reward_rate`) and the
    age of the train_returns episodes in phase points (`staleness`), the teacher (-1: none
    eligible), whether the students moved (`ran`), the steps taken, the policy KL and critic gap
    per member before and after; with `--audit_election`, each member's true deterministic
    return before the phase (`audit`), `hit` (the teacher is the audited best) and `regret`
    (audited best minus the teacher's);
  - `run`: once, at the start and end: device, versions, compile time, totals; at the end the
    audited election's hit rate and mean regret over all seeds.
  - `fault`: a loss, parameter or return turned non-finite: the env step, seed, member and
    quantity; `rollback`: the checkpoint a run went back to after one, and the seeds given fresh
    keys; `interrupted`: a run stopped by a signal, at which checkpoint.
NaN (a member with no finished episode) is written as null.

A directory that already holds a run is never written into by accident: `claim` refuses it
unless the run is resumed or `--overwrite` says to replace it (then its files are removed first).
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import tempfile
import time
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter

from mjx_cikd.config import ConfigError

# what a run writes into its directory (experiments adds variant.json, which is not the run's)
RUN_FILES = ("config.json", "run.json", "metrics.jsonl", "tb", "checkpoints")


def held(run_dir: str | pathlib.Path) -> list[str]:
    """The files of a run that `run_dir` already holds."""
    return [name for name in RUN_FILES if (pathlib.Path(run_dir) / name).exists()]


def clear(run_dir: str | pathlib.Path) -> None:
    """Remove a run's files from `run_dir` (and nothing else)."""
    for name in held(run_dir):
        target = pathlib.Path(run_dir) / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def claim(run_dir: str | pathlib.Path, resume: bool, overwrite: bool) -> None:
    """Check, before anything is written, that this run may write into `run_dir`: a directory
    holding another run needs `resume` or `overwrite` (which clears it), and it must be
    writable. A ConfigError names the way out."""
    run_dir = pathlib.Path(run_dir)
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it: give one")
    files = held(run_dir)
    if files and not (resume or overwrite):
        raise ConfigError(f"{run_dir} already holds a run ({', '.join(files)}): continue it with "
                          f"--resume {run_dir}, replace it with --overwrite, or choose another "
                          f"--run_dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=run_dir).close()
    except OSError as err:
        raise ConfigError(f"cannot write the run directory {run_dir}: "
                          f"{err.strerror or err}") from None
    if overwrite:
        clear(run_dir)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class RunLogger:
    def __init__(self, run_dir: str | pathlib.Path, config_dict: dict, tensorboard: bool = True,
                 facts: dict | None = None):
        self.dir = pathlib.Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
        if facts is not None:  # what the run resolved the config to, and where it ran
            (self.dir / "run.json").write_text(json.dumps(_clean(facts), indent=2) + "\n")
        self._file = open(self.dir / "metrics.jsonl", "a", buffering=1)
        self._tb = None
        if tensorboard:
            self._tb = SummaryWriter(str(self.dir / "tb"))
        self.start = time.perf_counter()

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(_clean(record)) + "\n")

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        if self._tb is None:
            return
        for name, value in values.items():
            arr = np.asarray(value, dtype=float).reshape(-1)
            for i, v in enumerate(arr):
                if np.isfinite(v):
                    tag = f"{prefix}/{name}" if arr.size == 1 else f"{prefix}/{name}/{i}"
                    self._tb.add_scalar(tag, float(v), step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


class NullLogger:
    """The logger of a run's other processes (only process 0 writes the run directory)."""

    def write(self, record: dict) -> None:
        pass

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def read_metrics(run_dir: str | pathlib.Path, event: str | None = None) -> list[dict]:
    path = pathlib.Path(run_dir) / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if event is None or r.get("event") == event]
