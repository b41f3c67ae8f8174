"""The prepared GPU check of docs/gpu.md (`scripts/gpu_figures.py`), dry-run on the CPU at tiny
sizes so that it cannot rot: both parts run, and the JSON holds the loop's rates at each N and K
with the batch and U they ran at, and the training run's time to its target."""

import json

from conftest import script


def test_the_gpu_check_runs_end_to_end_at_tiny_sizes(tmp_path):
    out = tmp_path / "gpu.json"
    assert script("gpu_figures").main(["--out", str(out), "--dry_run", "--budget_s", "600"]) == 0
    result = json.loads(out.read_text())
    rows = {(r["num_envs"], r["ensemble_size"]): r for r in result["loop"]}
    assert set(rows) == {(8, 1), (8, 3)}
    assert all(r["env_steps_per_s"] > 0 and r["batch_size"] == 32 for r in rows.values())
    assert rows[(8, 3)]["algo"] == "cikd" and rows[(8, 1)]["algo"] == "sac"
    hit = result["to_target"]
    assert hit["returncode"] == 0 and not hit["stopped_at_limit"]
    assert hit["reached"] and hit["env_steps_at_target"] == hit["evaluations"][0][0]
    assert hit["wall_s_at_target"] > 0 and len(hit["evaluations"]) >= 4
