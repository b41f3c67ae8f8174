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
  - `run`: at the start (`phase: start`, env_steps 0) and at each resume (`phase: resume`, the
    checkpoint's env step): device, versions, compile time; once at the end (a resume drops an
    earlier end): totals, `wall_s` over all the run's processes, every seed's last evaluation
    (`final_eval_best`, `final_eval_worst`, `final_eval_mean`, `final_eval_env_steps`: lists
    over the seeds) and the audited election's hit rate and mean regret over all seeds and the
    whole run.
  - `fault`: a loss, parameter or return turned non-finite: the env step, seed, member and
    quantity; `rollback`: the checkpoint a run went back to after one, and the seeds given fresh
    keys; `interrupted`: a run stopped by a signal, at which checkpoint.
NaN (a member with no finished episode) is written as null.

A directory that already holds a run is never written into by accident: `claim` refuses it
unless the run is resumed or `--overwrite` says to replace it (then its files are removed first),
and refuses it while another live process holds it (an OS lock on the directory, `RunLock`, held
for the run's life: a requeued job started twice cannot interleave two runs' records).

A resumed or rolled-back run `rewind`s the file to the restored checkpoint's step before it writes
again, so that `metrics.jsonl` reads as an uninterrupted run's: each (event, seed, env_steps) once,
`wall_s` continuing from the last kept record. A write the disk refuses (ENOSPC) is one line.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import pathlib
import shutil
import tempfile
import time
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter

from mjx_cikd.config import Config, ConfigError, from_dict

# what a run writes into its directory (experiments adds variant.json, which is not the run's)
RUN_FILES = ("config.json", "run.json", "metrics.jsonl", "tb", "checkpoints", "best",
             "wandb.json", "wandb")


def held(run_dir: str | pathlib.Path) -> list[str]:
    """The files of a run that `run_dir` already holds."""
    return [name for name in RUN_FILES if (pathlib.Path(run_dir) / name).exists()]


def clear(run_dir: str | pathlib.Path) -> None:
    """Remove a run's files from `run_dir` (and nothing else)."""
    for name in held(run_dir):
        target = pathlib.Path(run_dir) / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


