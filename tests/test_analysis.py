"""Curves, tables and figures from run directories (mjx_cikd.experiments: runs, tables, figures,
election_figure, analysis; scripts/plot.py), rliable's aggregates (stats), and the election audit,
all on synthetic metrics.jsonl files."""

import dataclasses
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from mjx_cikd.experiments import analysis, election_figure, figures, runs, stats, tables
from mjx_cikd.experiments.plan import VariantRecord

ROOT = pathlib.Path(__file__).resolve().parent.parent
STEPS = [100, 200, 300]


def _write_run(run_dir, returns, record=None, extra=()):
    """A run directory: `returns` [S, T, K] as eval records at STEPS, a variant record, and any
    `extra` records (e.g. distill)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [dict(event="eval", seed=s, env_steps=t, returns=list(returns[s][i]),
                 best=max(returns[s][i])) for s in range(len(returns))
            for i, t in enumerate(STEPS)]
    with open(run_dir / "metrics.jsonl", "w") as f:
        for row in [*rows, *extra]:
            f.write(json.dumps(row) + "\n")
    if record is not None:
        record.write(run_dir)
    return run_dir


def _record(variant, order, baseline, k=1, set_name="demo", curves="best", task="ProbeTarget"):
    return VariantRecord(set=set_name, task=task, variant=variant, set_title="a demo set",
                         curves=curves, task_order=0, order=order, baseline=baseline,
                         algo="sac" if baseline else "cikd", ensemble_size=k, widths=(32,) * k,
                         member_labels=tuple(f"m{i}" for i in range(k)), seeds=2)


def _demo_runs(root):
    """A baseline reaching 3 at 300 steps, and a CIKD variant whose best member reaches 2, 4, 5."""
    base = [[[1.0], [2.0], [3.0]], [[1.0], [2.0], [3.2]]]
    cikd = [[[2.0, 0.0], [4.0, 1.0], [5.0, 1.0]], [[2.0, 1.0], [3.0, 4.0], [5.4, 1.0]]]
    _write_run(root / "demo" / "ProbeTarget" / "base", base, _record("Base", 0, True))
    _write_run(root / "demo" / "ProbeTarget" / "cikd", cikd,
               _record("CIKD", 1, False, k=2, curves="best+worst"))


def _rows(table, first="| ProbeTarget |"):
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith(first)]


# --------------------------------------------------------------------------------------
# rliable


def test_iqm_is_the_trimmed_mean_and_its_interval_holds_it():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    out = stats.iqm_ci({"a": x[:, None]}, reps=500)
    iqm, low, high = out["a"]
    assert iqm == pytest.approx(np.mean(np.sort(x)[2:6]))  # the middle half: 2, 3, 4, 5
    assert iqm == pytest.approx(scipy.stats.trim_mean(x, 0.25))
    assert low <= iqm <= high and high - low > 0
    # reproducible, and numpy's global generator is left where it was
    np.random.seed(7)
    before = np.random.random()
    np.random.seed(7)
    assert stats.iqm_ci({"a": x[:, None]}, reps=500) == out
    assert np.random.random() == before


def test_probability_of_improvement_of_a_dominating_variant_is_near_one():
    rng = np.random.default_rng(0)
    low, high = rng.normal(0, 1, (10, 1)), rng.normal(10, 1, (10, 1))
    out = stats.improvement_ci({"up": (high, low), "down": (low, high), "same": (low, low)},
                               reps=500)
    assert out["up"][0] == pytest.approx(1.0) and out["up"][1] > 0.9
    assert out["down"][0] == pytest.approx(0.0)
    assert out["same"][0] == pytest.approx(0.5)
    # against the definition: the share of pairs (x, y) with x > y
    x, y = np.array([[1.0], [3.0], [5.0]]), np.array([[2.0], [4.0]])
    p = stats.improvement_ci({"xy": (x, y)}, reps=200)["xy"][0]
    assert p == pytest.approx(np.mean(x[:, None, 0] > y[None, :, 0]))


def test_performance_profile_is_the_share_of_seeds_above_tau():
    scores = {"a": np.array([[1.0], [2.0], [3.0], [4.0]]), "b": np.array([[10.0], [10.0]])}
    out = stats.performance_profile(scores, [0.0, 2.5, 5.0], reps=300)
    np.testing.assert_allclose(out["a"].mean, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(out["b"].mean, [1.0, 1.0, 1.0])
    assert np.all(out["a"].low <= out["a"].mean) and np.all(out["a"].mean <= out["a"].high)
    assert out["a"].high[1] - out["a"].low[1] > 0  # four seeds: the middle is uncertain
    again = stats.performance_profile(scores, [0.0, 2.5, 5.0], reps=300)["a"]
    np.testing.assert_array_equal(again.low, out["a"].low)  # reproducible: rliable seeded


def test_improvement_pairs_compare_cikd_with_each_baseline_or_with_the_first_variant():
    s = {(t, v): np.arange(3.0) for t in ("A", "B") for v in ("sac", "ens", "cikd")}
    pairs = stats.improvement_pairs(["A", "B"], s, {"sac": True, "ens": True, "cikd": False})
    assert set(pairs) == {(t, "cikd", y) for t in ("A", "B", "all tasks") for y in ("sac", "ens")}
    assert pairs["all tasks", "cikd", "sac"][0].shape == (3, 2)
    only = stats.improvement_pairs(["A"], s, {"cikd": False, "ens": False})
    assert set(only) == {("A", "ens", "cikd")}
    # a set's own questions name their pairs; one whose variants did not run is left out
    named = stats.improvement_pairs(["A"], s, {"sac": True, "ens": True, "cikd": False},
                                    [("ens", "sac"), ("cikd", "ens"), ("cikd", "gone")])
    assert list(named) == [("A", "ens", "sac"), ("A", "cikd", "ens")]


def test_the_studys_questions_compare_each_variant_with_its_references():
    from mjx_cikd.experiments.sets import SETS

    pairs = SETS["study"].comparisons
    assert len(pairs) == len(set(pairs)) == 17
    for x in ("SAC-CIKD (I=500)", "SAC-CIKD (I=1500)", "SAC-CIKD (I=4000)"):
        assert (x, "Vanilla-SAC") in pairs and (x, "Ensemble-SAC") in pairs
    # the rule and the teacher against argmax at the same interval; the handover against a
    # fresh Adam and against the learning rate moved without distilling
    for pair in [("SAC-CIKD (confident election)", "SAC-CIKD (I=1500)"),
                 ("SAC-CIKD (random teacher)", "SAC-CIKD (I=1500)"),
                 ("SAC-CIKD (lr 3e-4, handover at 1e-3)", "SAC-CIKD (lr 3e-4, fresh Adam at 1e-3)"),
                 ("SAC-CIKD (lr 3e-4, handover at 1e-3)",
                  "Ensemble-SAC (lr 3e-4, 1e-3 after warm-up)"),
                 ("Ensemble-SAC (lr 3e-4, 1e-3 after warm-up)", "Ensemble-SAC (lr 3e-4)")]:
        assert pair in pairs, pair
    # never a variant at the authors' rates against one at the shipped rates
    assert not [p for p in pairs if ("lr 3e-4" in p[0]) != ("lr 3e-4" in p[1])]


# --------------------------------------------------------------------------------------
# curves and tables


def test_curves_tables_and_steps_to_threshold(tmp_path):
    _demo_runs(tmp_path)
    found = analysis.find_runs(tmp_path)
    assert [r.record.variant for r in found] == ["Base", "CIKD"]
    curves = [c for r in found for c in runs.curves_of(r)]
    assert [(c.variant, c.kind) for c in curves] == [("Base", "best"), ("CIKD", "best"),
                                                     ("CIKD", "worst")]
    np.testing.assert_allclose(curves[1].band.mean, [2.0, 4.0, 5.2])
    np.testing.assert_allclose(curves[2].band.mean, [0.5, 2.0, 1.0])

    def reach(table):
        return {(r[1], r[2]): r[7] for r in _rows(table)
                if len(r) == 10 and r[2] in ("best member", "worst member")}

    table = "\n".join(tables.final_table(found))  # to the baseline's final return, 3.1
    assert reach(table) == {("Base", "best member"): "300", ("CIKD", "best member"): "200",
                            ("CIKD", "worst member"): "—"}
    # beside the best member, the mean member's row (K = 2 only), and every curve's area: each
    # seed's mean over its evaluations (best: 11/3 and 11.4/3; mean member: 6.5/3 and 8.2/3)
    rows = {(r[1], r[2]): r for r in _rows(table) if len(r) == 10}
    assert ("Base", "mean member") not in rows
    assert rows["CIKD", "mean member"][5] == "3.1"
    assert float(rows["CIKD", "best member"][8]) == pytest.approx((11 + 11.4) / 6, abs=0.01)
    assert float(rows["CIKD", "mean member"][8]) == pytest.approx((6.5 + 8.2) / 6, abs=0.01)
    assert float(rows["Base", "best member"][8]) == pytest.approx((6 + 6.2) / 6, abs=0.01)
    assert "best baseline Base, final return 3.1" in table
    assert reach("\n".join(tables.final_table(found, 4.5)))[("CIKD", "best member")] == "300"
    given = reach("\n".join(tables.final_table(found, {"ProbeTarget": 1.5})))
    assert given[("Base", "best member")] == "200" and given[("CIKD", "best member")] == "100"

    aggregate = "\n".join(tables.aggregate_table(found, reps=200))
    iqm = {r[1]: float(r[3]) for r in _rows(aggregate) if len(r) == 5 and r[2] == "2"}
    assert iqm == pytest.approx({"Base": 3.1, "CIKD": 5.2})  # two seeds: the IQM is the mean
    (p,) = [r for r in _rows(aggregate) if r[1:3] == ["CIKD", "Base"]]
    assert float(p[3]) == pytest.approx(1.0)


def test_plot_writes_figure_and_table_per_set_with_a_threshold_flag(tmp_path):
    root, figs = tmp_path / "runs", tmp_path / "figs"
    _demo_runs(root)
    # a run without variant.json: named by its last three directories
    _write_run(root / "other" / "ProbeTarget" / "plain", [[[1.0], [1.0], [1.0]]])
    proc = subprocess.run([sys.executable, ROOT / "scripts" / "plot.py", root, "--out", figs,
                           "--threshold", "ProbeTarget=4.5"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("demo.png", "other.png", "demo-iqm.png", "demo-profile.png", "other-iqm.png"):
        assert (figs / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (figs / "demo.md").read_text()
    assert table.startswith("# demo: a demo set")
    assert "Steps to the threshold" in table and "threshold 4.5 (given)" in table
    assert not (figs / "demo-election.png").exists() and "Election audit" not in table
    other = _rows((figs / "other.md").read_text())
    assert other[0][1:3] == ["plain", "best member"]


# --------------------------------------------------------------------------------------
# the election audit


def _phase(seed, step, teacher, audit, train_returns, reward_rate, ran=True):
    best = int(np.argmax(audit))
    return dict(event="distill", seed=seed, env_steps=step, ran=ran, teacher=teacher,
                metric="train_returns", statistic=train_returns, audit=audit,
                hit=teacher == best, regret=max(audit) - audit[teacher],
                train_returns=train_returns, reward_rate=reward_rate, staleness=[0.0] * 3)


AUDIT = [
    _phase(0, 100, 0, [1, 5, 3], [2, 1, 0], [0, 9, 1]),  # statistic misses, reward rate hits
    _phase(0, 200, 1, [4, 2, 3], [None, 1, 1], [5, 0, 0]),  # NaN loses, tie to the lowest
    _phase(0, 300, 0, [0, 0, 0], [None] * 3, [None] * 3, ran=False),  # no teacher: not counted
    _phase(1, 100, 1, [3, 3, 1], [1, 2, 0], [0, 0, 5]),  # a tie in the audit: index 0 is best
    _phase(1, 200, 2, [1, 2, 6], [0, 0, 9], [9, 0, 0]),
]


def test_election_summary_scores_the_teacher_and_every_statistic(tmp_path):
    run_dir = _write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=AUDIT)
    s = runs.election_summary(run_dir)
    assert s["metric"] == "train_returns" and s["members"] == 3
    assert s["random_hit_rate"] == pytest.approx(1 / 3)

    def scores(part):
        return {k: (v["hit_rate"], v["mean_regret"]) for k, v in part.items()
                if isinstance(v, dict)}

    assert s["seeds"][0]["phases"] == 2 and s["seeds"][1]["phases"] == 2
    assert scores(s["seeds"][0]) == {"teacher": (0.0, 3.0), "train_returns": (0.0, 3.0),
                                     "reward_rate": (1.0, 0.0), "statistic": (0.0, 3.0)}
    assert scores(s["seeds"][1]) == {"teacher": (0.5, 0.0), "train_returns": (0.5, 0.0),
                                     "reward_rate": (0.0, 3.5), "statistic": (0.5, 0.0)}
    assert s["overall"]["phases"] == 4
    assert scores(s["overall"]) == {"teacher": (0.25, 1.5), "train_returns": (0.25, 1.5),
                                    "reward_rate": (0.5, 1.75), "statistic": (0.25, 1.5)}
    assert runs.election_summary(_write_run(tmp_path / "plain", [[[1.0]] * 3])) is None


def test_election_plot_and_table_for_audited_runs(tmp_path):
    root, figs = tmp_path / "runs", tmp_path / "figs"
    figs.mkdir()
    audited = _write_run(root / "election" / "ProbeTarget" / "a", [[[1.0] * 3] * 3] * 2,
                         _record("SAC-CIKD (train returns)", 0, False, k=3, set_name="election"),
                         extra=AUDIT)
    plain = _write_run(root / "election" / "ProbeTarget" / "b", [[[1.0] * 3] * 3] * 2,
                       _record("SAC-CIKD (eval)", 1, False, k=3, set_name="election"))
    png = election_figure.plot_election([audited, plain], figs / "x.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert election_figure.plot_election([plain], figs / "y.png") is None
    paths = analysis.report_set("election", analysis.find_runs(root), figs)
    assert [p.name for p in paths] == ["election.png", "election.md", "election-iqm.png",
                                       "election-profile.png", "election-election.png"]
    table = (figs / "election.md").read_text()
    assert "## Election audit" in table
    (row,) = _rows(table, "| ProbeTarget / SAC-CIKD (train returns) |")
    assert row[1:4] == ["train_returns", "4", "0.25 / 1.5 (4)"] and row[5] == "0.5 / 1.75 (4)"
    assert row[-1] == "0.3333"


def test_a_statistic_is_scored_only_where_it_had_a_value():
    audit = [[1.0, 5.0, 3.0], [4.0, 2.0, 3.0], [0.0, 1.0, 9.0]]
    nan = float("nan")
    # train_returns has no value yet in the first two phases (staggered first episodes)
    scores = stats.election_scores(audit, [True, True, True], [0.0, 0.0, 0.0],
                                   {"train_returns": [[nan] * 3, [nan] * 3, [9.0, 0.0, 1.0]]})
    assert scores["train_returns"] == {"phases": 1, "hit_rate": 0.0, "mean_regret": 9.0}
    assert scores["teacher"]["phases"] == 3 and scores["teacher"]["hit_rate"] == 1.0


def test_a_phase_the_rule_declined_scores_the_statistics_but_not_the_teacher(tmp_path):
    # a confident rule declined the second phase: no teacher, but every statistic had a value
    declined = {**_phase(0, 200, 0, [4, 2, 3], [1, 9, 0], [5, 0, 0], ran=False), "teacher": -1}
    del declined["hit"], declined["regret"]
    run_dir = _write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=[AUDIT[0], declined])
    o = runs.election_summary(run_dir)["overall"]
    assert o["audited"] == 2 and o["phases"] == 1
    assert (o["teacher"]["phases"], o["teacher"]["hit_rate"]) == (1, 0.0)
    # reward_rate elects 1 (hit) then 0 (hit); train_returns 0 (miss) then 1 (miss, regret 2)
    assert (o["reward_rate"]["phases"], o["reward_rate"]["hit_rate"]) == (2, 1.0)
    assert o["train_returns"]["mean_regret"] == pytest.approx((4 + 2) / 2)


def test_decided_phases_and_normalised_regret_from_the_audits_standard_errors(tmp_path):
    """A phase counts as decided only where the audited best leads its runner-up by more than
    two standard errors of the difference; regret is normalised by the audited spread."""
    audited = []
    for row, se in zip([r for r in AUDIT if r["ran"]], ([0.1] * 3, [5.0] * 3, [0.1] * 3,
                                                          [0.1] * 3)):
        audited.append({**row, "audit_se": se})
    # seed 0 at 100: best 5 vs runner-up 3, se 0.1: decided; the teacher (0) missed: regret 4/4
    # seed 0 at 200: se 5: undecided (regret 2/2).  seed 1 at 100: a tie at the top: undecided
    # (regret 0).  seed 1 at 200: best 6 vs 2: decided; the teacher (2) hit: regret 0
    run_dir = _write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=audited)
    o = runs.election_summary(run_dir)["overall"]
    assert o["audited"] == 4 and o["phases"] == 4
    assert o["teacher"]["decided_phases"] == 2 and o["teacher"]["hit_rate_decided"] == 0.5
    assert o["teacher"]["regret_normalized"] == pytest.approx(0.5)
    # reward_rate elects 1, 0, 2, 0: decided phases (seed 0 at 100, seed 1 at 200): hit, miss
    assert o["reward_rate"]["hit_rate_decided"] == 0.5
    assert o["audit_se"] == pytest.approx(0.1) and o["spread"] == pytest.approx(3.0)
    figs = tmp_path / "figs"
    figs.mkdir()
    lines = tables.election_table([run_dir])
    decided = lines[lines.index("### Decided phases and normalised regret"):]
    (row,) = [line for line in decided if line.startswith("| run | ")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:6] == ["4", "4", "0.1", "3"] and cells[6] == "0.5 (2) / 0.5"
    assert "simulated" not in "".join(lines)  # no config.json: no audit count to scale by
    (run_dir / "config.json").write_text(json.dumps(dict(audit_episodes=100, election_z=2.0)))
    lines = tables.election_table([run_dir])
    simulated = [line.split(" | ") for line in lines[lines.index(
        "### What an evaluation of n episodes would elect (simulated from the audit)"):]
        if line.startswith("| run | ")]
    # the two decided phases lead by 2 and 4 points against 0.45 of noise at n = 5: a miss in
    # about a thousand, fewer with more episodes
    assert [(c[1], c[2]) for c in simulated] == [("5", "4"), ("10", "4"), ("30", "4"),
                                                 ("100", "4")]
    hits = [float(c[3].split(" / ")[0]) for c in simulated]
    assert 0.99 < hits[0] <= hits[1] <= hits[2] <= hits[3] == 1.0
    assert election_figure.plot_election([run_dir], figs / "e.png").stat().st_size > 0


def test_runs_audited_without_standard_errors_have_no_decided_row(tmp_path):
    run_dir = _write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=AUDIT)
    assert "hit_rate_decided" not in runs.election_summary(run_dir)["overall"]["teacher"]
    assert not any("Decided" in line for line in tables.election_table([run_dir]))


# --------------------------------------------------------------------------------------
# what the figures say


def test_steps_read_as_a_reader_writes_them():
    assert [figures.steps_text(x) for x in (0, 500, 25_000, 100_000, 1_000_000, 1_500_000)] == [
        "0", "500", "25k", "100k", "1M", "1.5M"]


def test_styles_stay_apart_without_colour_and_follow_the_variant(tmp_path):
    markers = [m for _, m in figures.STYLES]
    assert len(set(markers)) == len(markers)  # greyscale: the shape alone tells variants apart
    _demo_runs(tmp_path)
    found = analysis.find_runs(tmp_path)
    styles = figures.styles_of(found)
    assert list(styles) == ["Base", "CIKD"] and styles["Base"] != styles["CIKD"]
    # the worst member's curve keeps its variant's style: one key per variant, not per curve
    assert len(styles) == len({r.record.variant for r in found})


def test_a_set_of_several_questions_draws_a_row_each_with_no_style_twice_in_a_row(
        tmp_path, monkeypatch):
    """The study's questions (`sets.Panel`): a row of the learning curves and of the profiles
    each, holding the variants that ran; a variant no question names comes last; the baselines
    keep their style in every row, and no row has two variants alike."""
    names = ["Vanilla-SAC", "Ensemble-SAC", "SAC-CIKD (I=1500)", "SAC-CIKD (random teacher)",
             "Ensemble-SAC (lr 3e-4)", "Mystery"]
    for i, name in enumerate(names):
        k = 1 if name == "Vanilla-SAC" else 2
        returns = [[[float(i + s + t)] * k for t in range(3)] for s in range(2)]
        _write_run(tmp_path / "study" / "ProbeTarget" / str(i), returns,
                   _record(name, i, "CIKD" not in name, k=k, set_name="study"))
    found = analysis.find_runs(tmp_path)
    rows = figures.panels_of(found)
    assert [r[1] for r in rows] == [names[:3], names[1:4], names[4:5], ["Mystery"]]
    assert rows[-1][0] == "Other variants"
    styles = figures.styles_of(found)
    for _, row in rows:
        assert len({styles[n] for n in row}) == len(row)
    saved = []
    monkeypatch.setattr(figures.pyplot().Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    figures.plot_set("study", found, tmp_path)
    figures.plot_profiles("study", found, tmp_path, reps=50)
    curves, profiles = saved
    assert [sub._suptitle.get_text() for sub in curves.subfigs] == [r[0] for r in rows]
    # each row's legend: its own variants only
    legends = [[t.get_text() for t in sub.legends[0].get_texts()] for sub in curves.subfigs]
    assert legends == [r[1] for r in rows]
    assert [sum(ax.get_visible() for ax in sub.axes) for sub in profiles.subfigs] == [3, 3, 1, 1]
    # a set without questions keeps its one row
    assert figures.panels_of(analysis.find_runs(_demo_runs(tmp_path / "demo") or
                                                tmp_path / "demo")) == [("", ["Base", "CIKD"])]


def test_titles_and_return_scales(tmp_path):
    _demo_runs(tmp_path)
    found = analysis.find_runs(tmp_path)
    assert figures.short_title(found) == "a demo set"
    plain = _write_run(tmp_path / "plain", [[[1.0]] * 3])
    (inferred,) = [r for r in analysis.find_runs(tmp_path) if r.dir == plain]
    assert figures.short_title([inferred]) == ""  # no internal set name ("runs") as a title
    assert figures.return_scale(found[0]) is None  # a probe: no known maximum

    def on(task, length=0):
        return dataclasses.replace(found[0], episode_length=length,
                                   record=dataclasses.replace(found[0].record, task=task))

    assert figures.return_scale(on("PendulumSwingup")) == 1000.0  # DM Control: [0, 1] a step
    assert figures.return_scale(on("PendulumSwingup", 500)) == 500.0
    assert figures.return_scale(on("hopper")) is None


def test_a_curve_that_has_not_learned_is_drawn_without_its_interval(tmp_path, monkeypatch):
    """DM Control returns under 5% of the maximum: the line only, and a note in the panel."""
    root = tmp_path / "runs"
    flat = [[[1.0], [3.0], [2.0]], [[2.0], [1.0], [4.0]]]
    _write_run(root / "demo" / "PendulumSwingup" / "base", flat,
               _record("Base", 0, True, task="PendulumSwingup"))
    bars, notes = [], []
    plt = figures.pyplot()
    monkeypatch.setattr(plt.Axes, "errorbar", lambda self, *a, **k: bars.append(a))
    real_text = plt.Axes.text
    monkeypatch.setattr(plt.Axes, "text",
                        lambda self, *a, **k: notes.append(a[2]) or real_text(self, *a, **k))
    figures.plot_set("demo", analysis.find_runs(root), tmp_path)
    assert bars == [] and any("not learned" in n for n in notes)
    notes.clear()
    learned = [[[100.0], [300.0], [200.0]], [[200.0], [100.0], [400.0]]]
    _write_run(root / "demo" / "PendulumSwingup" / "base", learned)
    figures.plot_set("demo", analysis.find_runs(root), tmp_path)
    assert len(bars) == 1 and not any("not learned" in n for n in notes)


def test_a_simulated_election_hits_as_often_as_its_noise_allows():
    """Two members 1 point apart, each episode's return spread 2: an n-episode election picks the
    better with probability Phi(1 / (2 sqrt(2 / n))); the confident rule distils when the lead is
    beyond 2 standard errors of the difference, so less often, and hits more often when it does."""
    from scipy.stats import norm

    audit, audit_se = [[11.0, 10.0]], [[0.2, 0.2]]  # 100 audit episodes: spread 2 per episode
    for n in (4, 16, 64):
        got = stats.simulated_election(audit, audit_se, 100, n, draws=20000)
        assert got["hit_rate_decided"] == pytest.approx(norm.cdf(1 / (2 * np.sqrt(2 / n))),
                                                        abs=0.01)
        assert got["regret_normalized"] == pytest.approx(1 - got["hit_rate_decided"])
        sure = stats.simulated_election(audit, audit_se, 100, n, rule="confident", draws=20000)
        diff_se = 2 * np.sqrt(2 / n)  # the standard error of the drawn lead
        lead = 2 * diff_se  # what the rule wants (z = 2)
        assert sure["distilled"] == pytest.approx(
            norm.sf((lead - 1) / diff_se) + norm.sf((lead + 1) / diff_se), abs=0.01)
        assert sure["hit_rate_decided"] > got["hit_rate_decided"]
    # an undecided phase (the audit cannot tell the two apart) is never scored for hits
    assert np.isnan(stats.simulated_election([[10.0, 10.0]], [[0.2, 0.2]], 100, 16)[
        "hit_rate_decided"])


def test_the_election_figure_draws_a_run_whose_phases_never_ran(tmp_path):
    # train_returns at N = 256: audited at every phase point, no value, so no teacher ever
    never = [{**_phase(0, step, -1, [1.0, 2.0, 3.0], [None] * 3, [1, 2, 3], ran=False),
              "audit_se": [0.1] * 3} for step in (100, 200)]
    for row in never:
        del row["hit"], row["regret"]
    run_dir = _write_run(tmp_path / "run", [[[1.0] * 3] * 3], extra=never)
    png = election_figure.plot_election([run_dir], tmp_path / "e.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runs.election_summary(run_dir)["overall"]["phases"] == 0
