"""Issue 29's study (`experiments/scaling.py`): each arm runs the update budget it is named for,
Brax's SAC at the same N scales its batch and updates by our rule, an ablation drops exactly its
part of the recipe, and the report scores each arm against Brax at its own N."""

import importlib.util
import pathlib

from test_baseline import _write

from mjx_cikd.bench import baseline
from mjx_cikd.config import config_from_args
from mjx_cikd.config.budget import replay_ratio
from mjx_cikd.experiments import scaling

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(system, tmp_path):
    """The Config `scripts/train.py` builds from the arm's command line."""
    argv = system.command("CartpoleSwingup", 0, 1_000_000, tmp_path / "run")
    return config_from_args(argv[2:])[0]


def test_each_arm_runs_the_budget_it_is_named_for(tmp_path):
    at = {n: {a: _config(s, tmp_path) for a, s in scaling.arms(n).items() if a != "brax"}
          for n in (128, 2048)}
    budget = {a: (c.batch_size, c.updates_per_step, replay_ratio(c)) for a, c in at[2048].items()}
    assert budget["old"] == (512, 8, 2.0)
    assert budget["batch"] == (2048, 32, 32.0)
    assert budget["updates"] == (512, 128, 32.0)
    assert budget["recipe"] == (2048, 32, 32.0)
    assert budget["ensemble"] == budget["cikd"] == (512, 128, 32.0)  # the shipped budget
    assert [(at[2048][a].algo, at[2048][a].ensemble_size) for a in ("batch", "ensemble",
                                                                     "cikd")] == [
        ("sac", 1), ("ensemble", 3), ("cikd", 3)]
    recipe = at[2048]["recipe"]
    assert (recipe.n_step, recipe.critic_atoms, recipe.twin_q, recipe.policy_delay) == (
        3, 101, "mean", 2)
    assert (recipe.explore_std_min, recipe.explore_std_max, recipe.weight_decay) == (0.5, 2.0,
                                                                                     1e-3)
    # at 128 envs every way of keeping the ratio is the shipped config
    assert {(c.batch_size, c.updates_per_step) for a, c in at[128].items()
            if a in ("old", "batch", "updates")} == {(512, 8)}
    for config in at[2048].values():  # every evaluation falls on a log point, on one grid
        assert config.eval_every == config.log_every == scaling.EVAL_EVERY
        assert config.eval_every % config.num_envs == 0 and config.num_envs == 2048


def test_brax_at_the_same_n_scales_its_batch_and_updates_as_ours(tmp_path):
    spec = importlib.util.spec_from_file_location("brax_sac", ROOT / "scripts" / "brax_sac.py")
    brax_sac = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(brax_sac)
    for n in (128, 512, 2048):
        ours = _config(scaling.arms(n)["batch"], tmp_path)
        brax = scaling.arms(n)["brax"].command("CartpoleSwingup", 0, 10, tmp_path)
        assert brax[brax.index("--num_envs") + 1] == str(n)
        theirs = brax_sac.scaled(n, int(brax[brax.index("--batch_size") + 1]))
        assert (theirs["num_envs"], theirs["batch_size"], theirs["grad_updates_per_step"]) == (
            n, ours.batch_size, ours.updates_per_step)
    # without a batch, Brax's follows our derivation, whatever it ships
    at_2048 = _config(baseline.System("shipped", "s", (), num_envs=2048), tmp_path)
    assert (brax_sac.scaled(2048)["batch_size"], brax_sac.scaled(2048)["grad_updates_per_step"]) \
        == (at_2048.batch_size, at_2048.updates_per_step)


def test_each_ablation_drops_its_part_of_the_recipe_and_nothing_else(tmp_path):
    full = _config(scaling.arms(2048)["recipe"], tmp_path)
    shipped = _config(scaling.arms(2048)["batch"], tmp_path)
    fields = {"n-step": ("n_step",), "C51": ("critic_atoms",), "twin mean": ("twin_q",),
              "policy delay": ("policy_delay",),
              "per-env scale": ("explore_std_min", "explore_std_max"),
              "AdamW": ("weight_decay",)}
    assert set(fields) == set(scaling.PARTS)
    every = {f for names in fields.values() for f in names}
    for part, names in fields.items():
        less = _config(scaling.arms(2048)[f"recipe-{part}"], tmp_path)
        for name in every:
            want = getattr(shipped if name in names else full, name)
            assert getattr(less, name) == want, (part, name)


