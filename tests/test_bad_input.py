"""Bad input: every case in docs/survival.md's table gets its one line, and nothing on disk changes.

Each case runs `scripts/train.py`'s `main` in-process from a scratch directory that holds a
finished tiny run (`done`, with checkpoints) and another run's checkpoints (`other`), and
compares every file's size, time and bytes before and after."""

import errno
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import pytest
from conftest import script, tiny

from mjx_cikd.config import ConfigError
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host import checkpoint, resources
from mjx_cikd.host import run as run_module
from mjx_cikd.host import run_dir as run_dir_module
from mjx_cikd.host.run import train

RUN = dict(algo="cikd", ensemble_size=3, num_envs=8, log_every=64, checkpoint_every=64,
           total_steps=128)
TINY = ["--profile", "tiny", "--env", "ProbeTarget", "--episode_length", "0", "--progress",
        "false", "--tensorboard", "false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run and a foreign one (another gamma), each with two checkpoints."""
    root = tmp_path_factory.mktemp("runs")
    cache = str(root / "xla")
    train(tiny(compile_cache=cache, **RUN), root / "done", quiet=True)
    train(tiny(compile_cache=cache, gamma=0.9, **RUN), root / "other", quiet=True)
    return root, cache


def _snapshot(root: pathlib.Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file() and "xla" not in p.parts}


def _largest_array_file(run_dir: pathlib.Path) -> pathlib.Path:
    step = run_dir / "checkpoints" / str(checkpoint.latest(run_dir))
    return max((p for p in step.rglob("d/*") if p.is_file()), key=lambda p: p.stat().st_size)


def _corrupt(run_dir, other):
    f = _largest_array_file(run_dir)
    f.write_bytes(os.urandom(f.stat().st_size))


def _truncate(run_dir, other):
    f = _largest_array_file(run_dir)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])


def _foreign(run_dir, other):
    shutil.rmtree(run_dir / "checkpoints")
    shutil.copytree(other / "checkpoints", run_dir / "checkpoints")


def _no_warp(monkeypatch):
    monkeypatch.setattr(envs, "warp_available", lambda: False)


HOLDER = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
          "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()")
LIVE = []  # the processes holding a run directory as a live run does, ended after the case


