"""Flags, profiles and bad input: one clear line and a non-zero exit, before any compilation."""

import json
import pathlib
import re
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
    from mjx_cikd.host.run import phase_cost_note

    assert phase_cost_note(resolve({})) is None  # 5000 updates per phase, D = 64
    assert phase_cost_note(resolve({"num_envs": 2048})) is None  # the interval scales with N
    assert phase_cost_note(resolve({"num_envs": 2048, "distill_interval": 5000,
                                    "algo": "ensemble"})) is None
    note = phase_cost_note(resolve({"num_envs": 2048, "distill_interval": 5000,
                                    "updates_per_step": 8}))
    assert "every 24 SAC updates" in note and "--distill_interval_updates" in note
    # 5 epochs over a full 1M buffer at B_d = 256 are 19,532 steps: more than 5000 updates
    assert "19532" in phase_cost_note(resolve({"distill_epochs": 5, "num_envs": 64}))


def test_the_interval_is_in_updates_unless_given_in_env_steps():
    default = resolve({})
    assert default.interval_in_updates and default.distill_interval_updates == 5000
    assert default.phase_period == 625  # 5000 updates at U = 8
    # whatever N, in updates: at 2048 envs the budget's U = 128 (config/budget.py) reaches them
    # in 40 vector steps
    assert resolve({"num_envs": 2048}).phase_period == 40
    env_steps = resolve({"distill_interval": 8192, "num_envs": 2048})
    assert not env_steps.interval_in_updates and env_steps.phase_period == 4
    with pytest.raises(ConfigError, match="give the phase interval once"):
        resolve({"distill_interval": 8192, "distill_interval_updates": 100})
    # a config saved before the interval in updates existed resumes as it ran
    from mjx_cikd.config import from_dict

    old = {k: v for k, v in default.to_dict().items()
           if k not in ("distill_interval_updates", "election_metric", "distill_target",
                        "election_rule", "distill_optimizer")}
    then = from_dict(dict(old, distill_interval=5000))
    assert then.phase_period == 40  # ceil(5000 / 128)
    assert then.election_metric == "train_returns" and then.distill_target == "hard"
    # before the election rule and the handover existed every phase point distilled, fresh
    assert (then.election_rule, then.distill_optimizer) == ("argmax", "fresh")
    assert from_dict(default.to_dict()) == default


def test_the_confident_rule_is_the_default_where_it_has_a_lead_to_test():
    """The shipped rule tests the best member's lead in standard errors: a random or worst
    teacher, or the reward rate (no standard error), distils at every phase point unless the
    user names a rule, and naming `confident` there is one clear error."""
    from mjx_cikd.config import replace

    assert resolve({"algo": "cikd"}).election_rule == "confident"
    assert resolve({"algo": "cikd", "election_metric": "train_returns"}).election_rule \
        == "confident"
    for implied in ({"teacher": "random"}, {"teacher": "worst"},
                    {"election_metric": "reward_rate"}):
        assert resolve({"algo": "cikd", **implied}).election_rule == "argmax"
        assert replace(resolve({"algo": "cikd"}), **implied).election_rule == "argmax"
        with pytest.raises(ConfigError, match="use --election_rule argmax"):
            resolve({"algo": "cikd", "election_rule": "confident", **implied})
    config, _ = config_from_args(["--teacher", "random"])
    assert config.election_rule == "argmax"
    # a rule the user gave stays, and a change of something else keeps it
    assert replace(resolve({"election_rule": "argmax"}), num_envs=64).election_rule == "argmax"
    assert replace(resolve({}), num_envs=64).election_rule == "confident"


