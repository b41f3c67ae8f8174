"""The SAC baseline against Brax's (issue 21): the critics' LayerNorm, Brax's softplus policy
scale and target entropy as options of our networks, the playground profile, and the study's
report read from run directories of both systems (synthetic records, in both formats)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
from conftest import tiny

from mjx_cikd.agent import networks, sac
from mjx_cikd.bench import baseline
from mjx_cikd.config import load_profile, resolve


def test_layer_norm_sits_in_the_critics_hidden_layers_only_when_asked():
    obs, act = jnp.ones((4, 3)), jnp.zeros((4, 1))
    plain = networks.Critic((16, 16)).init(jax.random.key(0), obs, act)
    normed = networks.Critic((16, 16), layer_norm=True).init(jax.random.key(0), obs, act)
    names = lambda p: {k for mlp in p["params"].values() for k in mlp}  # noqa: E731
    assert not any("LayerNorm" in n for n in names(plain))
    assert sum("LayerNorm" in n for n in names(normed)) == 2  # one per hidden layer


def test_softplus_scale_starts_wider_and_target_entropy_scales():
    obs = jnp.zeros((1, 3))
    stds = {}
    for bounds in ("smooth", "softplus"):
        actor = networks.Actor((16, 16), 2, bounds)
        params = jax.tree.map(jnp.zeros_like, actor.init(jax.random.key(0), obs))  # raw = 0
        stds[bounds] = float(jnp.exp(actor.apply(params, obs)[1]).mean())
    assert abs(stds["smooth"] - np.exp(-1.5)) < 1e-5
    assert abs(stds["softplus"] - (np.log(2.0) + 0.001)) < 1e-5  # softplus(0) + min_std
    made = sac.make_sac(tiny(target_entropy_scale=0.5), obs_size=3, action_size=4, width=16)
    assert made.target_entropy == -2.0


def test_the_playground_profile_is_playgrounds_sac_config():
    config = resolve(dict(load_profile("playground"), algo="sac", env="CartpoleSwingup"))
    assert (config.num_envs, config.batch_size, config.updates_per_step) == (128, 512, 8)
    assert config.actor_lr == config.critic_lr == config.alpha_lr == 1e-3
    assert config.critic_layer_norm and config.log_std_bounds == "softplus"
    assert config.target_entropy_scale == 0.5 and config.learning_starts == 8192


def test_the_shipped_sac_defaults_are_the_playground_profiles_and_the_old_ones_are_spelled_out():
    """The study chose Playground's SAC numbers as the defaults; the profile and the defaults agree
    on every SAC field, and the study's `ours-old` system still runs the defaults before it."""
    from mjx_cikd.config import Config, config_from_args

    profile = load_profile("playground")
    shipped = Config()
    for field in ("num_envs", "batch_size", "updates_per_step", "actor_lr", "critic_lr",
                  "alpha_lr", "gamma", "tau", "critic_layer_norm", "log_std_bounds",
                  "target_entropy_scale", "learning_starts", "normalize_obs"):
        assert getattr(shipped, field) == profile[field], field
    old, _ = config_from_args(list(baseline.OLD_DEFAULTS))
    assert (old.num_envs, old.batch_size, old.actor_lr, old.learning_starts) == (64, 256, 3e-4,
                                                                                   5000)
    assert not old.critic_layer_norm and old.log_std_bounds == "smooth"
    assert old.target_entropy_scale == 1.0 and old.alpha_lr == old.critic_lr == 3e-4
    (mine,) = [s for s in baseline.SYSTEMS if s.slug == "ours-defaults"]
    assert mine.argv == ()


def _write(run_dir, evals, ours: bool):
    """A finished run: `evals` [(env_steps, return, wall_s)], as ours or Brax's script write it
    (ours with a mean member 100 below the best, and the budget each records)."""
    run_dir.mkdir(parents=True)
    rows = []
    for steps, ret, wall in evals:
        if ours:  # our wall-clock sits in the log record of the same step
            rows.append(dict(event="log", seed=0, env_steps=steps, wall_s=wall))
            rows.append(dict(event="eval", seed=0, env_steps=steps, best=ret, mean=ret - 100))
        else:
            rows.append(dict(event="eval", seed=0, env_steps=steps, best=ret, wall_s=wall))
    rows.append(dict(event="run", phase="end"))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / ("run.json" if ours else "config.json")).write_text(json.dumps(
        dict(budget=dict(updates_per_env_step=0.0625)) if ours
        else dict(num_envs=128, grad_updates_per_step=8)))


def test_the_report_reads_both_systems_and_scores_thresholds(tmp_path):
    root = tmp_path / "runs"
    for seed in range(3):
        _write(root / "ReacherEasy" / "brax" / f"seed{seed}",
               [(10_000, 100.0, 20.0), (20_000, 500.0, 40.0), (30_000, 800.0 + seed, 60.0)],
               ours=False)
        _write(root / "ReacherEasy" / "ours-playground" / f"seed{seed}",
               [(10_000, 750.0, 30.0), (20_000, 900.0, 45.0), (30_000, 950.0 + seed, 60.0)],
               ours=True)
    (root / "ReacherEasy" / "brax" / "seed9").mkdir()  # unfinished: left out
    seed = baseline.load_seed(root / "ReacherEasy" / "ours-playground" / "seed0")
    assert baseline.reach(seed, 700.0) == (10_000.0, 30.0)
    np.testing.assert_array_equal(baseline.on_grid(seed, np.array([5_000, 20_000, 25_000])),
                                  [np.nan, 900.0, 900.0])
    systems = tuple(s for s in baseline.SYSTEMS if s.slug in ("brax", "ours-playground"))
    # a budget of 25k: the last evaluations (30k) fall past it, as a run's last vector step does,
    # and the curves and areas still reach them
    table, png = baseline.report(root, tmp_path / "figs", ("ReacherEasy",), systems,
                                 total_steps=25_000)
    text = table.read_text()
    assert png.is_file() and png.stat().st_size > 10_000
    ours = next(line for line in text.splitlines() if "--profile playground" in line
                and line.startswith("| ReacherEasy"))
    assert "| 3 | 951 |" in ours and "| 10,000 (3/3) | 30 (3/3) |" in ours
    assert (seed.updates_per_env_step, baseline.load_seed(
        root / "ReacherEasy" / "brax" / "seed0").updates_per_env_step) == (0.0625, 8 / 128)
    # the mean member's final return, then the areas: the mean of each curve on the 10k grid
    assert ours.endswith("| 851 | [850, 852] | 867 | [866.7, 867.3] | 767 | [766.7, 767.3] |"), ours
    brax = next(line for line in text.splitlines() if "Brax" in line and "(>= 700)" in line)
    assert "| 30,000 (3/3) | 60 (3/3) |" in brax
    assert "| ReacherEasy | Vanilla-SAC (--profile playground) | Brax SAC (Playground config) " \
           "| 1 |" in text  # every one of ours ends above every Brax run
