"""Runs that survive: a kill during a checkpoint write, SIGINT, a numeric fault.

Each test trains the same tiny run (`RUN`, a probe task, three members distilling) and compares
with the uninterrupted run's numbers (`straight`, trained once for the module)."""

import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.host import checkpoint
from mjx_cikd.host.run import Stopped, train
from mjx_cikd.host.run_dir import read_metrics
from mjx_cikd.loop import trainer

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUN = dict(algo="cikd", ensemble_size=3, num_envs=8, log_every=64, checkpoint_every=64,
           distill_interval=64, distill_warmup=64)
STEPS = 1024


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("xla"))  # every build after the first hits it


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache):
    run_dir = tmp_path_factory.mktemp("straight")
    train(tiny(total_steps=4096, compile_cache=cache, **RUN), run_dir, quiet=True)
    return run_dir


def _flags(run_dir, cache, **extra) -> list[str]:
    values = dict(RUN, profile="tiny", env="ProbeTarget", episode_length=0, progress=False,
                  tensorboard=False, compile_cache=cache, run_dir=str(run_dir)) | extra
    return [f"--{k}={v}" for k, v in values.items()]


def _same_end(run_dir, reference, steps: int) -> None:
    """The records at `steps` env steps equal the uninterrupted run's, bit for bit."""
    for event, key in (("log", "critic_loss"), ("log", "R"), ("eval", "returns")):
        mine = [r for r in read_metrics(run_dir, event) if r["env_steps"] == steps]
        ref = [r for r in read_metrics(reference, event) if r["env_steps"] == steps]
        assert mine and ref, (event, steps)
        np.testing.assert_array_equal(mine[-1][key], ref[-1][key])


# --------------------------------------------------------------------------------------
# a kill during a checkpoint write

KILLER = textwrap.dedent("""
    import os, signal, sys
    from orbax.checkpoint import checkpoint_manager
    from orbax.checkpoint._src.path import atomicity, deleter

    point, at_save = sys.argv[1], 2
    saves = [0]

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def wrap(cls, name, when):
        original = getattr(cls, name)
        if name in ("create", "finalize"):
            async def patched(self, *a, **k):
                if when == "before" and saves[0] == at_save:
                    kill()
                out = await original(self, *a, **k)
                if when == "after" and saves[0] == at_save:
                    kill()
                return out
        else:
            def patched(self, *a, **k):
                if name == "save":  # the newest ones' saves (not the best evaluation's)
                    saves[0] += os.path.basename(str(self.directory)) == "checkpoints"
                elif saves[0] == at_save and a and list(a[0]):  # steps to delete
                    kill()
                return original(self, *a, **k)
        setattr(cls, name, patched)

    wrap(checkpoint_manager.CheckpointManager, "save", None)
    if point == "began":          # the temporary directory exists, nothing in it yet
        wrap(atomicity.AtomicRenameTemporaryPath, "create", "after")
    elif point == "written":      # everything written, not yet renamed into place
        wrap(atomicity.AtomicRenameTemporaryPath, "finalize", "before")
    elif point == "pruning":      # the new step in place, the old one not yet deleted
        wrap(deleter.StandardCheckpointDeleter, "delete_steps", None)
    sys.argv = ["train.py"] + sys.argv[2:]
    sys.path.insert(0, "scripts")
    import train
    sys.exit(train.main(sys.argv[1:]))
""")


@pytest.mark.parametrize("point, complete", [("began", [64]), ("written", [64]),
                                              ("pruning", [64, 128])])
def test_a_kill_during_a_save_resumes_from_the_last_complete_checkpoint(
        tmp_path, cache, straight, point, complete):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILLER, point,
                           *_flags(run_dir, cache, total_steps=STEPS, keep_checkpoints=1)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir()
                   if p.name.isdigit())
    assert steps == complete  # what the kill left: the finished steps, and maybe a temporary
    assert checkpoint.latest(run_dir) == complete[-1]
    config = tiny(total_steps=STEPS, compile_cache=cache, **RUN)
    train(config, run_dir, quiet=True, resume=True)
    _same_end(run_dir, straight, STEPS)


# --------------------------------------------------------------------------------------
# a kill between two checkpoints: the records read as the uninterrupted run's

KILL_AFTER_LOG = textwrap.dedent("""
    import os, signal, sys
    from mjx_cikd.host import run_dir

    at, original = int(sys.argv[1]), run_dir.RunLogger.write

    def write(self, record):  # SIGKILL once the log record of env step `at` is on disk
        original(self, record)
        if record.get("event") == "log" and record.get("env_steps") == at:
            os.kill(os.getpid(), signal.SIGKILL)

    run_dir.RunLogger.write = write
    sys.argv = ["train.py"] + sys.argv[2:]
    sys.path.insert(0, "scripts")
    import train
    sys.exit(train.main(sys.argv[1:]))
""")


def _keyed(rows) -> dict:
    """Records by (event, seed, env_steps), without the clock's fields; a key seen twice fails."""
    out = {}
    for r in rows:
        key = (r["event"], r.get("seed"), r["env_steps"])
        assert key not in out, f"{key} written twice"
        out[key] = {k: v for k, v in r.items() if k not in ("wall_s", "sps")}
    return out


