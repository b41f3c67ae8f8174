"""The experiment sets and scripts/reproduce.py: planning, the typed variant record, the skip /
resume / reuse decisions, refused flags, and a whole reproduce -> plot round on a probe task."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY

from mjx_cikd.config import ConfigError, field_types
from mjx_cikd.experiments import plan as experiments
from mjx_cikd.experiments.plan import SETS, VariantRecord
from mjx_cikd.host.run_dir import read_metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _script(*args, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _plan(set_name, out, tasks=("ProbeTarget",), seeds=2, reuse=True, variants=None, **flags):
    profile = {k: v for k, v in TINY.items() if k not in ("env",)}
    return experiments.plan(set_name, list(tasks), seeds, pathlib.Path(out), flags,
                            profile=profile, reuse=reuse, variants=variants)


def _finish(p, steps=None):
    """What a finished run leaves: its config and a metrics.jsonl ending in a run/end record."""
    p.run_dir.mkdir(parents=True, exist_ok=True)
    (p.run_dir / "config.json").write_text(json.dumps(p.config.to_dict()))
    end = steps if steps is not None else p.config.total_iters * p.config.num_envs
    (p.run_dir / "metrics.jsonl").write_text(
        json.dumps(dict(event="run", phase="start")) + "\n"
        + ("" if steps is False else json.dumps(dict(event="run", phase="end", env_steps=end))
           + "\n"))


# --------------------------------------------------------------------------------------
# scripts/reproduce.py on the command line


def test_reproduce_refuses_bad_sets_and_flags_with_one_line():
    for argv in (["fig9"], ["fig1", "--algo", "sac"], ["fig1", "--bogus", "1"],
                 ["teacher", "--teacher", "random"], ["election", "--audit_election", "true"],
                 ["fig1", "--overwrite"], ["fig1", "--coordinator", "localhost:1"],
                 ["noise", "--variants", "SAC-CIKD_eval_argmax,Vanilla-SAC"]):
        proc = _script(ROOT / "scripts" / "reproduce.py", *argv, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def test_reproduce_then_plot_writes_runs_figure_and_table(tmp_path):
    runs, figs = tmp_path / "runs", tmp_path / "figs"
    proc = _script(ROOT / "scripts" / "reproduce.py", "fig1", "--tasks", "ProbeTarget",
                   "--seeds", "2", "--total_steps", "512", "--profile", "tiny", "--out", runs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    variants = {}
    for meta_path in sorted((runs / "fig1" / "ProbeTarget").glob("*/variant.json")):
        meta = json.loads(meta_path.read_text())
        assert meta["set"] == "fig1" and meta["task"] == "ProbeTarget"
        config = json.loads((meta_path.parent / "config.json").read_text())
        assert config["num_seeds"] == 2 and config["env"] == "ProbeTarget"
        variants[meta["variant"]] = (config, meta_path.parent)
    assert set(variants) == {"Vanilla-SAC", "Ensemble-SAC", "SAC-CIKD"}
    assert [variants[v][0]["algo"] for v in ("Vanilla-SAC", "Ensemble-SAC", "SAC-CIKD")] == [
        "sac", "ensemble", "cikd"]
    assert [variants[v][0]["ensemble_size"] for v in ("Vanilla-SAC", "Ensemble-SAC",
                                                      "SAC-CIKD")] == [1, 3, 3]

    proc = _script(ROOT / "scripts" / "plot.py", runs, "--out", figs, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = figs / "fig1.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (figs / "fig1.md").read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ProbeTarget |")]
    best = {r[1]: r for r in rows if r[2] == "best member"}
    assert set(best) == set(variants)
    assert len(best) == sum(1 for r in rows if r[2] == "best member")  # one row per variant
    # the table's final return: mean over seeds of the best member at the last evaluation
    for name, (_, run_dir) in variants.items():
        evals = read_metrics(run_dir, "eval")
        last = max(r["env_steps"] for r in evals)
        final = np.mean([r["best"] for r in evals if r["env_steps"] == last])
        assert float(best[name][5]) == pytest.approx(final, rel=1e-3, abs=1e-4), name
    assert "## Aggregate over seeds (rliable)" in table

    # the same command again: every run is finished, nothing trains
    proc = _script(ROOT / "scripts" / "reproduce.py", "fig1", "--tasks", "ProbeTarget",
                   "--seeds", "2", "--total_steps", "512", "--profile", "tiny", "--out", runs)
    assert proc.returncode == 0 and proc.stderr.count("skipped") == 3, proc.stderr[-3000:]


# --------------------------------------------------------------------------------------
# what makes two runs one experiment


def test_a_finished_baseline_is_the_same_experiment_whatever_the_distillation_fields_say():
    same = experiments.comparable

    def config(**kw):
        return dict(algo="sac", extra_updates=False, distill_steps=64, distill_lr=3e-4,
                    batch_size=256, **kw)

    base = config()
    assert same(base) == same(config() | dict(distill_steps=256, distill_lr=1e-3))
    assert same(base) != same(config() | dict(batch_size=128))
    cikd = config() | dict(algo="cikd")
    assert same(cikd) != same(cikd | dict(distill_lr=1e-3))
    extra = config() | dict(extra_updates=True)
    assert same(extra) == same(extra | dict(distill_lr=1e-3))  # (extra) updates use SAC's lr
    assert same(extra) != same(extra | dict(distill_steps=256))


def test_the_fields_a_baseline_never_reads_come_from_the_config():
    fields = set(field_types())
    unread = set(experiments.DISTILL_FIELDS)
    assert unread <= fields
    assert {"distill_interval_updates", "distill_interval", "teacher", "election_metric",
            "audit_election", "hard_copy", "ada_threshold", "policy_selection",
            "selection_temperature"} <= unread
    assert not unread & {"batch_size", "algo", "ensemble_size", "updates_per_step"}
    same = experiments.comparable
    sac = dict(algo="sac", extra_updates=False, batch_size=256, teacher="best",
               distill_interval_updates=5000, policy_selection="uniform")
    assert same(sac) == same(sac | dict(teacher="worst", distill_interval_updates=100,
                                        policy_selection="softmax"))
    extra = sac | dict(extra_updates=True)
    assert same(extra) == same(extra | dict(teacher="worst"))
    assert same(extra) != same(extra | dict(distill_interval_updates=100))  # when phases come
    cikd = sac | dict(algo="cikd")
    assert same(cikd) != same(cikd | dict(policy_selection="softmax"))


# --------------------------------------------------------------------------------------
# the sets


def test_every_set_plans_valid_configs_with_its_variants_fields(tmp_path):
    expected = {
        "teacher": ("teacher", ["best", "random", "worst"]),
        "parts": ("distill_parts", ["both", "policy", "critic", "both"]),
        "selection": ("policy_selection", ["uniform", "softmax", "eps_greedy"]),
        "schedule": ("distill_schedule", ["fixed", "ada"]),
        "election": ("election_metric", ["train_returns", "reward_rate", "eval"]),
        "cikd5": ("algo", ["sac", "ensemble", "cikd", "cikd"]),
        "target": ("distill_target", ["soft", "hard"]),
    }
    for name, exp in SETS.items():
        planned = _plan(name, tmp_path / "runs", tasks=("ProbeTarget", "ProbeConstant"))
        assert len(planned) == 2 * len(exp.variants)
        assert [p.task for p in planned[::len(exp.variants)]] == ["ProbeTarget", "ProbeConstant"]
        for p in planned:
            assert p.action == "train" and p.config.num_seeds == 2 and p.config.env == p.task
            assert p.run_dir == tmp_path / "runs" / name / p.task / p.variant.slug
            for field, value in p.variant.values.items():
                assert getattr(p.config, field) == value, (name, p.variant.name, field)
        assert len({p.variant.slug for p in planned}) == len(exp.variants)
        if name in expected:
            field, values = expected[name]
            assert [getattr(p.config, field) for p in planned[:len(exp.variants)]] == values
    parts = _plan("parts", tmp_path / "runs")
    assert [p.config.hard_copy for p in parts] == [False, False, False, True]
    assert all(p.config.audit_election for p in _plan("election", tmp_path / "runs"))
    cikd5 = _plan("cikd5", tmp_path / "runs")
    assert [p.config.teacher for p in cikd5[2:]] == ["best", "random"]
    assert SETS["cikd5"].curves == "best+worst"
    study = {p.variant.name: p.config for p in _plan("study", tmp_path / "runs")}
    # every question of a set's figure draws variants of that set, and each variant is drawn
    for exp in SETS.values():
        named = [n for panel in exp.panels for n in panel.variants]
        assert set(named) <= {v.name for v in exp.variants}
        assert not exp.panels or set(named) == {v.name for v in exp.variants}
    assert [len(panel.variants) for panel in SETS["study"].panels] == [5, 4, 4]
    assert [c.distill_interval_updates for n, c in study.items() if "(I=" in n] == [
        500, 1500, 4000]
    assert [n for n in study if "(I=" in n] == [
        "SAC-CIKD (I=500)", "SAC-CIKD (I=1500)", "SAC-CIKD (I=4000)"]
    # the controls distil at the middle interval, in SAC updates
    assert {c.distill_interval_updates for n, c in study.items()
            if c.algo == "cikd" and "(I=" not in n} == {1500}
    assert all(c.distill_interval == 0 for c in study.values() if c.algo == "cikd")
    assert [n for n, c in study.items() if c.algo == "cikd" and c.election_rule != "argmax"] == [
        "SAC-CIKD (confident election)"]
    control = study["Ensemble-SAC (lr 3e-4, 1e-3 after warm-up)"]
    handover = study["SAC-CIKD (lr 3e-4, handover at 1e-3)"]
    assert control.actor_lr == handover.actor_lr == 3e-4 and control.algo == "ensemble"
    assert control.lr_after_warmup == handover.distill_lr == 1e-3
    assert handover.distill_optimizer == "handover"
    noise = _plan("noise", tmp_path / "runs")
    assert all(p.config.audit_election for p in noise)
    assert [(p.config.election_metric, p.config.election_rule) for p in noise] == [
        ("train_returns", "argmax"), ("train_returns", "confident"), ("eval", "argmax"),
        ("eval", "confident"), ("reward_rate", "argmax")]


def test_variants_runs_only_the_named_ones_each_in_its_place_in_the_set(tmp_path):
    planned = _plan("noise", tmp_path / "runs", tasks=("ProbeTarget", "ProbeConstant"),
                    variants=["SAC-CIKD_eval_confident", "SAC-CIKD_train_returns_argmax"])
    # the set's order, not the flag's, and each run's record keeps its place in the whole set
    assert [(p.task, p.variant.slug, p.order) for p in planned] == [
        ("ProbeTarget", "SAC-CIKD_train_returns_argmax", 0),
        ("ProbeTarget", "SAC-CIKD_eval_confident", 3),
        ("ProbeConstant", "SAC-CIKD_train_returns_argmax", 0),
        ("ProbeConstant", "SAC-CIKD_eval_confident", 3)]
    assert planned[1].record().order == 3
    assert [p.config.election_rule for p in planned[:2]] == ["argmax", "confident"]
    for names in (["Vanilla-SAC"], ["SAC-CIKD (eval, argmax)"], []):  # a legend is not a name
        with pytest.raises(ConfigError, match="--variants: .*SAC-CIKD_eval_argmax"):
            _plan("noise", tmp_path / "runs", variants=names)


def test_each_set_refuses_the_fields_it_defines(tmp_path):
    for name, flag, value in [("fig1", "algo", "sac"), ("fig4", "hidden_width", 64),
                              ("teacher", "teacher", "worst"), ("parts", "hard_copy", True),
                              ("parts", "distill_parts", "policy"),
                              ("selection", "policy_selection", "softmax"),
                              ("schedule", "distill_schedule", "ada"),
                              ("election", "election_metric", "eval"),
                              ("election", "audit_election", False),
                              ("cikd5", "teacher", "random"), ("fig1", "num_seeds", 3)]:
        with pytest.raises(ConfigError, match=f"--{flag}"):
            _plan(name, tmp_path, **{flag: value})
    # a field only other sets define passes through
    assert all(p.config.teacher == "worst" for p in _plan("fig3", tmp_path, teacher="worst"))
    with pytest.raises(ConfigError, match="unknown experiment set"):
        _plan("fig9", tmp_path)
    with pytest.raises(ConfigError, match="twice"):
        _plan("fig1", tmp_path, tasks=("ProbeTarget", "ProbeTarget"))


# --------------------------------------------------------------------------------------
# the variant record, and skip / resume / restart / reuse


def test_the_variant_record_round_trips_and_reads_the_older_files(tmp_path):
    p = _plan("fig4", tmp_path)[3]
    record = p.record()
    assert record.member_labels == ("(member) SAC-CIKD (256)", "(member) SAC-CIKD (1024)")
    assert record.widths == (256, 1024) and record.curves == "members" and not record.baseline
    record.write(tmp_path / "r")
    assert VariantRecord.read(tmp_path / "r") == record
    assert VariantRecord.read(tmp_path / "nothing") is None
    # a variant.json as reproduce.py wrote it before the record had a type
    old = dict(set="fig1", set_title="t", curves="best+worst", task="ProbeTarget", task_order=0,
               variant="Vanilla-SAC", order=0, baseline=True, algo="sac", ensemble_size=1,
               widths=[32], member_labels=["Vanilla-SAC"], seeds=2, something_else=1)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "variant.json").write_text(json.dumps(old))
    back = VariantRecord.read(tmp_path / "old")
    assert back.widths == (32,) and back.reused_from is None and back.baseline
    assert experiments.member_labels("Vanilla-SAC (256)", (256,)) == ["Vanilla-SAC (256)"]


def test_finished_runs_are_skipped_unfinished_ones_resume_or_restart_and_twins_reused(tmp_path):
    out = tmp_path / "runs"
    sac, ens, cikd = _plan("fig1", out)
    _finish(sac)
    _finish(ens, steps=False)  # started, never finished, no checkpoint
    _finish(cikd, steps=False)
    (cikd.run_dir / "checkpoints" / "64").mkdir(parents=True)  # a complete step, as orbax lists
    assert [p.action for p in _plan("fig1", out)] == ["skip", "restart", "resume"]
    # a longer run resumes the shorter one: total_steps is not part of the experiment
    longer = _plan("fig1", out, total_steps=4096)
    assert [p.action for p in longer] == ["restart", "restart", "resume"]

    # fig3's K=3 and teacher's best teacher are fig1's SAC-CIKD: reused once that one finished
    _finish(cikd)
    fig3 = _plan("fig3", out)
    assert [p.action for p in fig3] == ["train", "reuse", "train"]
    assert fig3[1].source == cikd.run_dir
    assert _plan("teacher", out)[0].source == cikd.run_dir
    assert [p.action for p in _plan("fig3", out, reuse=False)] == ["train"] * 3
    experiments.execute(fig3[1], 1, 1)
    copied = VariantRecord.read(fig3[1].run_dir)
    assert copied.reused_from == str(cikd.run_dir) and copied.set == "fig3"
    assert (fig3[1].run_dir / "metrics.jsonl").read_text() == \
        (cikd.run_dir / "metrics.jsonl").read_text()
    assert [p.action for p in _plan("fig3", out)] == ["train", "skip", "train"]

    # a directory that holds another experiment is an error, named by its fields
    saved = json.loads((sac.run_dir / "config.json").read_text())
    (sac.run_dir / "config.json").write_text(json.dumps(saved | dict(batch_size=7)))
    with pytest.raises(ConfigError, match="batch_size"):
        _plan("fig1", out)
    # ...unless only fields a baseline never reads changed
    (sac.run_dir / "config.json").write_text(json.dumps(saved | dict(teacher="worst")))
    assert _plan("fig1", out)[0].action == "skip"