@pytest.mark.parametrize("values, message", [
    ({"election_metric": "vibes"}, "--election_metric must be one of"),
    ({"teacher": "median"}, "--teacher must be one of"),
    ({"algo": "ensemble", "audit_election": True}, "audits the teacher election"),
    ({"widths": (32, 64), "hard_copy": True}, "cannot cross widths"),
    ({"hard_copy": True, "distill_parts": "policy"}, "--distill_parts does not apply"),
    ({"ada_threshold": 1.5}, "--ada_threshold must be in"),
    ({"distill_epochs": -1}, "--distill_epochs must be >= 0"),
])
def test_bad_cikd_controls_are_one_clear_error(values, message):
    with pytest.raises(ConfigError, match=message):
        resolve(values)


def test_profiles_are_found_after_a_plain_install(tmp_path, monkeypatch):
    """A non-editable install has no profiles/ beside the package: they come from
    <prefix>/share/mjx_cikd/profiles, where pyproject's data-files put them."""
    from mjx_cikd.config import flags

    installed = tmp_path / "share" / "mjx_cikd" / "profiles"
    installed.mkdir(parents=True)
    (installed / "tiny.toml").write_text('num_envs = 3\n')
    monkeypatch.setattr(flags, "PROFILE_DIRS", (tmp_path / "absent", installed))
    assert load_profile("tiny") == {"num_envs": 3}
    with pytest.raises(ConfigError, match="known: tiny"):
        load_profile("paper")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"share/mjx_cikd/profiles" = ["profiles/*.toml"]' in pyproject


def test_the_paper_profile_is_the_authors_code():
    """train_ensemble_sac.py: one env, one update per step, a phase every 5000 steps from 15k
    (t % 5000 == 0 and t > 10000), 5 epochs at batch 256 and lr 1e-3, one soft target step, no
    normaliser, log-std clipped to [-20, 2], 10k random steps, the paper's election statistic."""
    paper, _ = config_from_args(["--profile", "paper"])
    assert (paper.num_envs, paper.updates_per_step, paper.learning_starts) == (1, 1, 10_000)
    assert paper.interval_in_updates and paper.phase_period == 5000
    assert paper.distill_warmup == 15_000 and paper.distill_epochs == 5
    assert (paper.distill_batch_size, paper.distill_lr, paper.distill_target) == (256, 1e-3, "soft")
    assert not paper.normalize_obs and paper.log_std_bounds == "clip"
    assert paper.election_metric == "train_returns" and paper.return_window == 5
    # every phase point distils (train_ensemble_sac.py:401, 410), with the handover
    assert (paper.election_rule, paper.distill_optimizer) == ("argmax", "handover")


# --------------------------------------------------------------------------------------------
# --help from the fields' descriptions


def test_every_field_says_what_it_sets_and_every_count_of_time_its_unit():
    from mjx_cikd.config import FIELDS
    from mjx_cikd.config.schema import ENV_STEPS, UPDATES

    assert all(f.metadata["meaning"].strip() for f in FIELDS.values())
    timed = ("total_steps", "learning_starts", "distill_warmup", "distill_interval",
             "distill_interval_updates", "log_every", "eval_every", "checkpoint_every",
             "selection_epsilon_steps", "episode_length")
    assert {n: FIELDS[n].metadata["unit"].split(" of ")[0] for n in timed} == dict(
        {n: ENV_STEPS for n in timed}, distill_interval_updates=UPDATES)


