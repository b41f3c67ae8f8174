"""The study's defaults, chosen from its final returns by the rules written down before its
results (docs/results.md, "How the defaults will be chosen"), so that the choice is the program's
and not the reader's: whether CIKD pays on each task, the phase interval, the election rule and
what the students' SAC updates use after a phase.

Input: the study's final scores {(task, variant): [S] the best member's final return per seed}
(`runs.final_scores`). A rule whose variants have not finished on both tasks decides nothing and
says what it waits for. The verdict of one comparison, from rliable's probability of
improvement P(X > Y) and its 95% interval: X *wins* if the interval lies above 0.5, *loses* if
it lies below, and is *level* otherwise.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mjx_cikd.config.schema import Config
from mjx_cikd.experiments import stats
from mjx_cikd.experiments.sets import (
    CONFIDENT,
    HANDOVER,
    LR_CONTROLS,
    STUDY_INTERVALS,
    interval_variant,
)
from mjx_cikd.experiments.stats import fmt

VANILLA, ENSEMBLE = "Vanilla-SAC", "Ensemble-SAC"
ARGMAX = interval_variant(STUDY_INTERVALS[1])  # the rule's reference: argmax at that interval
LR_ALONE, FRESH = LR_CONTROLS[1], LR_CONTROLS[2]
STUDY_TASKS = ("ReacherEasy", "CartpoleSwingup")
WINS, LEVEL, LOSES = "wins", "level", "loses"
SHIPPED = {f.name: f.default for f in dataclasses.fields(Config)}


def outcome(low: float, high: float) -> str:
    """A comparison's verdict from its P(improvement) interval."""
    return WINS if low > 0.5 else LOSES if high < 0.5 else LEVEL


@dataclasses.dataclass(frozen=True)
class Comparison:
    task: str
    variant: str
    over: str
    p: float
    low: float
    high: float

    @property
    def outcome(self) -> str:
        return outcome(self.low, self.high)

    def __str__(self) -> str:
        return (f"{self.variant} over {self.over} on {self.task}: P = {fmt(self.p)} "
                f"[{fmt(self.low)}, {fmt(self.high)}], {self.outcome}")


@dataclasses.dataclass(frozen=True)
class Choice:
    """One default: the value the rule chose (None: it waits for runs) and why, in sentences."""

    knob: str
    value: object
    why: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return self.value is not None and self.value != SHIPPED.get(self.knob)


@dataclasses.dataclass(frozen=True)
class Decision:
    pays: dict[tuple[str, int], str]  # (task, interval) -> wins / level / loses
    evidence: tuple[Comparison, ...]  # every P(improvement) the rules read
    iqm: dict[tuple[str, str], tuple[float, float, float]]  # (task, variant) -> IQM, low, high
    choices: tuple[Choice, ...]
    lr_gap: dict[str, str]  # task -> the handover over the learning rate moved alone


class _Study:
    """The scores, their IQMs and P(improvement)s, computed once, for the rules to read."""

    def __init__(self, scores: dict, tasks, reps: int):
        self.scores, self.tasks, self.reps = scores, tuple(tasks), reps
        self.iqm = stats.iqm_ci({k: np.asarray(v)[:, None] for k, v in scores.items()},
                                reps=reps) if scores else {}
        self.evidence: dict[tuple[str, str, str], Comparison] = {}

    def has(self, *variants: str) -> bool:
        return all((t, v) in self.scores for t in self.tasks for v in variants)

    def missing(self, *variants: str) -> list[str]:
        return [f"{v} on {t}" for v in variants for t in self.tasks if (t, v) not in self.scores]

    def compare(self, task: str, x: str, y: str) -> Comparison:
        key = (task, x, y)
        if key not in self.evidence:
            pair = (np.asarray(self.scores[task, x])[:, None],
                    np.asarray(self.scores[task, y])[:, None])
            p, low, high = stats.improvement_ci({key: pair}, reps=self.reps)[key]
            self.evidence[key] = Comparison(task, x, y, p, low, high)
        return self.evidence[key]

    def relative_iqm(self, variant: str) -> float:
        """Its IQM over the task's best baseline IQM, averaged over the tasks."""
        return float(np.mean([self.iqm[t, variant][0]
                              / max(self.iqm[t, VANILLA][0], self.iqm[t, ENSEMBLE][0])
                              for t in self.tasks]))


def _waiting(knob: str, study: _Study, *variants: str) -> Choice:
    return Choice(knob, None, (f"waits for {', '.join(study.missing(*variants))}",))


def _pays(study: _Study) -> dict[tuple[str, int], str]:
    """A CIKD interval wins on a task if it wins over Ensemble-SAC and over Vanilla-SAC there,
    and loses if it loses to either."""
    verdicts = {}
    for t in study.tasks:
        for i in STUDY_INTERVALS:
            v = interval_variant(i)
            if not all((t, x) in study.scores for x in (v, VANILLA, ENSEMBLE)):
                continue
            both = [study.compare(t, v, ref).outcome for ref in (ENSEMBLE, VANILLA)]
            verdicts[t, i] = (LOSES if LOSES in both
                              else WINS if both == [WINS, WINS] else LEVEL)
    return verdicts


