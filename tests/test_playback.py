"""scripts/evaluate.py on a run of the tiny profile (mjx_cikd.host.playback): its table repeats the
run's own last evaluation, --video writes an mp4 holding one frame per step of the filmed
episode, and a directory that holds no run (or no checkpoint) is a one-line error."""

import json
import pathlib
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
from conftest import script, tiny

from mjx_cikd.host.run import train
from mjx_cikd.host.run_dir import read_metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "evaluate.py"
T = 20  # the episode length, so the video's frame count


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny run on a task MuJoCo can render (a probe task cannot be)."""
    path = tmp_path_factory.mktemp("playback") / "run"
    train(tiny(env="CartpoleSwingup", impl="jax", episode_length=T, algo="ensemble",
               ensemble_size=2, num_envs=4, total_steps=64, log_every=64, learning_starts=16,
               checkpoint_every=0, eval_episodes=2), run_dir=path, quiet=True)
    return path


def _table(stdout: str) -> list[dict]:
    """The rows of the printed table, by the header's column names."""
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["seed", "member"])
    names = lines[head].split()
    rows = []
    for line in lines[head + 1:]:
        if line.startswith("video:"):
            break
        rows.append(dict(zip(names, map(float, line.split()))))
    return rows


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # ffmpeg's fork is an exec
def test_the_table_repeats_the_runs_last_evaluation_and_the_video_has_a_frame_per_step(
        run_dir, tmp_path):
    video = tmp_path / "best.mp4"
    # a fresh process: MuJoCo reads MUJOCO_GL once, at its import (the script sets it first)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), "--video", str(video),
                           "--width", "64", "--height", "48"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = _table(proc.stdout)
    assert [(r["seed"], r["member"]) for r in rows] == [(0, 0), (0, 1)]

    # default starts: the key of the run's evaluation at its last iteration, which the training
    # loop computed with its own compiled evaluate and wrote down (6 decimals)
    last = read_metrics(run_dir, "eval")[-1]
    assert last["env_steps"] == 64
    np.testing.assert_allclose([r["mean"] for r in rows], last["returns"], rtol=1e-4, atol=2e-6)
    for r in rows:  # two episodes a, b: mean (a + b) / 2, std |a - b| / 2
        assert r["min"] <= r["mean"] <= r["max"] and r["length"] == T
        assert r["mean"] == pytest.approx((r["min"] + r["max"]) / 2, rel=1e-4, abs=1e-9)
        assert r["std"] == pytest.approx((r["max"] - r["min"]) / 2, rel=1e-3, abs=1e-9)

    best = max(rows, key=lambda r: r["mean"])
    assert f"member {int(best['member'])}," in proc.stdout
    assert f"{T} frames at 100 fps" in proc.stdout
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(48, 64, 3) for f in reader]
    assert meta["codec"] == "h264" and meta["size"] == (64, 48) and meta["fps"] == 100
    assert len(frames) == T  # Cartpole never terminates: the whole time limit, a frame a step
    assert any(f.std() > 5 for f in frames)  # a rendered scene, not a blank buffer


def test_no_run_or_no_checkpoint_is_a_one_line_error_and_writes_nothing(tmp_path, capsys):
    main = script("evaluate").main
    video = tmp_path / "v.mp4"
    assert main([str(tmp_path), "--video", str(video)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run directory" in err and err.count("\n") == 1

    fresh = tmp_path / "fresh"  # a run that has not saved a checkpoint yet
    fresh.mkdir()
    (fresh / "config.json").write_text(json.dumps(tiny(env="CartpoleSwingup").to_dict()))
    assert main([str(fresh), "--video", str(video)]) == 2
    err = capsys.readouterr().err
    assert "no complete checkpoint" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["config.json", "fresh"]


def test_step_and_best_play_the_checkpoints_they_name(tmp_path, capsys):
    """The run keeps its best evaluation's checkpoint beside the newest ones; --best plays it
    and its table repeats that evaluation; --step N plays the one at N, or names those kept."""
    run = tmp_path / "run"
    train(tiny(algo="ensemble", ensemble_size=2, num_seeds=2, total_steps=320, log_every=64,
               checkpoint_every=64, keep_checkpoints=2, eval_episodes=2), run_dir=run,
          quiet=True)
    evals = read_metrics(run, "eval")
    steps = sorted({r["env_steps"] for r in evals})
    score = {t: np.mean([r["best"] for r in evals if r["env_steps"] == t]) for t in steps}
    best = max(steps, key=lambda t: (score[t], -t))  # the first of equals is kept
    main = script("evaluate").main

    def returns_at(step):
        return [x for r in sorted((r for r in evals if r["env_steps"] == step),
                                  key=lambda r: r["seed"]) for x in r["returns"]]

    assert main([str(run), "--best"]) == 0
    out = capsys.readouterr().out
    assert f"best evaluation, checkpoint at {best:,} env steps per seed" in out
    np.testing.assert_allclose([r["mean"] for r in _table(out)], returns_at(best), rtol=1e-4,
                               atol=2e-6)
    assert main([str(run), "--step", "256"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint at 256 env steps per seed" in out
    np.testing.assert_allclose([r["mean"] for r in _table(out)], returns_at(256), rtol=1e-4,
                               atol=2e-6)
    assert main([str(run), "--step", "100"]) == 2
    err = capsys.readouterr().err
    kept = sorted({256, 320, best})
    assert err.count("\n") == 1 and (f"no checkpoint at env step 100; it keeps "
                                     f"{', '.join(map(str, kept))}") in err
