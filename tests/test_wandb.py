"""Weights & Biases, offline (`WANDB_MODE=offline`): a run with `--wandb` keeps a W&B run in its
directory holding its config, its records and its end; a resumed run continues the same W&B run;
without the flag nothing of W&B is imported."""

import json
import pathlib
import struct
import subprocess
import sys

import pytest
from conftest import script

from mjx_cikd.host.run_dir import read_metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLAGS = ["--profile", "tiny", "--env", "ProbeTarget", "--episode_length", "0", "--tensorboard",
         "false", "--log_every", "256", "--wandb", "mjx-cikd", "--wandb_group", "tests"]


def wandb_records(path: pathlib.Path):
    """The records of an offline run's `.wandb` file: W&B's LevelDB-style log (a 7-byte header,
    32 KiB blocks of chunks, each a 7-byte head: crc32c, length, type 1 full | 2 first |
    3 middle | 4 last) of `wandb_internal_pb2.Record`s."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, buf = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a head is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        buf, pos = buf + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record


def _items(items) -> dict:
    """A history or summary record's items by key (a key with '/' is kept as its parts)."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def _history(path) -> list[dict]:
    return [_items(r.history.item) for r in wandb_records(path)
            if r.WhichOneof("record_type") == "history"]


def test_an_offline_wandb_run_holds_the_config_the_records_and_the_end(
        tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir, cache = tmp_path / "run", str(tmp_path / "xla")
    train = script("train")
    assert train.main(FLAGS + ["--total_steps", "512", "--compile_cache", cache,
                               "--progress", "plain", "--run_dir", str(run_dir)]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "env step " in x]
    assert len(lines) == 2 and "\r" not in "".join(lines)  # --progress plain: one per log point
    kept = json.loads((run_dir / "wandb.json").read_text())
    assert kept["project"] == "mjx-cikd" and kept["group"] == "tests"
    assert train.main(["--resume", str(run_dir), "--total_steps", "768"]) == 0
    files = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert [f.name for f in files] == [f"run-{kept['id']}.wandb"] * 2  # one W&B run, continued

    first = list(wandb_records(files[0]))
    config = {i.key: json.loads(i.value_json) for r in first
              if r.WhichOneof("record_type") == "run" for i in r.run.config.update}
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    assert config["env"] == "ProbeTarget" and config["wandb"] == "mjx-cikd"
    history = _history(files[0]) + _history(files[1])
    logged = {(h["env_steps"], h["seed0/eval/best"]) for h in history if "seed0/eval/best" in h}
    evals = read_metrics(run_dir, "eval")
    # one at every phase point (each 128 env steps) and at each leg's end, the first leg's end
    # being a phase point
    assert [r["env_steps"] for r in evals] == [128, 256, 384, 512, 640, 768]
    assert logged == {(r["env_steps"], r["best"]) for r in evals}
    assert any("seed0/distill/teacher" in h for h in history)
    figures = [h for h in _history(files[1]) if h.get("figures/eval/_type") == "image-file"]
    assert len(figures) == 1  # the end figure, of the evaluations of the whole run
    assert (files[1].parent / "files" / figures[0]["figures/eval/path"]).is_file()
    summary = {}
    for r in wandb_records(files[1]):
        if r.WhichOneof("record_type") == "summary":
            summary.update(_items(r.summary.update))
    end = [r for r in read_metrics(run_dir, "run") if r["phase"] == "end"]
    assert summary["final_eval_best"] == end[-1]["final_eval_best"] == [evals[-1]["best"]]


def test_without_the_flag_nothing_of_wandb_is_imported():
    code = ("import sys; sys.path.insert(0, 'scripts'); import train; "
            "from mjx_cikd.host import run, tracking, run_dir, progress; "
            "print('wandb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