def _interval(study: _Study, pays: dict) -> Choice:
    """Among the intervals that win on a task and lose on none (each is shorter than the shipped
    one, whose election costs least), the highest IQM relative to the task's best baseline,
    averaged over the tasks; none such: the shipped interval stays."""
    knob, variants = "distill_interval_updates", [interval_variant(i) for i in STUDY_INTERVALS]
    if not study.has(VANILLA, ENSEMBLE, *variants):
        return _waiting(knob, study, VANILLA, ENSEMBLE, *variants)
    relative = {i: study.relative_iqm(interval_variant(i)) for i in STUDY_INTERVALS}
    shown = ", ".join(f"I = {i}: {fmt(r)}" for i, r in relative.items())
    verdicts = "; ".join(f"I = {i}: " + ", ".join(f"{pays[t, i]} on {t}" for t in study.tasks)
                         for i in STUDY_INTERVALS)
    eligible = [i for i in STUDY_INTERVALS
                if any(pays[t, i] == WINS for t in study.tasks)
                and all(pays[t, i] != LOSES for t in study.tasks)]
    why = [f"against both baselines: {verdicts}",
           f"IQM over the task's best baseline, mean over tasks: {shown}"]
    if not eligible:
        least_bad = max(relative, key=relative.get)
        ahead = any(pays[t, i] != LOSES for t in study.tasks for i in STUDY_INTERVALS)
        why.append(f"no interval wins on a task while losing on none, so the shipped "
                   f"{SHIPPED[knob]} stays (its election costs least); the best of the three "
                   f"relative to the baselines was I = {least_bad}"
                   + ("" if ahead else ", and none is level with the baselines"))
        return Choice(knob, SHIPPED[knob], tuple(why))
    best = max(eligible, key=relative.get)
    why.append(f"I = {best} wins on a task and loses on none, with the highest relative IQM "
               "of those that do")
    return Choice(knob, best, tuple(why))


def _rule(study: _Study) -> Choice:
    """`confident` unless, on some task, its IQM is below argmax's (at the same interval) with
    the two intervals apart: ties go to `confident`, the better and cheaper election."""
    knob = "election_rule"
    if not study.has(ARGMAX, CONFIDENT):
        return _waiting(knob, study, ARGMAX, CONFIDENT)
    why, behind = [], []
    for t in study.tasks:
        (c, c_lo, c_hi), (a, a_lo, a_hi) = study.iqm[t, CONFIDENT], study.iqm[t, ARGMAX]
        apart = c_hi < a_lo or a_hi < c_lo
        why.append(f"{t}: IQM confident {fmt(c)} [{fmt(c_lo)}, {fmt(c_hi)}], argmax {fmt(a)} "
                   f"[{fmt(a_lo)}, {fmt(a_hi)}]" + (", apart" if apart else ", overlapping"))
        if c < a and apart:
            behind.append(t)
    if behind:
        why.append(f"confident is behind argmax on {', '.join(behind)}: argmax stays")
        return Choice(knob, "argmax", tuple(why))
    why.append("confident is at least level with argmax on every task: the tie goes to it")
    return Choice(knob, "confident", tuple(why))


def _optimizer(study: _Study) -> Choice:
    """`handover` only if it wins over `fresh` (both at the authors' rates) on every task."""
    knob = "distill_optimizer"
    if not study.has(FRESH, HANDOVER):
        return _waiting(knob, study, FRESH, HANDOVER)
    found = [study.compare(t, HANDOVER, FRESH) for t in study.tasks]
    wins = all(c.outcome == WINS for c in found)
    return Choice(knob, "handover" if wins else "fresh",
                  (*map(str, found), "the handover wins on every task" if wins
                   else "the handover does not win on every task: fresh stays"))


def decide(scores: dict, tasks=STUDY_TASKS, reps: int = 2000) -> Decision:
    """The study's decision from its final scores {(task, variant): [S]}."""
    study = _Study(scores, tasks, reps)
    pays = _pays(study)
    choices = (_interval(study, pays), _rule(study), _optimizer(study))
    lr_gap = {t: study.compare(t, HANDOVER, LR_ALONE).outcome for t in study.tasks
              if (t, HANDOVER) in scores and (t, LR_ALONE) in scores}
    return Decision(pays, tuple(study.evidence.values()), study.iqm, choices, lr_gap)


def decision_lines(decision: Decision) -> list[str]:
    """The decision as the Markdown section of the study's table."""
    lines = ["", "## The defaults, by the pre-registered rules", "",
             "The rules of docs/results.md, \"How the defaults will be chosen\", applied by "
             "`mjx_cikd.experiments.decision` to the best member's final return per seed. A "
             "comparison wins if its P(improvement) interval lies above 0.5, loses if below.", ""]
    if decision.pays:
        lines += ["| Task | Interval | CIKD against both baselines |", "|---|---|---|"]
        lines += [f"| {t} | {i} | {v} |" for (t, i), v in decision.pays.items()]
        lines.append("")
    for choice in decision.choices:
        value = "undecided" if choice.value is None else f"`{choice.value}`"
        change = (f" (changes the shipped `{SHIPPED.get(choice.knob)}`)" if choice.changes
                  else " (as shipped)" if choice.value is not None else "")
        lines.append(f"- **{choice.knob}**: {value}{change}")
        lines += [f"  - {reason}" for reason in choice.why]
    meaning = {LEVEL: "level: the authors' gap over Ensemble-SAC is their learning rate",
               LOSES: "loses: the learning rate alone does better than CIKD with it",
               WINS: "wins: the distillation adds to the learning rate"}
    for t, verdict in decision.lr_gap.items():
        lines.append(f"- The handover over Ensemble-SAC moved to 1e-3 alone, on {t}: "
                     f"{meaning[verdict]}")
    return lines
