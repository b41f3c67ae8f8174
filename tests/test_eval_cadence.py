"""When the periodic evaluation falls (`loop/trainer.py`, `EvalCadence`), and that the election
reads it: at a phase point the `eval` statistic and its standard errors are the evaluation record
of that same vector step, and no second evaluation is played (issue 31)."""

import json

import numpy as np
import pytest
from conftest import run_chunks, tiny

from mjx_cikd.config import budget_warnings, config_from_args
from mjx_cikd.config.checks import eval_share
from mjx_cikd.experiments.plan import plan
from mjx_cikd.host import run


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_phase_points_election_statistic_is_the_evaluation_record_at_that_point(tmp_path):
    """On CartpoleSwingup, the shipped `confident` rule: every distill record's statistic and
    standard errors are the eval record's returns and standard errors at the same env step, and
    the run evaluates at its phase points and its end only (the default cadence)."""
    config = tiny(env="CartpoleSwingup", algo="cikd", election_rule="confident",
                  total_steps=1536, eval_episodes=4)
    run.train(config, run_dir=tmp_path / "run", quiet=True)
    rows = _rows(tmp_path / "run")
    evals = {r["env_steps"]: r for r in rows if r["event"] == "eval"}
    phases = [r for r in rows if r["event"] == "distill"]
    assert len(phases) == 12 and {r["ran"] for r in phases} == {True, False}
    for r in phases:
        e = evals[r["env_steps"]]
        assert r["metric"] == "eval" and r["statistic"] == e["returns"]
        assert r["statistic_se"] == e["se"] and np.isfinite(e["se"]).all()
    # no evaluation but the phase points' and the run's last
    assert sorted(evals) == sorted({r["env_steps"] for r in phases} | {config.last_step})


@pytest.mark.parametrize("algo, eval_every, expected", [
    # the schedule's points (every 16 vector steps of 8 envs from the warm-up) and the end
    ("sac", 0, set(range(128, 1025, 128))),
    ("sac", 384, {384, 768}),
    # every 384 env steps, and at every phase point for the election
    ("cikd", 384, {384, 768} | set(range(128, 1025, 128))),
])
def test_the_evaluation_falls_where_the_cadence_says(algo, eval_every, expected):
    config = tiny(algo=algo, eval_every=eval_every, total_steps=1024, log_every=512)
    logs = run_chunks(config, chunks=2).logs
    due = np.concatenate([np.asarray(log.eval_due) for log in logs])
    assert set((np.flatnonzero(due) + 1) * config.num_envs) == expected
    returns = np.concatenate([np.asarray(log.eval_return) for log in logs])
    assert np.isfinite(returns[due]).all() and np.isnan(returns[~due]).all()


def test_the_default_job_evaluates_at_its_phase_points_and_warns_of_nothing():
    """CheetahRun at the defaults: 1M env steps of 128 envs evaluate at the 12 phase points (every
    625 updating vector steps) and the end, about 15% of the sequential steps by the warning's
    count (it was 42% with one at every log point)."""
    config = config_from_args([])[0]
    assert config.phase_period == 625
    assert eval_share(config, 1000) == pytest.approx(1.6 / 10.6)
    assert budget_warnings(config, 1000) == []


def test_the_paper_figures_sets_trip_no_evaluation_warning(tmp_path):
    """`reproduce.py fig1` (and the other figures of the paper) at the shipped defaults, on the
    default task (T = 1000), warns of no evaluation share. A set that shortens the phase interval
    is warned, rightly, with what to do: the election evaluates at every phase point."""
    for name in ("fig1", "fig2", "fig3", "fig4"):
        for p in plan(name, ["CheetahRun"], 1, tmp_path, {}):
            assert budget_warnings(p.config, 1000) == [], (name, p.variant.name)
    short = {p.variant.name: p.config for p in plan("study", ["CheetahRun"], 1, tmp_path, {})}
    (note,) = budget_warnings(short["SAC-CIKD (I=500)"], 1000)
    assert note.startswith("evaluation would take about 64% of the run: one evaluation (T = 1000 "
                           "steps) every 63 vector step(s)") and "every phase point" in note