def _help(name: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_train_help_gives_each_flag_its_meaning_values_unit_and_default():
    text = _help("train")
    assert text.startswith("usage: train.py") and "Train an ensemble of SAC agents" in text
    metric = text[text.index("--election_metric"):text.index("--audit_election")]
    assert "{train_returns,reward_rate,eval}" in metric
    for value, meaning in (("train_returns", "the paper's: mean of member k's last M"),
                           ("reward_rate", "mean reward per env step since the last phase"),
                           ("eval", "the periodic deterministic evaluation (--eval_episodes "
                                    "per member)")):
        assert f"{value}: {meaning}" in " ".join(metric.split())
    assert "default: eval; why: at N = 64 and 256" in " ".join(metric.split())
    interval = text[text.index("--distill_interval_updates"):
                    text.index("\n  --distill_interval INT")]
    assert "unit: SAC updates; default: 5000" in " ".join(interval.split())
    assert "--hard_copy [BOOL]" in text and "(--hard_copy alone means true)" in text


def test_reproduce_help_shows_only_what_it_accepts():
    text = _help("reproduce")
    assert text.startswith("usage: reproduce.py SET") and "Run an experiment set" in text
    assert "Train an ensemble" not in text
    options = {line.split()[0] for line in text.splitlines() if line.startswith("  --")}
    assert {"--tasks", "--seeds", "--out", "--profile", "--teacher", "--total_steps"} <= options
    refused = {"--resume", "--overwrite", "--coordinator", "--num_processes", "--process_id",
               "--run_dir", "--num_seeds", "--env", "--algo", "--ensemble_size", "--widths",
               "--extra_updates"}
    assert not options & refused


def test_a_bare_bool_flag_means_true_and_still_takes_a_value():
    config, _ = config_from_args(["--algo", "ensemble", "--extra_updates", "--normalize_obs",
                                  "false", "--tensorboard"])
    assert config.extra_updates is True and config.normalize_obs is False
    assert config.tensorboard is True
    config, _ = config_from_args(["--hard_copy", "--num_envs", "8", "--stagger_episodes=no"])
    assert config.hard_copy is True and config.num_envs == 8 and not config.stagger_episodes


@pytest.mark.parametrize("argv, message", [
    (["--widths", "256", "1024"], "--widths takes one comma-separated list: --widths 256,1024 "
                                  "(not --widths 256 1024)"),
    (["--widths=256", "1024"], "--widths 256,1024 (not --widths 256 1024)"),
    (["--num-envs", "8"], "unrecognized arguments: --num-envs 8 (did you mean --num_envs?)"),
    (["--no-normalize-obs"], "(did you mean --normalize_obs false?)"),
    (["--no_tensorboard"], "(did you mean --tensorboard false?)"),
])
def test_tyro_spellings_name_the_one_that_works(argv, message):
    with pytest.raises(ConfigError) as err:
        config_from_args(argv)
    assert message in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------
# flags override the profile


def test_a_phase_interval_flag_overrides_the_profile_in_either_unit():
    tiny, _ = config_from_args(["--profile", "tiny", "--distill_interval_updates", "100",
                                "--total_steps", "4096"])
    assert tiny.interval_in_updates and tiny.distill_interval_updates == 100
    assert tiny.phase_period == 50  # 100 updates at U = 2
    parallel, _ = config_from_args(["--profile", "parallel", "--distill_interval", "204800"])
    assert not parallel.interval_in_updates and parallel.phase_period == 100  # N = 2048
    assert parallel.distill_interval_updates == 0
    with pytest.raises(ConfigError, match="give the phase interval once"):
        config_from_args(["--profile", "tiny", "--distill_interval_updates", "100",
                          "--distill_interval", "256"])
    # reproduce.py passes the profile and the flags apart: the profile without what flags override
    from mjx_cikd.config import shadowed

    assert shadowed({"distill_interval": 128, "gamma": 0.9, "seed": 1},
                    {"distill_interval_updates": 100, "seed": 2}) == {"gamma": 0.9}


# --------------------------------------------------------------------------------------------
# budgets that train nothing, run no phase, or mostly evaluate


def test_the_budget_counts_updates_and_phases_as_the_trainer_schedules_them():
    from mjx_cikd.config.checks import has_phase, updating_steps

    # N = 8: vector step i (from 1) updates once its 8 i env steps reach learning_starts = 64
    base = dict(load_profile("tiny"), log_every=4096)  # one chunk: the run ends at its budget
    assert updating_steps(resolve(dict(base, total_steps=64))) == 1
    assert updating_steps(resolve(dict(base, total_steps=56))) == 0
    assert updating_steps(resolve(dict(base, total_steps=60))) == 1  # rounded up to 64
    # a phase every 128 env steps (16 vector steps), none before 128 env steps
    assert has_phase(resolve(dict(base, total_steps=128)))
    assert not has_phase(resolve(dict(base, total_steps=120)))
    late = dict(base, distill_warmup=0, distill_interval=512)
    assert not has_phase(resolve(dict(late, total_steps=504)))
    assert has_phase(resolve(dict(late, total_steps=512)))
    # in SAC updates the counter starts with the updates: 16 updates at U = 2 are 8 vector
    # steps from the first updating one (step 8, at 64 env steps): the 15th
    updates = dict(base, distill_warmup=0, distill_interval=0, distill_interval_updates=16)
    assert not has_phase(resolve(dict(updates, total_steps=14 * 8)))
    assert has_phase(resolve(dict(updates, total_steps=15 * 8)))


def test_a_budget_that_trains_nothing_is_refused_and_one_without_a_phase_warned():
    from mjx_cikd.config import budget_warnings, check_budget

    with pytest.raises(ConfigError, match="--total_steps 4096 ends before --learning_starts "
                                          "5000: no member would ever be updated"):
        check_budget(resolve({"total_steps": 4096, "learning_starts": 5000}))
    check_budget(resolve({"total_steps": 5000, "learning_starts": 5000}))
    assert budget_warnings(resolve({}), 1000) == []
    # the defaults before Playground's (64 envs, 5,000 warm-up steps): no other warning comes
    old = {"total_steps": 8000, "learning_starts": 5000, "num_envs": 64}
    for values in (old, dict(old, algo="ensemble", extra_updates=True)):
        (note,) = budget_warnings(resolve(values), 1000)
        assert "--total_steps 8000 ends before --distill_warmup 10000: no phase will run" in note
    # no phases anyway
    assert budget_warnings(resolve(dict(old, algo="ensemble")), 1000) == []


def test_evaluation_past_half_the_run_is_warned():
    from mjx_cikd.config import budget_warnings
    from mjx_cikd.config.checks import eval_share

    # the case: --eval_every 1000 at 2048 envs evaluates at every vector step
    config = resolve({"num_envs": 2048, "eval_every": 1000, "distill_interval": 204_800})
    assert eval_share(config, 1000) == pytest.approx(1000 / 1129)  # U = 128 at 2048 envs
    (note,) = budget_warnings(config, 1000)
    assert note.startswith("evaluation would take about 89% of the run") and "raise --eval_every" \
        in note
    assert budget_warnings(config, 5) == []  # T = 5: 5 steps per 129 of training
    for argv in ([], ["--profile", "parallel"], ["--profile", "paper"],
                 ["--profile", "playground"]):
        shipped = config_from_args(argv)[0]  # T: the tasks' 1000
        assert budget_warnings(shipped, shipped.episode_length or 1000) == [], argv
    # the tests' preset distils every 16 vector steps of T = 100, so that a short run distils:
    # its election's evaluations are most of its sequential steps, and it says so
    (note,) = budget_warnings(config_from_args(["--profile", "tiny"])[0], 100)
    assert note.startswith("evaluation would take about 68% of the run") and "phase point" in note


def test_the_readme_knob_table_gives_the_schema_defaults():
    """The README's table points to the fields' descriptions; its defaults must not drift."""
    from mjx_cikd.config import FIELDS

    text = (ROOT / "README.md").read_text()
    table = text[text.index("| flag | default | meaning |"):].split("\n\n")[0].splitlines()[2:]
    checked = 0
    for row in table:
        flags, defaults = row.split(" | ")[:2]
        names = [f[2:] for f in re.findall(r"`(--\w+)`", flags)]
        given = [d.split(" (")[0].strip("` ").strip('"') for d in defaults.split(" / ")]
        assert len(names) == len(given), row
        for name, text_default in zip(names, given):
            default = FIELDS[name].default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert float(text_default) == default, (name, text_default)
            else:
                assert text_default == str(default).lower() if isinstance(default, bool) \
                    else text_default == default, (name, text_default)
            checked += 1
    assert checked >= 30