def test_a_run_killed_between_checkpoints_resumes_to_the_uninterrupted_runs_records(
        tmp_path, cache, straight):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_LOG, "384",
                           *_flags(run_dir, cache, total_steps=STEPS, checkpoint_every=256)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert checkpoint.latest(run_dir) == 256  # killed after writing the records to 384
    assert max(r["env_steps"] for r in read_metrics(run_dir, "log")) == 384
    config = tiny(total_steps=STEPS, compile_cache=cache, **dict(RUN, checkpoint_every=256))
    summary = train(config, run_dir, quiet=True, resume=True)

    events = ("log", "eval", "distill")
    mine = _keyed(r for r in read_metrics(run_dir) if r["event"] in events)
    ref = _keyed(r for r in read_metrics(straight) if r["event"] in events
                 and r["env_steps"] <= STEPS)
    assert mine == ref
    walls = [r["wall_s"] for r in read_metrics(run_dir) if "wall_s" in r]
    assert walls == sorted(walls)  # the resumed process's clock goes on from the killed one's
    runs = [(r["phase"], r["env_steps"]) for r in read_metrics(run_dir, "run")]
    assert runs == [("start", 0), ("resume", 256), ("end", STEPS)]
    last = max((r for r in read_metrics(straight, "eval") if r["env_steps"] <= STEPS),
               key=lambda r: r["env_steps"])
    assert summary["final_eval_best"] == [last["best"]]
    assert summary["final_eval_worst"] == [last["worst"]]


# --------------------------------------------------------------------------------------
# SIGINT


def test_sigint_stops_with_a_checkpoint_and_the_resume_command(tmp_path, cache, straight):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "scripts/train.py",
                             *_flags(run_dir, cache, total_steps=4096)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # the loop has begun: its first log
        if metrics.exists() and '"event": "log"' in metrics.read_text():
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGINT, err[-2000:]
    assert "Traceback" not in err
    assert f"Resume with: python scripts/train.py --resume {run_dir}" in err
    step = checkpoint.latest(run_dir)
    assert step is not None and 0 < step < 4096
    stopped = read_metrics(run_dir, "interrupted")
    assert [r["env_steps"] for r in stopped] == [step]
    train(tiny(total_steps=4096, compile_cache=cache, **RUN), run_dir, quiet=True, resume=True)
    _same_end(run_dir, straight, 4096)


# --------------------------------------------------------------------------------------
# non-finite values


def _poison_from(monkeypatch, rows: int, some_keys: bool = False):
    """SAC updates that turn member 1's parameters to NaN once the buffer holds `rows` rows
    (and, with `some_keys`, only where the update's key has an even first word: a rollback's
    fresh key may miss it)."""
    original = trainer.sac_steps

    def poisoned(ensemble, updates, members, buffer, norm, key, count):
        members, metrics = original(ensemble, updates, members, buffer, norm, key, count)
        hit = buffer.size == rows
        if some_keys:
            hit = hit & (jax.random.key_data(key).ravel()[0] % 2 == 0)
        group = members[0]
        group = jax.tree.map(lambda x: x.at[1].set(jnp.where(hit, jnp.nan, x[1]))
                             if jnp.issubdtype(x.dtype, jnp.floating) else x, group)
        return (group,) + members[1:], metrics

    monkeypatch.setattr(trainer, "sac_steps", poisoned)


def test_a_nan_stops_the_run_naming_it_and_keeps_the_last_good_checkpoint(
        tmp_path, cache, monkeypatch):
    _poison_from(monkeypatch, rows=200)
    run_dir = tmp_path / "run"
    with pytest.raises(Stopped) as stop:
        train(tiny(total_steps=STEPS, compile_cache=cache, **RUN), run_dir, quiet=True)
    message = str(stop.value)
    # the buffer reaches 200 rows at env step 200 (8 envs a step): in the chunk ending at 256
    assert "non-finite params of member 1, seed 0" in message
    assert "by env step 200" in message and "last good checkpoint is env step 192" in message
    assert stop.value.code == 1
    assert checkpoint.latest(run_dir) == 192
    faults = read_metrics(run_dir, "fault")
    assert faults == [dict(event="fault", env_steps=200, seed=0, member=1, quantity="params")]
    assert max(r["env_steps"] for r in read_metrics(run_dir, "log")) == 192


def test_rollback_restores_the_last_good_checkpoint_with_fresh_keys(tmp_path, cache, monkeypatch):
    _poison_from(monkeypatch, rows=200, some_keys=True)
    run_dir = tmp_path / "run"
    summary = train(tiny(total_steps=STEPS, compile_cache=cache, on_nonfinite="rollback",
                         max_rollbacks=5, **RUN), run_dir, quiet=True)
    rollbacks = read_metrics(run_dir, "rollback")
    assert 1 <= len(rollbacks) <= 5
    assert [r["count"] for r in rollbacks] == list(range(1, len(rollbacks) + 1))
    assert all(r["to"] == 192 and r["seeds"] == [0] for r in rollbacks)
    assert summary["env_steps"] == STEPS
    assert max(r["env_steps"] for r in read_metrics(run_dir, "log")) == STEPS


def test_checkpoints_without_the_buffer_leave_it_out_and_resume_says_so(tmp_path, cache, capsys):
    def holds_buffer(run_dir) -> bool:  # orbax's index of the arrays a step holds
        index = run_dir / "checkpoints" / "128" / "state" / "_METADATA"
        return ".buffer.data.obs" in index.read_text()

    full, lean = tmp_path / "full", tmp_path / "lean"
    train(tiny(total_steps=128, compile_cache=cache, **RUN), full, quiet=True)
    train(tiny(total_steps=128, compile_cache=cache, checkpoint_buffer=False, **RUN), lean,
          quiet=True)
    assert holds_buffer(full) and not holds_buffer(lean)
    summary = train(tiny(total_steps=256, compile_cache=cache, checkpoint_buffer=False, **RUN),
                    lean, resume=True)
    assert "has no replay buffer" in capsys.readouterr().err
    assert summary["env_steps"] == 256
