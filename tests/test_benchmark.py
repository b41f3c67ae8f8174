"""The benchmark's JSON: every field for a tiny config, bytes that match the arrays, and an
efficiency that is the ratio of the times it reports."""

import functools
import json
import math
import statistics

import pytest

from mjx_cikd.agent import replay
from mjx_cikd.bench import benchmark, report
from mjx_cikd.config import ConfigError


@functools.cache
def _tiny(tmp):
    out = f"{tmp}/bench.json"
    rc = report.main(["--profile", "tiny", "--env", "ProbeTarget", "--num_envs", "8",
                      "--ensemble_sizes", "1,2", "--repeats", "3", "--iters", "4",
                      "--cache_check", "false", "--compile_cache", "", "--out", out])
    assert rc == 0
    with open(out) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return _tiny(str(tmp_path_factory.mktemp("bench")))


def test_json_has_every_field_for_each_configuration(result):
    for key in ("device", "jax", "mujoco", "date", "env", "impl", "rows"):
        assert key in result
    assert [(r["num_envs"], r["ensemble_size"], r["algo"]) for r in result["rows"]] == [
        (8, 1, "sac"), (8, 2, "ensemble"), (8, 2, "cikd")]
    for row in result["rows"]:
        for field in benchmark.ROW_FIELDS:
            assert field in row, field
        for field in ("sim_env_steps_per_s", "updates_per_s", "loop_env_steps_per_s",
                      "loop_updates_per_s", "loop_efficiency", "compile_s", "act_iter_s"):
            assert math.isfinite(row[field]) and row[field] > 0, field
    cikd = result["rows"][2]
    # the difference of two tiny chunk timings is noisy on a busy machine: bound the share
    # measured from the phase's own timing, and ask only that the difference is a number
    assert cikd["distill_phase_s"] > 0 and 0 < cikd["distill_share_from_phase"] < 1
    assert math.isfinite(cikd["distill_share"])


def test_replay_bytes_equal_the_arrays_bytes(result):
    for row in result["rows"]:
        assert row["replay_bytes"] == row["replay_array_bytes"]
    buf = replay.init(2048, 1, 1)
    assert replay.arrays_nbytes(buf) == replay.nbytes(2048, 1, 1)


def test_ratios_are_medians_of_ratios_taken_within_each_round(result):
    rows = {r["algo"]: r for r in result["rows"]}
    med = statistics.median
    for row in result["rows"]:
        sim, upd, chunk = row["sim_times_s"], row["update_times_s"], row["chunk_times_s"]
        assert len(sim) == len(upd) == len(chunk) == result["repeats"]
        # one chunk against the simulation and the updates of one chunk, round by round
        assert row["loop_efficiency"] == pytest.approx(
            med(c / (m + u) for c, m, u in zip(chunk, sim, upd)), rel=1e-9)
        assert row["loop_iter_s"] == pytest.approx(med(chunk) / row["chunk_iters"])
        # the rest is what the chunk holds beyond every timed part, round by round
        acts, p = row["act_times_s"], row["phases_per_chunk"]
        phases = row["distill_times_s"] if p else [0.0] * len(chunk)
        assert row["loop_rest_share"] == pytest.approx(med(
            (c - m - u - a - p * d) / c for c, m, u, a, d in zip(chunk, sim, upd, acts, phases)),
            rel=1e-9, abs=1e-12)
    cikd, sac = rows["cikd"], rows["sac"]
    assert cikd["update_cost_vs_k1"] == pytest.approx(med(
        a / b for a, b in zip(cikd["update_times_s"], sac["update_times_s"])), rel=1e-9)
    assert cikd["env_steps_vs_sac"] == pytest.approx(med(
        b / a for a, b in zip(cikd["chunk_times_s"], sac["chunk_times_s"])), rel=1e-9)
    assert cikd["distill_share"] == pytest.approx(med(
        (c - e) / c for c, e in zip(cikd["chunk_times_s"], rows["ensemble"]["chunk_times_s"])),
        rel=1e-9)
    assert sac["update_cost_vs_k1"] is None and sac["env_steps_vs_sac"] is None


def test_bad_lists_are_one_clear_error():
    with pytest.raises(ConfigError, match="ensemble_sizes"):
        report.parse(["--ensemble_sizes", "1,x"])


def test_election_cost_is_one_evaluation_against_an_interval_of_training():
    from conftest import tiny

    from mjx_cikd.bench import election_cost

    config = tiny(algo="cikd", compile_cache="")  # ProbeTarget, T = 10, N = 8, I = 128 steps
    row = election_cost.measure(config, repeats=3)
    assert row["phase_period"] == config.phase_period == 16  # 128 env steps / 8 envs
    assert row["episode_length"] == 10 and row["eval_episodes"] == 2
    shares = [e / (e + row["phase_period"] * i)
              for e, i in zip(row["evaluation_round_s"], row["iteration_round_s"])]
    assert row["eval_share_per_phase"] == pytest.approx(statistics.median(shares))
    assert 0 < row["eval_share_per_phase"] < 1
