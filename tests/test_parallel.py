"""One run over two devices (this CPU split in two by XLA_FLAGS, in a process of its own): the
members stay identical on both, the buffer shards differ, and it learns as one device does."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny
from jax.sharding import PartitionSpec as P

from mjx_cikd.config import ConfigError
from mjx_cikd.host import checkpoint, compiled, run
from mjx_cikd.host.run_dir import read_metrics
from mjx_cikd.loop import parallel
from mjx_cikd.loop.state import env_axis
from mjx_cikd.loop.trainer import make_train

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUN = dict(algo="cikd", ensemble_size=2, num_envs=8, num_seeds=3, log_every=128,
           total_steps=1024, distill_interval=256, distill_warmup=256, eval_episodes=4)
TWO_DEVICES = """
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
sys.path.insert(0, "tests")
from conftest import tiny
from mjx_cikd.host.run import train
train(tiny(devices=2, compile_cache="", **{run}), sys.argv[1], quiet=True)
"""


def _final_best(run_dir) -> np.ndarray:
    last = max(r["env_steps"] for r in read_metrics(run_dir, "eval"))
    return np.array([r["best"] for r in read_metrics(run_dir, "eval") if r["env_steps"] == last])


def test_a_run_over_two_devices_keeps_one_set_of_members_and_learns_as_one_device(tmp_path):
    two = tmp_path / "two"
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES.format(run=RUN), str(two)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads((two / "run.json").read_text())
    assert facts["devices"] == 2 and facts["parallel"] == "data"
    logs = read_metrics(two, "log")
    assert len(logs) == 3 * 8 and all(r["replicas_agree"] for r in logs)  # after every chunk

    # the buffer shards (device 0's rows, then device 1's) hold different data
    config = tiny(devices=2, compile_cache="", **RUN)
    shapes = jax.eval_shape(jax.vmap(make_train(config).init), compiled.seed_keys(config))
    saved = checkpoint.restore(two, shapes, make_train(config).schedule(),
                               checkpoint.describe(config, "jax", shapes))
    obs = np.asarray(saved.state.buffer.data.obs)  # [S, C, obs]
    half = obs.shape[1] // 2
    filled = int(saved.state.buffer.size[0])  # rows in each shard
    assert filled == 1024 // 2
    assert not np.allclose(obs[:, :filled], obs[:, half:half + filled])

    # learning: the 1-device run of the same global sizes, three seeds each
    one = tmp_path / "one"
    run.train(tiny(compile_cache="", **RUN), one, quiet=True)
    a, b = _final_best(one), _final_best(two)
    random_policy = -2 / 3  # E[-(a - x)^2] for a, x ~ U(-1, 1)
    assert a.mean() > random_policy / 4 and b.mean() > random_policy / 4  # both learned
    noise = 3 * np.sqrt(a.var() / len(a) + b.var() / len(b)) + 0.02
    assert abs(a.mean() - b.mean()) < noise, (a, b)


def test_seeds_over_two_devices_train_each_seed_as_one_device_does(tmp_path):
    """--parallel seeds: no collectives; seed s on device s computes what it computes beside
    the other seeds on one device."""
    seeds = dict(RUN, num_seeds=2, total_steps=256)
    two = tmp_path / "two"
    script = TWO_DEVICES.replace("devices=2,", "devices=2, parallel='seeds',")
    proc = subprocess.run([sys.executable, "-c", script.format(run=seeds), str(two)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads((two / "run.json").read_text())
    assert facts["devices"] == 2 and facts["parallel"] == "seeds"
    one = tmp_path / "one"
    run.train(tiny(compile_cache="", **seeds), one, quiet=True)
    for event, key in (("log", "critic_loss"), ("log", "R"), ("eval", "returns")):
        mine, ref = read_metrics(two, event), read_metrics(one, event)
        assert [r["seed"] for r in mine] == [r["seed"] for r in ref]
        for a, b in zip(mine, ref):
            np.testing.assert_allclose(np.asarray(a[key], float), np.asarray(b[key], float),
                                       rtol=1e-4, atol=1e-5)


def test_data_parallel_sizes_must_split_over_the_devices():
    with pytest.raises(ConfigError, match="--num_envs 6 does not split over --devices 4"):
        tiny(devices=4, num_envs=6, batch_size=32, distill_batch_size=32)
    with pytest.raises(ConfigError, match="--num_seeds 3 does not split"):
        tiny(devices=2, parallel="seeds", num_seeds=3)
    with pytest.raises(ConfigError, match="JAX sees 1 device"):
        parallel.devices_of(tiny(devices=2))


def _names(tree, keep=lambda leaf: True) -> set[str]:
    return {jax.tree_util.keystr(p) for p, x in jax.tree_util.tree_leaves_with_path(
        tree, is_leaf=lambda x: isinstance(x, P)) if keep(x)}


def test_the_state_specs_split_the_slots_and_the_buffer_rows_only():
    """Chosen by structure (`state.env_axis`): every leaf of `slots` and `buffer.data`,
    nothing else."""
    config = tiny(num_envs=8)
    trainer = make_train(config)
    shapes = jax.eval_shape(jax.vmap(trainer.init), compiled.seed_keys(config))
    split = _names(parallel.state_specs(env_axis(shapes)), lambda s: s != P())
    rows = {".buffer.data" + name for name in _names(shapes.buffer.data)}
    slots = {".slots" + name for name in _names(shapes.slots)}
    assert split == rows | slots
    assert {".slots.player", ".slots.env.obs", ".buffer.data.obs"} <= split
    assert not any(name.startswith((".members", ".ring", ".norm", ".key")) for name in split)


def test_two_processes_form_one_run_that_one_process_resumes(tmp_path):
    """jax.distributed on localhost: two processes of one CPU device each are one run over two
    devices (CPU collectives), with one log and one checkpoint; one process with two devices
    resumes it."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    run_dir = tmp_path / "run"
    flags = ["--profile", "tiny", "--env", "ProbeTarget", "--episode_length", "0",
             "--progress", "false", "--tensorboard", "false", "--compile_cache", "",
             "--run_dir", str(run_dir), "--devices", "2", "--num_envs", "8",
             "--total_steps", "256", "--log_every", "128", "--distill_interval", "128",
             "--distill_warmup", "128"]
    one_device = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    procs = [subprocess.Popen([sys.executable, "scripts/train.py", *flags, "--coordinator",
                               f"localhost:{port}", "--num_processes", "2", "--process_id",
                               str(i)], cwd=ROOT, env=one_device, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    errs = [p.communicate(timeout=900)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs[0][-2000:] + errs[1][-2000:]
    assert "done" in errs[0] and errs[1].strip() == ""  # one voice: process 0's
    ends = [r for r in read_metrics(run_dir, "run") if r["phase"] == "end"]
    assert len(ends) == 1 and ends[0]["env_steps"] == 256
    assert [r["env_steps"] for r in read_metrics(run_dir, "log")] == [128, 256]  # one log
    assert all(r["replicas_agree"] for r in read_metrics(run_dir, "log"))
    assert checkpoint.latest(run_dir) == 256
    assert json.loads((run_dir / "run.json").read_text())["devices"] == 2

    proc = subprocess.run([sys.executable, "scripts/train.py", "--resume", str(run_dir),
                           "--total_steps", "512", "--devices", "1"], cwd=ROOT, env=one_device,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stderr
    assert [r["env_steps"] for r in read_metrics(run_dir, "log")] == [128, 256, 384, 512]


def test_a_buffer_saved_over_two_devices_maps_onto_one_and_back():
    """Shard d of D holds its N/D envs' rows step after step; the 1-device ring holds step t's
    N rows together, the envs in device order."""
    from mjx_cikd.agent import replay

    n, steps = 4, 3  # 4 envs, a ring of 3 vector steps: 12 rows
    global_rows = np.arange(n * steps, dtype=np.float32)  # row = step * N + env
    # what two devices hold: device d's rows are envs 2d, 2d+1 of every step
    shards = global_rows.reshape(steps, 2, n // 2).transpose(1, 0, 2).reshape(-1)
    buf = replay.init(n * steps, 1, 1)
    rows = jnp.asarray(shards)[None]  # [S = 1, C]
    two = buf.replace(data=replay.Batch(obs=rows[..., None], action=rows[..., None], reward=rows,
                                        next_obs=rows[..., None], terminated=rows,
                                        truncated=rows),
                      ptr=jnp.asarray([2]), size=jnp.asarray([6]))  # 3 steps of 2 rows each
    one = parallel.relayout(two, n, 2, 1)
    for field in one.data:  # every row array moves alike
        np.testing.assert_array_equal(np.asarray(field).reshape(-1), global_rows)
    assert int(one.ptr[0]) == 4 and int(one.size[0]) == 12
    back = parallel.relayout(one, n, 1, 2)
    np.testing.assert_array_equal(np.asarray(back.data.obs), np.asarray(two.data.obs))
    assert int(back.ptr[0]) == 2 and int(back.size[0]) == 6
