"""The benchmark's pieces that tests/test_benchmark.py does not reach: the comma-list flags, the
chunk length that holds whole distillation periods, the steady-state timed loop, and the cold/warm
compilation-cache check in fresh processes."""

import math

import pytest
from conftest import tiny

from mjx_cikd.bench import benchmark, first_step, parts, report
from mjx_cikd.envs import tasks as envs


def test_comma_lists_go_to_the_benchmark_and_the_first_n_to_the_config():
    base, num_envs, args = report.parse(
        ["--profile", "tiny", "--num_envs", "8,16", "--ensemble_sizes", "1,3", "--batch_size",
         "16", "--cache_check", "false", "--repeats", "2"])
    assert num_envs == [8, 16] and args.ensemble_sizes == [1, 3]
    assert base.num_envs == 8 and base.batch_size == 16
    assert args.cache_check is False and args.repeats == 2
    _, num_envs, _ = report.parse(["--profile", "tiny", "--num_envs=32"])
    assert num_envs == [32]


def test_a_timed_chunk_holds_whole_distillation_periods_at_the_configs_interval():
    base = tiny(distill_interval=100)  # N=8: a phase every ceil(100/8) = 13 iterations
    for iters, expected in ((4, 13), (13, 13), (14, 26)):
        config = benchmark.loop_config(base, 8, "cikd", 2, iters)
        assert config.iters_per_chunk == expected and config.num_chunks == 1
        assert config.learning_starts == 0 and config.distill_warmup == 0
        assert config.distill_interval == 100  # the interval is the user's, not the benchmark's
    sac = benchmark.loop_config(base, 8, "sac", 1, 4)
    assert sac.ensemble_size == 1 and sac.iters_per_chunk == 13


def test_the_timed_loop_runs_in_steady_state_from_a_full_buffer():
    config = benchmark.loop_config(tiny(), 8, "sac", 1, 4)
    timed = parts.loop(config, envs.make_task(config))
    state, sched = timed.carry
    assert int(state.buffer.size.min()) == config.buffer_rows  # batches gather from the ring
    assert timed.info["replay_array_bytes"] == timed.info["replay_bytes"]
    state, sched = timed.fn(state, sched)
    assert int(sched.iteration) == config.iters_per_chunk
    assert int(state.buffer.ptr[0]) == config.iters_per_chunk * 8  # the chunk wrote its rows
    assert int(state.buffer.size.min()) == config.buffer_rows


def test_a_warm_compilation_cache_makes_the_first_step_faster(tmp_path):
    config = benchmark.loop_config(tiny(), 8, "sac", 1, 4)
    result = first_step.cache_check(config, cache_dir=str(tmp_path / "xla"))
    for key in first_step.FIELDS:
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["cache_entries"] > 0
    assert result["first_step_ratio"] == pytest.approx(
        result["first_step_cold_s"] / result["first_step_warm_s"])
    # the compile step is where the cache acts (the rest of the start-up is the same)
    assert result["compile_warm_s"] < result["compile_cold_s"]
    for name in ("cold", "warm"):  # the stages account for the whole time to the first step
        stages = result[f"stages_{name}_s"]
        assert set(stages) == set(first_step.STAGES) and min(stages.values()) >= 0
        assert sum(stages.values()) == pytest.approx(result[f"first_step_{name}_s"], rel=1e-6)
