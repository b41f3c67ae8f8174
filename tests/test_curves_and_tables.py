"""Curves, tables and figures of experiment sets from run directories written by hand
(mjx_cikd.experiments: runs, tables, figures, analysis; scripts/plot.py)."""

import dataclasses
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from run_records import demo_runs, table_rows, variant_record, write_run

from mjx_cikd.experiments import analysis, figures, runs, tables

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_curves_tables_and_steps_to_threshold(tmp_path):
    demo_runs(tmp_path)
    found = analysis.find_runs(tmp_path)
    assert [r.record.variant for r in found] == ["Base", "CIKD"]
    curves = [c for r in found for c in runs.curves_of(r)]
    assert [(c.variant, c.kind) for c in curves] == [("Base", "best"), ("CIKD", "best"),
                                                     ("CIKD", "worst")]
    np.testing.assert_allclose(curves[1].band.mean, [2.0, 4.0, 5.2])
    np.testing.assert_allclose(curves[2].band.mean, [0.5, 2.0, 1.0])

    def reach(table):
        return {(r[1], r[2]): r[7] for r in table_rows(table)
                if len(r) == 10 and r[2] in ("best member", "worst member")}

    table = "\n".join(tables.final_table(found))  # to the baseline's final return, 3.1
    assert reach(table) == {("Base", "best member"): "300", ("CIKD", "best member"): "200",
                            ("CIKD", "worst member"): "—"}
    # beside the best member, the mean member's row (K = 2 only), and every curve's area: each
    # seed's mean over its evaluations (best: 11/3 and 11.4/3; mean member: 6.5/3 and 8.2/3)
    rows = {(r[1], r[2]): r for r in table_rows(table) if len(r) == 10}
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
    iqm = {r[1]: float(r[3]) for r in table_rows(aggregate) if len(r) == 5 and r[2] == "2"}
    assert iqm == pytest.approx({"Base": 3.1, "CIKD": 5.2})  # two seeds: the IQM is the mean
    (p,) = [r for r in table_rows(aggregate) if r[1:3] == ["CIKD", "Base"]]
    assert float(p[3]) == pytest.approx(1.0)


def test_plot_writes_figure_and_table_per_set_with_a_threshold_flag(tmp_path):
    root, figs = tmp_path / "runs", tmp_path / "figs"
    demo_runs(root)
    # a run without variant.json: named by its last three directories
    write_run(root / "other" / "ProbeTarget" / "plain", [[[1.0], [1.0], [1.0]]])
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
    other = table_rows((figs / "other.md").read_text())
    assert other[0][1:3] == ["plain", "best member"]


def test_steps_read_as_a_reader_writes_them():
    assert [figures.steps_text(x) for x in (0, 500, 25_000, 100_000, 1_000_000, 1_500_000)] == [
        "0", "500", "25k", "100k", "1M", "1.5M"]


def test_styles_stay_apart_without_colour_and_follow_the_variant(tmp_path):
    markers = [m for _, m in figures.STYLES]
    assert len(set(markers)) == len(markers)  # greyscale: the shape alone tells variants apart
    demo_runs(tmp_path)
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
        write_run(tmp_path / "study" / "ProbeTarget" / str(i), returns,
                  variant_record(name, i, "CIKD" not in name, k=k, set_name="study"))
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
    assert figures.panels_of(analysis.find_runs(demo_runs(tmp_path / "demo") or
                                                tmp_path / "demo")) == [("", ["Base", "CIKD"])]


def test_titles_and_return_scales(tmp_path):
    demo_runs(tmp_path)
    found = analysis.find_runs(tmp_path)
    assert figures.short_title(found) == "a demo set"
    plain = write_run(tmp_path / "plain", [[[1.0]] * 3])
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
    write_run(root / "demo" / "PendulumSwingup" / "base", flat,
              variant_record("Base", 0, True, task="PendulumSwingup"))
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
    write_run(root / "demo" / "PendulumSwingup" / "base", learned)
    figures.plot_set("demo", analysis.find_runs(root), tmp_path)
    assert len(bars) == 1 and not any("not learned" in n for n in notes)