class RunLock:
    """An exclusive `flock` on the run directory itself (nothing is written for it), held from
    `claim` until `release`; the OS drops it when the process dies, even by SIGKILL."""

    def __init__(self, run_dir: pathlib.Path, created: bool):
        self.dir, self.created = run_dir, created
        self._fd = os.open(run_dir, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(self._fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise ConfigError(f"{run_dir} is in use by a live run (another process holds its "
                              f"lock): wait for it to end or stop it, or choose another "
                              f"--run_dir") from None

    def release(self) -> None:
        """Unlock; a directory this claim made and nothing was written into is removed again
        (bad input found after the claim leaves the disk as it was)."""
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        if self.created and not any(self.dir.iterdir()):
            self.dir.rmdir()


def claim(run_dir: str | pathlib.Path, resume: bool, overwrite: bool) -> RunLock:
    """Check, before anything is written, that this run may write into `run_dir`: no live run
    holds it, a directory holding another run needs `resume` or `overwrite` (which clears it),
    and it must be writable. Returns the lock, to be released when the run ends. A ConfigError
    names the way out."""
    run_dir = pathlib.Path(run_dir)
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it: give one")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(run_dir, created)
    except OSError as err:
        raise ConfigError(f"cannot write the run directory {run_dir}: "
                          f"{err.strerror or err}") from None
    try:
        files = held(run_dir)
        if files and not (resume or overwrite):
            raise ConfigError(f"{run_dir} already holds a run ({', '.join(files)}): continue it "
                              f"with --resume {run_dir}, replace it with --overwrite, or choose "
                              f"another --run_dir")
        try:
            tempfile.TemporaryFile(dir=run_dir).close()
        except OSError as err:
            raise ConfigError(f"cannot write the run directory {run_dir}: "
                              f"{err.strerror or err}") from None
        if overwrite:
            clear(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock


def _json_ready(value: Any) -> Any:
    """A record as JSON holds it: arrays as lists, floats to 6 digits, NaN and inf as null."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _disk_error(path: pathlib.Path, err: OSError) -> ConfigError:
    return ConfigError(f"cannot write {path}: {err.strerror or err}; the run stopped (its "
                       f"checkpoints are kept): free space, then continue it with --resume "
                       f"{path.parent}")


# records kept through a rollback's rewind: what happened, not the stretch that is run again
HISTORY = ("fault", "rollback")


class RunLogger:
    """The run directory's writer. `resume_step` (a resumed run's checkpoint) rewinds the records
    first; `sink` (W&B, `tracking`) receives every record too. `rows` are the eval and distill
    records the file holds (the end record's summaries read them)."""

    def __init__(self, run_dir: str | pathlib.Path, config_dict: dict, tensorboard: bool = True,
                 facts: dict | None = None, resume_step: int | None = None, sink=None):
        self.dir = pathlib.Path(run_dir)
        self.path = self.dir / "metrics.jsonl"
        self.wall_offset, self.rows, self.sink = 0.0, [], sink
        self._file, self._tb = None, None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
            if facts is not None:  # what the run resolved the config to, and where it ran
                (self.dir / "run.json").write_text(json.dumps(_json_ready(facts), indent=2) + "\n")
            if resume_step is not None:  # 0: a resume without a checkpoint starts afresh
                self.wall_offset = self.rewind(resume_step or -1, keep=())
            else:
                self._file = open(self.path, "a", buffering=1)
            if tensorboard:  # a resumed run's events past its checkpoint are hidden (purge_step)
                self._tb = SummaryWriter(str(self.dir / "tb"), purge_step=None if resume_step
                                         is None else resume_step + 1)
        except OSError as err:
            raise _disk_error(self.path, err) from None
        self.start = time.perf_counter()

    def rewind(self, step: int, keep: tuple[str, ...] = HISTORY) -> float:
        """Drop the records past env step `step` (but the `keep` events) and every `run` end, so
        that the steps run again are written once. Returns the kept records' last `wall_s`, from
        which a resumed run's clock goes on."""
        rows = []
        if self.path.is_file():
            rows = [json.loads(line) for line in self.path.read_text().splitlines()
                    if line.strip()]
        rows = [r for r in rows if not (r.get("event") == "run" and r.get("phase") == "end")
                and (r.get("event") in keep or (r.get("env_steps") or 0) <= step)]
        self.rows = [r for r in rows if r.get("event") in ("eval", "distill")]
        if self._file is not None:
            self._file.close()
        tmp = self.path.with_suffix(".jsonl.tmp")  # replaced whole: a kill leaves one or other
        try:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
            os.replace(tmp, self.path)
            self._file = open(self.path, "a", buffering=1)
        except OSError as err:
            raise _disk_error(self.path, err) from None
        return max([r["wall_s"] for r in rows if r.get("wall_s") is not None], default=0.0)

    def write(self, record: dict) -> None:
        record = _json_ready(record)
        try:
            self._file.write(json.dumps(record) + "\n")
        except OSError as err:
            raise _disk_error(self.path, err) from None
        if record.get("event") in ("eval", "distill"):
            self.rows.append(record)
        if self.sink is not None:
            self.sink.log(record)

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        if self._tb is None:
            return
        for name, value in values.items():
            arr = np.asarray(value, dtype=float).reshape(-1)
            for i, v in enumerate(arr):
                if np.isfinite(v):
                    tag = f"{prefix}/{name}" if arr.size == 1 else f"{prefix}/{name}/{i}"
                    self._tb.add_scalar(tag, float(v), step)

    def flush(self) -> None:
        """Push this log point's records and events to disk: a full disk is found here, on the
        host's thread (TensorBoard's writer thread would die of it silently)."""
        for part, path in ((self._file, self.path), (self._tb, self.dir / "tb")):
            try:
                if part is not None:
                    part.flush()
            except OSError as err:
                raise _disk_error(path, err) from None

    def close(self, summary: dict | None = None) -> None:
        """Close the files (errors past a failed write are not raised again) and the sink."""
        for part in (self._file, self._tb):
            try:
                if part is not None:
                    part.close()
            except OSError:
                pass
        if self.sink is not None:
            self.sink.finish(summary, self.rows)


class NullLogger:
    """The logger of a run's other processes (only process 0 writes the run directory)."""

    wall_offset, rows = 0.0, []

    def write(self, record: dict) -> None:
        pass

    def rewind(self, step: int, keep: tuple[str, ...] = HISTORY) -> float:
        return 0.0

    def flush(self) -> None:
        pass

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        pass

    def close(self, summary: dict | None = None) -> None:
        pass


def read_config(run_dir: str | pathlib.Path) -> Config:
    """The config a run directory's `config.json` holds, or a ConfigError saying why not."""
    path = pathlib.Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (it has no config.json)")
    try:
        return from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None


def read_metrics(run_dir: str | pathlib.Path, event: str | None = None) -> list[dict]:
    path = pathlib.Path(run_dir) / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if event is None or r.get("event") == event]
