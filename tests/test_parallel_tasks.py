"""Several devices on a real DM Control task (CartpoleSwingup, MJX-JAX, the tiny profile's sizes),
whose MJX state holds zero-size leaves (`history`, `mocap_pos`, ...) that a chunk must hand back
with the shardings it was compiled for: data-parallel through chunks, evaluations, phases, a
checkpoint and resumes on one and two devices; whole seeds on devices; two processes as one run.
Two devices are this CPU split by XLA_FLAGS in a process of its own, as in test_parallel.py."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest
from conftest import TINY

from mjx_cikd.config import ConfigError, resolve
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host.run_dir import read_metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent
# 8 vector steps a chunk; phases (elected on the reward rate, which needs no finished episode of
# T = 100) and an evaluation at the end of every chunk, SAC updates from the second chunk on
RUN = dict(TINY, num_envs=8, log_every=64, learning_starts=32, distill_interval=64,
           distill_warmup=64, election_metric="reward_rate")
TWO_DEVICES = """
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
from mjx_cikd.config import resolve
from mjx_cikd.host.run import train
train(resolve({run}), sys.argv[1], quiet=True, resume=len(sys.argv) > 2)
"""


def _train(run_dir, resume: bool = False, **overrides) -> None:
    """A run (or its resume) over two forced host devices, in a process of its own."""
    script = TWO_DEVICES.format(run=dict(RUN, **overrides))
    proc = subprocess.run([sys.executable, "-c", script, str(run_dir)] + ["resume"] * resume,
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _logs(run_dir) -> list[dict]:
    return read_metrics(run_dir, "log")


def _members(run_dir) -> list:
    """The final evaluation's returns per member: equal runs have equal members."""
    last = max(r["env_steps"] for r in read_metrics(run_dir, "eval"))
    return [r["returns"] for r in read_metrics(run_dir, "eval") if r["env_steps"] == last]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("xla"))  # the resumes reuse the first run's compilation


def test_data_parallel_runs_chunks_phases_and_resumes_on_two_and_on_one_device(tmp_path, cache):
    two = tmp_path / "two"
    _train(two, devices=2, total_steps=192, compile_cache=cache)  # three chunks, one process
    facts = json.loads((two / "run.json").read_text())
    assert facts["devices"] == 2 and facts["parallel"] == "data" and facts["impl"] == "jax"
    logs = _logs(two)
    assert [r["env_steps"] for r in logs] == [64, 128, 192]
    assert all(r["replicas_agree"] for r in logs)  # identical members after every chunk
    assert len(read_metrics(two, "eval")) == 3
    assert any(r["ran"] and r["teacher"] >= 0 for r in read_metrics(two, "distill"))

    # the checkpoint resumes on two devices (exactly the uninterrupted run) and on one
    again, one = tmp_path / "again", tmp_path / "one"
    shutil.copytree(two, again)
    shutil.copytree(two, one)
    _train(again, resume=True, devices=2, total_steps=256, compile_cache=cache)
    assert [r["env_steps"] for r in _logs(again)] == [64, 128, 192, 256]
    assert all(r["replicas_agree"] for r in _logs(again))
    straight = tmp_path / "straight"
    _train(straight, devices=2, total_steps=256, compile_cache=cache)
    assert _members(again) == _members(straight)
    _train(one, resume=True, devices=1, total_steps=256, compile_cache=cache)
    assert [r["env_steps"] for r in _logs(one)] == [64, 128, 192, 256]


def test_seeds_over_two_devices_run_two_chunks_and_resume(tmp_path, cache):
    run_dir = tmp_path / "seeds"
    seeds = dict(devices=2, parallel="seeds", num_seeds=2, compile_cache=cache)
    _train(run_dir, total_steps=128, **seeds)
    _train(run_dir, resume=True, total_steps=192, **seeds)
    logs = _logs(run_dir)
    assert [(r["env_steps"], r["seed"]) for r in logs] == [
        (steps, seed) for steps in (64, 128, 192) for seed in (0, 1)]
    assert json.loads((run_dir / "run.json").read_text())["parallel"] == "seeds"


def test_two_processes_form_one_run_on_a_real_task_and_resume_as_two(tmp_path):
    """jax.distributed on localhost, one CPU device per process: one run over two devices with
    one log, through two chunks, then resumed by two processes again."""
    run_dir = tmp_path / "run"
    one_device = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    # what a resume may change (config.RESUMABLE), then what only a fresh run gives
    flags = ["--progress", "false", "--tensorboard", "false", "--compile_cache",
             str(tmp_path / "xla"), "--devices", "2"]
    fresh = ["--profile", "tiny", "--run_dir", str(run_dir), "--num_envs", "8", "--log_every",
             "64", "--learning_starts", "32", "--distill_interval", "64", "--distill_warmup",
             "64"]

    def both(*extra):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        procs = [subprocess.Popen(
            [sys.executable, "scripts/train.py", *flags, *extra, "--coordinator",
             f"localhost:{port}", "--num_processes", "2", "--process_id", str(i)], cwd=ROOT,
            env=one_device, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
        errs = [p.communicate(timeout=1200)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errs[0][-2000:] + errs[1][-2000:]
        assert "[mjx_cikd]" not in errs[1]  # one voice: process 0's (XLA's own alarms aside)
        return errs[0]

    both(*fresh, "--total_steps", "128")
    assert [r["env_steps"] for r in _logs(run_dir)] == [64, 128]
    assert "resumed from" in both("--resume", str(run_dir), "--total_steps", "192")
    logs = _logs(run_dir)
    assert [r["env_steps"] for r in logs] == [64, 128, 192]
    assert all(r["replicas_agree"] for r in logs)
    ends = [r for r in read_metrics(run_dir, "run") if r["phase"] == "end"]
    assert [r["env_steps"] for r in ends] == [192]  # the whole run's, as an uninterrupted one


def test_warp_runs_on_one_device_and_auto_takes_jax_for_several(monkeypatch):
    monkeypatch.setattr(envs, "warp_available", lambda: True)
    monkeypatch.setattr(envs.jax, "default_backend", lambda: "cpu")
    assert envs.resolve_impl("CheetahRun", "auto") == "warp"
    assert envs.resolve_impl("CheetahRun", "auto", devices=2) == "jax"
    assert "takes MJX-JAX for CheetahRun over 2 devices" in envs.impl_note("CheetahRun", "auto",
                                                                          2)
    assert envs.impl_note("CheetahRun", "auto", 1) is None
    assert envs.impl_note("CartpoleSwingup", "auto", 2) is None  # auto takes jax there anyway
    with pytest.raises(ConfigError, match="--impl warp runs on one device"):
        envs.resolve_impl("CheetahRun", "warp", devices=2)
    with pytest.raises(ConfigError, match="--impl warp runs on one device"):
        envs.make_task(resolve(dict(TINY, env="CheetahRun", impl="warp", devices=2)))
