"""A run end to end on the host: the run directory, its records, and an exact resume."""

import json

import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.config import config_from_args
from mjx_cikd.host.run import train
from mjx_cikd.host.run_dir import read_metrics


def _last(run_dir, event):
    return read_metrics(run_dir, event)[-1]


def test_run_dir_records_and_an_interrupted_run_resumes_to_the_same_numbers(tmp_path):
    cache = str(tmp_path / "xla")  # the second and third builds hit the persistent cache
    common = dict(algo="cikd", ensemble_size=3, log_every=256, checkpoint_every=0,
                  compile_cache=cache, audit_election=True)
    straight = tmp_path / "straight"
    train(tiny(total_steps=512, **common), run_dir=straight, quiet=True)

    config = json.loads((straight / "config.json").read_text())
    assert config["ensemble_size"] == 3 and config["total_steps"] == 512
    facts = json.loads((straight / "run.json").read_text())  # what "auto" and "0" resolved to
    assert config["episode_length"] == 0 and facts["episode_length"] == 10
    assert facts["impl"] == "jax" and facts["versions"]["mujoco-mjx"]
    logs = read_metrics(straight, "log")
    assert [r["env_steps"] for r in logs] == [256, 512]
    for key in ("R", "critic_loss", "actor_loss", "alpha", "entropy", "episodes"):
        assert len(logs[-1][key]) == 3
    assert logs[-1]["sps"] > 0 and logs[-1]["wall_s"] > 0
    # one evaluation at each phase point (every 128 env steps here) and one at the run's end
    assert [r["env_steps"] for r in read_metrics(straight, "eval")] == [128, 256, 384, 512]
    assert any(r["ran"] for r in read_metrics(straight, "distill"))

    cut = tmp_path / "cut"
    train(tiny(total_steps=256, **common), run_dir=cut, quiet=True)
    resumed, args = config_from_args(["--resume", str(cut), "--total_steps", "512"])
    assert resumed.compile_cache == cache and args.resume == str(cut)
    train(resumed, run_dir=cut, quiet=True, resume=True)
    assert [r["env_steps"] for r in read_metrics(cut, "log")] == [256, 512]
    for event, key in (("log", "critic_loss"), ("log", "R"), ("eval", "returns")):
        np.testing.assert_array_equal(_last(cut, event)[key], _last(straight, event)[key])
    # the end record of the resumed run summarises the whole run, the phases before 256 too
    ends = [[r for r in read_metrics(d, "run") if r["phase"] == "end"] for d in (cut, straight)]
    assert len(ends[0]) == 1
    after = [r for r in read_metrics(cut, "distill") if "hit" in r and r["env_steps"] > 256]
    assert ends[0][0]["election_phases"] > len(after)
    for key in ("election_phases", "election_hit_rate", "election_regret", "final_eval_best",
                "final_eval_worst", "final_eval_mean", "final_eval_env_steps"):
        assert ends[0][0][key] == ends[1][0][key], key


def test_an_audited_run_summarises_its_elections(tmp_path):
    run_dir = tmp_path / "audited"
    summary = train(tiny(algo="cikd", ensemble_size=3, total_steps=512, log_every=256,
                         checkpoint_every=0, compile_cache="", audit_election=True,
                         election_metric="reward_rate"), run_dir=run_dir, quiet=True)
    phases = [r for r in read_metrics(run_dir, "distill") if r["ran"]]
    assert len(phases) >= 3
    for r in phases:
        assert r["metric"] == "reward_rate" and r["statistic"] == r["reward_rate"]
        assert r["hit"] == (int(np.argmax(r["audit"])) == r["teacher"])
        # (the records hold 6 decimals)
        assert r["regret"] == pytest.approx(np.max(r["audit"]) - r["audit"][r["teacher"]],
                                            abs=2e-6)
    assert summary["election_phases"] == len(phases)
    assert summary["election_hit_rate"] == np.mean([r["hit"] for r in phases])
    assert summary["election_regret"] == pytest.approx(np.mean([r["regret"] for r in phases]),
                                                       abs=2e-6)
