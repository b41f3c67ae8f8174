"""Flags, profiles and bad input: one clear line and a non-zero exit, before any compilation."""

import json
import pathlib
import subprocess
import sys

import pytest

from mjx_cikd.config import Config, ConfigError, config_from_args, load_profile, resolve

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_field_is_a_flag_and_flags_override_the_profile():
    config, _ = config_from_args(["--profile", "tiny", "--num_envs", "12", "--widths", "32,64",
                                  "--normalize_obs", "false", "--gamma", "0.9"])
    tiny = load_profile("tiny")
    assert config.num_envs == 12 and config.gamma == 0.9
    assert config.widths == (32, 64) and config.ensemble_size == 2  # K implied by the widths
    assert config.normalize_obs is False
    assert config.batch_size == tiny["batch_size"]


def test_algo_sac_implies_one_member():
    config, _ = config_from_args(["--algo", "sac"])
    assert config.ensemble_size == 1
    with pytest.raises(ConfigError, match="one agent"):
        config_from_args(["--algo", "sac", "--ensemble_size", "3"])


@pytest.mark.parametrize("argv, message", [
    (["--num_envs", "0"], "--num_envs must be >= 1"),
    (["--ensemble_size", "0"], "--ensemble_size must be >= 1"),
    (["--return_window", "0"], "--return_window must be >= 1"),
    (["--algo", "ppo"], "--algo must be one of"),
    (["--num_envs", "many"], "cannot read 'many' as int"),
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--profile", "nope"], "unknown profile 'nope'"),
    (["--buffer_size", "200", "--num_envs", "8"], "fewer transitions than one batch"),
    (["--buffer_size", "50"], "smaller than one vector step"),  # default num_envs is 64
    (["--algo", "cikd", "--extra_updates", "true"], "not cikd"),
])
def test_bad_input_is_one_clear_error(argv, message):
    with pytest.raises(ConfigError, match=message):
        config_from_args(argv)


@pytest.mark.parametrize("argv, message", [
    (["--num_envs", "0"], "--num_envs must be >= 1"),
    (["--env", "NoSuchTask"], "unknown task 'NoSuchTask'"),
    (["--bogus", "1"], "unrecognized arguments"),
])
def test_train_script_exits_nonzero_with_one_line(tmp_path, argv, message):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *argv,
                           "--run_dir", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "run").exists()


def test_profiles_all_parse_and_validate():
    for path in (ROOT / "profiles").glob("*.toml"):
        config, _ = config_from_args(["--profile", path.stem])
        assert isinstance(config, Config)


def test_config_json_round_trips(tmp_path):
    config, _ = config_from_args(["--widths", "256,1024"])
    text = json.dumps(config.to_dict())
    assert json.loads(text)["widths"] == [256, 1024]


def test_a_distillation_cadence_that_outweighs_the_updates_is_pointed_out():
    import re

    from mjx_cikd.run import phase_cost_note

    assert phase_cost_note(resolve({})) is None  # defaults: 78 iterations, 624 updates, D = 64
    assert phase_cost_note(resolve({"num_envs": 2048, "algo": "ensemble"})) is None
    note = phase_cost_note(resolve({"num_envs": 2048}))
    assert "every 24 SAC updates" in note
    suggested = int(re.search(r"--distill_interval \(e.g. ([\d,]+)", note)[1].replace(",", ""))
    fixed = resolve({"num_envs": 2048, "distill_interval": suggested})
    assert phase_cost_note(fixed) is None
    assert fixed.distill_steps * 10 <= fixed.phase_period * fixed.updates_per_step
