"""The study's defaults chosen by its pre-registered rules (mjx_cikd.experiments.decision), on
synthetic final scores whose comparisons are clear-cut: 5 seeds apart (P = 1 with its whole
interval) or identical (P = 0.5, the interval spanning it)."""

import numpy as np

from mjx_cikd.experiments import decision
from mjx_cikd.experiments.decision import (
    ARGMAX,
    CONFIDENT,
    ENSEMBLE,
    FRESH,
    HANDOVER,
    LR_ALONE,
    VANILLA,
    interval_variant,
)

TASKS = ("A", "B")
MID = np.array([500.0, 510, 520, 530, 540])
HIGH, LOW = MID + 300, MID - 300


def _study(**per_variant):
    """Every study variant at MID on both tasks, except those given: {variant: {task: scores}}."""
    names = [VANILLA, ENSEMBLE, *map(interval_variant, (500, 1500, 4000)), CONFIDENT,
             LR_ALONE, FRESH, HANDOVER]
    scores = {(t, v): MID for t in TASKS for v in names}
    for v, tasks in per_variant.items():
        scores.update({(t, v): s for t, s in tasks.items()})
    return scores


def _choice(d, knob):
    return next(c for c in d.choices if c.knob == knob)


def test_the_verdict_of_one_comparison():
    assert decision.outcome(0.6, 0.9) == "wins"
    assert decision.outcome(0.1, 0.4) == "loses"
    assert decision.outcome(0.3, 0.8) == "level"


def test_level_intervals_keep_the_shipped_interval_rule_and_optimizer():
    d = decision.decide(_study(), TASKS, reps=200)
    assert set(d.pays.values()) == {"level"}
    interval = _choice(d, "distill_interval_updates")
    assert interval.value == 5000 and not interval.changes
    assert any("the shipped 5000 stays" in w for w in interval.why)
    # a tie goes to the confident rule, the shipped one since the study chose it
    rule = _choice(d, "election_rule")
    assert rule.value == "confident" and not rule.changes
    assert _choice(d, "distill_optimizer").value == "fresh"
    assert d.lr_gap == {"A": "level", "B": "level"}


def test_an_interval_becomes_the_default_only_if_it_wins_somewhere_and_loses_nowhere():
    i500, i1500 = interval_variant(500), interval_variant(1500)
    # 500 wins on A but loses on B; 1500 wins on B only: 1500
    d = decision.decide(_study(**{i500: {"A": HIGH, "B": LOW}, i1500: {"B": HIGH}}), TASKS,
                        reps=200)
    assert d.pays["A", 500] == "wins" and d.pays["B", 500] == "loses"
    assert d.pays["B", 1500] == "wins" and d.pays["A", 1500] == "level"
    assert _choice(d, "distill_interval_updates").value == 1500
    # winning over Ensemble-SAC alone is not winning: Vanilla-SAC as high leaves it level
    d = decision.decide(_study(**{i500: {"A": HIGH}, VANILLA: {"A": HIGH}}), TASKS, reps=200)
    assert d.pays["A", 500] == "level"
    assert _choice(d, "distill_interval_updates").value == 5000


def test_confident_loses_the_default_only_when_clearly_behind_argmax():
    d = decision.decide(_study(**{CONFIDENT: {"B": LOW}}), TASKS, reps=200)
    rule = _choice(d, "election_rule")
    assert rule.value == "argmax" and rule.changes
    assert any("behind argmax on B" in w for w in rule.why)
    # ahead on one task and level on the other: confident
    assert _choice(decision.decide(_study(**{CONFIDENT: {"A": HIGH}}), TASKS, reps=200),
                   "election_rule").value == "confident"


def test_the_handover_must_beat_a_fresh_adam_on_every_task():
    one = decision.decide(_study(**{HANDOVER: {"A": HIGH}}), TASKS, reps=200)
    assert _choice(one, "distill_optimizer").value == "fresh"
    both = decision.decide(_study(**{HANDOVER: {"A": HIGH, "B": HIGH}}), TASKS, reps=200)
    optimizer = _choice(both, "distill_optimizer")
    assert optimizer.value == "handover" and optimizer.changes
    assert both.lr_gap == {"A": "wins", "B": "wins"}  # the gap is more than the learning rate
    assert "on A: wins: the distillation adds to the learning rate" in "\n".join(
        decision.decision_lines(both))


def test_a_rule_whose_runs_have_not_finished_waits_and_says_for_what():
    scores = {k: v for k, v in _study().items() if k != ("B", CONFIDENT)}
    d = decision.decide(scores, TASKS, reps=200)
    rule = _choice(d, "election_rule")
    assert rule.value is None and rule.why == (f"waits for {CONFIDENT} on B",)
    assert _choice(d, "distill_interval_updates").value == 5000  # the others still decide
    lines = "\n".join(decision.decision_lines(d))
    assert "**election_rule**: undecided" in lines
    assert "**distill_interval_updates**: `5000` (as shipped)" in lines
    assert f"- {ARGMAX}" not in lines  # the reference is named in the reasons, not as a knob


def test_the_studys_table_ends_with_the_decision_so_far(tmp_path):
    from mjx_cikd.experiments import analysis, runs
    from mjx_cikd.experiments.plan import VariantRecord

    for order, (variant, returns) in enumerate([(VANILLA, MID), (ENSEMBLE, HIGH)]):
        run_dir = tmp_path / "runs" / variant
        run_dir.mkdir(parents=True)
        with open(run_dir / "metrics.jsonl", "w") as f:
            f.writelines(f'{{"event": "eval", "seed": {s}, "env_steps": 1000, '
                         f'"returns": [{r}], "best": {r}}}\n' for s, r in enumerate(returns))
        VariantRecord(set="study", task="A", variant=variant, set_title="the study",
                      curves="best+worst", task_order=0, order=order, baseline=True,
                      algo="sac", ensemble_size=1, widths=(32,), member_labels=("m0",),
                      seeds=5).write(run_dir)
    found = runs.find_runs(tmp_path / "runs")
    (tmp_path / "figs").mkdir()
    analysis.report_set("study", found, tmp_path / "figs")
    table = (tmp_path / "figs" / "study.md").read_text()
    section = table[table.index("## The defaults, by the pre-registered rules"):]
    assert f"waits for {interval_variant(500)} on A" in section
    assert "**distill_optimizer**: undecided" in section