def _live(run_dir, other):
    """Another process holds the run directory's lock (as a live run's `claim` does)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    LIVE.append(holder)




CASES = {  # name: (argv after TINY (RUN_DIR: a copy of `done`), the line's gist, setup)
    "unknown task": (["--env", "CheetaRun"], "unknown task 'CheetaRun'; did you mean CheetahRun?",
                     None),
    "unknown flag": (["--num_env", "3"], "unrecognized arguments: --num_env 3 (did you mean "
                     "--num_envs?)", None),
    "malformed profile": (["--profile", "BAD_TOML"], "not valid TOML: Invalid value (at line 2, "
                          "column 16)", None),
    "value out of range": (["--num_envs", "0"], "--num_envs must be >= 1, got 0", None),
    "inconsistent sizes": (["--widths", "64,32", "--ensemble_size", "3"],
                           "--widths lists 2 members but --ensemble_size is 3", None),
    "layers beside widths": (["--widths", "64,32", "--critic_layers", "64,64"],
                             "use one or the other", None),
    "existing run directory": (["--run_dir", "RUN_DIR"], "already holds a run", None),
    "corrupt checkpoint": (["--resume", "RUN_DIR"], "cannot read the checkpoint", _corrupt),
    "truncated checkpoint": (["--resume", "RUN_DIR"], "cannot read the checkpoint", _truncate),
    "foreign checkpoint": (["--resume", "RUN_DIR"], "is not this run's checkpoint: its config "
                           "differs in gamma", _foreign),
    "--impl warp without MuJoCo Warp": (["--env", "CheetahRun", "--impl", "warp"],
                                        "--impl warp needs MuJoCo Warp", "no_warp"),
    "replay buffer beyond memory": (["--buffer_size", str(10**12)], "replay buffer needs", None),
    "read-only run directory": (["--run_dir", "READ_ONLY"], "cannot write the run directory",
                                None),
    "Menagerie task": (["--env", "Go1JoystickFlatTerrain"], "Menagerie tasks", None),
    "budget below learning_starts": (["--total_steps", "32"], "--total_steps 32 ends before "
                                     "--learning_starts 64: no member would ever be updated",
                                     None),
    "a list spelled as tyro's": (["--widths", "64", "32"], "--widths takes one comma-separated "
                                 "list: --widths 64,32 (not --widths 64 32)", None),
    "a flag spelled as tyro's": (["--num-envs", "8"], "unrecognized arguments: --num-envs 8 "
                                 "(did you mean --num_envs?)", None),
    "a negated bool as tyro's": (["--no-normalize-obs"], "unrecognized arguments: "
                                 "--no-normalize-obs (did you mean --normalize_obs false?)", None),
    "run directory of a live run": (["--resume", "RUN_DIR"], "is in use by a live run", _live),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_line_and_writes_nothing(case, runs, tmp_path, monkeypatch, capsys):
    root, cache = runs
    argv, gist, setup = CASES[case]
    run_dir = tmp_path / "run"
    shutil.copytree(root / "done", run_dir)
    if callable(setup):
        setup(run_dir, root / "other")
    elif setup == "no_warp":
        _no_warp(monkeypatch)
    (tmp_path / "bad.toml").write_text("num_envs = 4\nhidden_width = = 3\n")
    read_only = tmp_path / "locked"
    read_only.mkdir()
    read_only.chmod(0o500)
    if os.geteuid() == 0:  # root writes through permission bits: a filesystem nobody writes
        read_only = pathlib.Path("/sys/mjx_cikd_run")
    monkeypatch.chdir(tmp_path)  # a default run directory would land here
    words = {"RUN_DIR": str(run_dir), "BAD_TOML": str(tmp_path / "bad.toml"),
             "READ_ONLY": str(read_only / "run")}
    argv = [words.get(a, a) for a in argv]
    if argv[0] == "--resume":
        argv = argv + ["--compile_cache", cache]
    else:
        argv = TINY + ["--compile_cache", cache] + argv
    before = _snapshot(tmp_path)
    try:
        assert script("train").main(argv) == 2
    finally:
        while LIVE:
            LIVE.pop().communicate("", timeout=60)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and gist in err, err
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "locked", "run"]


class _Started(Exception):
    """Raised where a run would begin writing its records: its warnings are out by then."""


WARNINGS = {  # name: (the run, its one warning line); ProbeTarget's T is 10
    "budget without a phase": (dict(total_steps=96), "--total_steps 96 ends before "
                               "--distill_warmup 128: no phase will run, so this --algo cikd run "
                               "trains its members without distillation"),
    "evaluation most of the run": (dict(eval_every=8), "evaluation would take about 77% of the "
                                   "run: one evaluation (T = 10 steps) every 1 vector step(s) of "
                                   "--num_envs 8; raise --eval_every (env steps)"),
    "replay ratio far below the shipped one": (dict(batch_size=8, updates_per_step=1), "replay "
                                               "ratio 1 samples per env step (U 1 x B 8 / N 8), "
                                               "under 1/4 of the shipped 32: the members get few "
                                               "updates for their data; leave --batch_size and "
                                               "--updates_per_step out to keep the ratio "
                                               "(docs/results.md, issue 29)"),
}


@pytest.mark.parametrize("case", list(WARNINGS))
def test_a_run_still_useful_gets_one_warning_line_before_it_starts(case, tmp_path, monkeypatch,
                                                                   capsys):
    from mjx_cikd.host import run

    values, gist = WARNINGS[case]

    def started(*args, **kwargs):
        raise _Started

    monkeypatch.setattr(run, "RunLogger", started)
    with pytest.raises(_Started):
        run.train(tiny(**values), tmp_path / "run")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [f"[mjx_cikd] warning: {gist}"]


def test_a_full_disk_during_a_save_keeps_the_last_complete_checkpoint(runs, tmp_path,
                                                                      monkeypatch, capsys):
    """A save that fails (ENOSPC, simulated at the second save): one line, exit code 1, and the
    first checkpoint still complete and the newest."""
    import orbax.checkpoint as ocp

    root, cache = runs
    original, saves = ocp.CheckpointManager.save, []

    def full(self, step, *a, **k):
        if self.directory.name == "best":  # the best evaluation's saves are not counted
            return original(self, step, *a, **k)
        saves.append(step)
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, step, *a, **k)

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    run_dir = tmp_path / "run"
    assert script("train").main(TINY + ["--compile_cache", cache, "--run_dir", str(run_dir)] + [
        f"--{k}={v}" for k, v in RUN.items()]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "cannot write checkpoint 128" in err and "No space left on device" in err
    assert "the newest complete one is step 64" in err
    assert checkpoint.latest(run_dir) == 64


@pytest.mark.parametrize("part", ["metrics.jsonl", "tb"])
def test_a_full_disk_while_logging_stops_with_one_line_and_keeps_the_checkpoints(
        part, runs, tmp_path, monkeypatch, capsys):
    """The disk fills after the first log point: metrics.jsonl's writes meet a real ENOSPC
    (the file swapped for /dev/full); TensorBoard's (whose writer thread would die of it
    silently) are simulated at the flush the host calls each log point. One line, exit code 2,
    the checkpoint before it kept."""
    from tensorboardX import SummaryWriter

    _, cache = runs
    original = run_dir_module.RunLogger.write

    def write(self, record):
        if record.get("event") == "log" and record["env_steps"] == 128 and part == "metrics.jsonl":
            self._file = open("/dev/full", "a", buffering=1)  # noqa: SIM115 (closed by close)
        original(self, record)

    flushes = []

    def flush(self):  # the second log point's
        flushes.append(self)
        if len(flushes) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_dir_module.RunLogger, "write", write)
    if part == "tb":
        monkeypatch.setattr(SummaryWriter, "flush", flush)
    run_dir = tmp_path / "run"
    flags = TINY + ["--compile_cache", cache, "--run_dir", str(run_dir), "--tensorboard",
                    str(part == "tb")] + [f"--{k}={v}" for k, v in RUN.items()]
    assert script("train").main(flags) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last == (f"error: cannot write {run_dir / part}: No space left on device; the run "
                    f"stopped (its checkpoints are kept): free space, then continue it with "
                    f"--resume {run_dir}")
    assert checkpoint.latest(run_dir) == 64
    assert [r["env_steps"] for r in run_dir_module.read_metrics(run_dir, "log")] == (
        [64] if part == "metrics.jsonl" else [64, 128])


def test_exhausted_accelerator_memory_is_one_line_with_the_fix_and_writes_nothing(
        runs, tmp_path, monkeypatch, capsys):
    """XLA's error when the device's memory is taken (another process's preallocation, or a run
    too large), simulated where the run compiles and allocates (a CPU has no such limit): the
    run's first lines, then one error line that names the fix; the run directory this run made
    is gone again, and the one it resumed is as it was."""
    root, cache = runs

    def exhausted(*a, **k):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                         "allocate 17179869184 bytes.")

    monkeypatch.setattr(run_module, "build", exhausted)
    shutil.copytree(root / "done", tmp_path / "done")
    before = _snapshot(tmp_path)
    for argv in (TINY + ["--compile_cache", cache, "--run_dir", str(tmp_path / "new")],
                 ["--resume", str(tmp_path / "done")]):
        assert script("train").main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1] == (
            "error: the accelerator ran out of memory (RESOURCE_EXHAUSTED: Out of memory while "
            "trying to allocate 17179869184 bytes.) at --num_envs 8, --num_seeds 1, "
            "--buffer_size 2048: " + resources.HINT)
        assert _snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["done"]


def test_a_checkpoint_from_before_a_new_field_resumes_when_the_run_leaves_it_at_its_default(
        runs, tmp_path):
    """A field added since the checkpoint was written reads as its default there (a new field
    defaults to the behaviour before it); one the run sets otherwise is still refused."""
    root, _ = runs
    run_dir = tmp_path / "done"
    shutil.copytree(root / "done", run_dir)
    step = checkpoint.latest(run_dir)
    path = checkpoint.path(run_dir) / str(step) / "meta" / "metadata"
    meta = json.loads(path.read_text())
    assert checkpoint.verify(run_dir, step, meta)["config"] == meta["config"]
    older = json.loads(path.read_text())
    for name in ("critic_layers", "n_step", "gamma"):  # the run leaves these at their defaults
        del older["config"][name]
    path.write_text(json.dumps(older))
    checkpoint.verify(run_dir, step, meta)  # resumes
    del older["config"]["num_envs"]  # the run's 8 is not the default 128
    path.write_text(json.dumps(older))
    with pytest.raises(ConfigError, match="its config differs in num_envs"):
        checkpoint.verify(run_dir, step, meta)
