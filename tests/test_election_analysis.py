"""The election audit read back from run directories written by hand: hit rates, regret and
decided phases per statistic (runs, stats), its table and figure (election_figure), and a
simulated election against its closed form."""

import json

import numpy as np
import pytest
from run_records import table_rows, variant_record, write_run

from mjx_cikd.experiments import analysis, election_figure, runs, stats, tables


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
    run_dir = write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=AUDIT)
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
    assert runs.election_summary(write_run(tmp_path / "plain", [[[1.0]] * 3])) is None


def test_election_plot_and_table_for_audited_runs(tmp_path):
    root, figs = tmp_path / "runs", tmp_path / "figs"
    figs.mkdir()
    record = variant_record("SAC-CIKD (train returns)", 0, False, k=3, set_name="election")
    audited = write_run(root / "election" / "ProbeTarget" / "a", [[[1.0] * 3] * 3] * 2, record,
                        extra=AUDIT)
    plain = write_run(root / "election" / "ProbeTarget" / "b", [[[1.0] * 3] * 3] * 2,
                      variant_record("SAC-CIKD (eval)", 1, False, k=3, set_name="election"))
    png = election_figure.plot_election([audited, plain], figs / "x.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert election_figure.plot_election([plain], figs / "y.png") is None
    paths = analysis.report_set("election", analysis.find_runs(root), figs)
    assert [p.name for p in paths] == ["election.png", "election.md", "election-iqm.png",
                                       "election-profile.png", "election-election.png"]
    table = (figs / "election.md").read_text()
    assert "## Election audit" in table
    (row,) = table_rows(table, "| ProbeTarget / SAC-CIKD (train returns) |")
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
    run_dir = write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=[AUDIT[0], declined])
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
    run_dir = write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=audited)
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
    run_dir = write_run(tmp_path / "run", [[[1.0] * 3] * 3] * 2, extra=AUDIT)
    assert "hit_rate_decided" not in runs.election_summary(run_dir)["overall"]["teacher"]
    assert not any("Decided" in line for line in tables.election_table([run_dir]))


# --------------------------------------------------------------------------------------
# what the figures say


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
    run_dir = write_run(tmp_path / "run", [[[1.0] * 3] * 3], extra=never)
    png = election_figure.plot_election([run_dir], tmp_path / "e.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runs.election_summary(run_dir)["overall"]["phases"] == 0