def test_the_report_scores_each_arm_against_brax_at_its_own_n(tmp_path):
    root = tmp_path / "runs"
    arms = {n: scaling.arms(n) for n in (128, 2048)}
    for seed in range(3):
        for n, brax_end, ours_end in ((128, 500.0, 900.0), (2048, 900.0, 400.0)):
            _write(root / "CartpoleSwingup" / arms[n]["brax"].slug / f"seed{seed}",
                   [(100_352, 100.0, 20.0), (200_704, brax_end + seed, 40.0)], ours=False)
            _write(root / "CartpoleSwingup" / arms[n]["batch"].slug / f"seed{seed}",
                   [(100_352, 100.0, 30.0), (200_704, ours_end + seed, 50.0)], ours=True)
    systems = tuple(arms[n][a] for n in (128, 2048) for a in ("brax", "batch"))
    table, png = baseline.report(root, tmp_path / "figs", ("CartpoleSwingup",), systems,
                                 total_steps=200_704, name="screen", thresholds=scaling.THRESHOLDS)
    text = table.read_text()
    assert table.name == "screen.md" and png.is_file()
    assert "| CartpoleSwingup (>= 600) | Vanilla-SAC, ratio kept by B (N=128) | 3 |" in text
    # above Brax at 128 envs, below it at 2048: each against its own N's Brax
    assert ("| CartpoleSwingup | Vanilla-SAC, ratio kept by B (N=128) | Brax SAC, ratio kept by B "
            "(N=128) | 1 |") in text
    assert ("| CartpoleSwingup | Vanilla-SAC, ratio kept by B (N=2048) | Brax SAC, ratio kept by "
            "B (N=2048) | 0 |") in text


def _finals(root, by_arm, n=2048):
    """Finished runs whose last evaluations are `by_arm` {arm: [final per seed]}."""
    for arm, ends in by_arm.items():
        for seed, end in enumerate(ends):
            _write(root / "CartpoleSwingup" / scaling.arms(n)[arm].slug / f"seed{seed}",
                   [(100_352, 100.0, 20.0), (200_704, end, 40.0)], ours=True)


def test_the_rules_choose_the_budget_and_the_recipe_from_the_records(tmp_path):
    # updates ahead of batch in every pair of seeds; the recipe level with it
    _finals(tmp_path / "a", {"batch": [300.0, 350.0, 620.0], "updates": [700.0, 650.0, 800.0],
                             "recipe": [640.0, 820.0, 690.0]})
    lines = scaling.decide(tmp_path / "a")
    assert "- Vanilla-SAC, ratio kept by B (N=2048): best 300, 350, 620 -> does not learn" in lines
    assert "- Vanilla-SAC, ratio kept by U (N=2048): best 700, 650, 800 -> learns" in lines
    rule3 = next(line for line in lines if line.startswith("Rule 3"))
    assert "P = 1 [1, 1]: wins -> the budget is `updates`" in rule3
    rule4 = next(line for line in lines if line.startswith("Rule 4"))
    assert rule4.startswith("Rule 4: `recipe` over `updates`") and "stays out" in rule4
    # level budgets keep the shipped one; a recipe ahead of it enters, and an ablation decides
    # a part only when it has run
    _finals(tmp_path / "b", {"batch": [500.0, 600.0, 700.0], "updates": [550.0, 650.0, 580.0],
                             "recipe": [900.0, 910.0, 920.0], "recipe-n-step": [100.0, 90.0, 80.0],
                             "recipe-C51": [905.0, 890.0, 915.0]})
    lines = scaling.decide(tmp_path / "b")
    assert "-> the budget is `batch` (shipped)" in next(x for x in lines if x.startswith("Rule 3"))
    assert "the recipe enters `parallel`" in next(x for x in lines if x.startswith("Rule 4"))
    assert any(x.startswith("- n-step: ") and x.endswith("-> stays") for x in lines)
    assert any(x.startswith("- C51: ") and x.endswith("-> goes") for x in lines)
    assert "- AdamW: waits for the `recipe-AdamW` arm" in lines
    # nothing decided before both budgets have finished
    _finals(tmp_path / "c", {"batch": [500.0, 600.0, 700.0]})
    assert scaling.decide(tmp_path / "c")[-1] == "Rule 3 waits for the `batch` and `updates` arms."
