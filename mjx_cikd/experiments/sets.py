"""The paper's experiment sets (CIKD, sections 5.2-5.5) and its controls: which runs a set
holds, light to import (no JAX), for planning (`plan`) and reading back (`runs`).

Sets (the variant names are the legends):
  fig1       inter-agent distillation (5.2): Vanilla-SAC, Ensemble-SAC (K=3), SAC-CIKD (K=3)
  fig2       distillation vs extra updates (5.3): Vanilla-SAC (extra), Ensemble-SAC (extra) (a
             phase's steps on batches of B_d, as SAC updates), SAC-CIKD
  fig3       ensemble size (5.4): SAC-CIKD with K = 2, 3, 5
  fig4       simple and complex networks (5.5): Vanilla-SAC (256), Vanilla-SAC (1024), and
             two-member ensembles of widths 256 and 1024: Ensemble-SAC, SAC-CIKD (256/1024)
  teacher    electing the best agent matters: SAC-CIKD with the best, a random, the worst teacher
  parts      what is distilled: policy and critic, the policy, the critic, or a hard copy
  selection  policy selection at episode starts: uniform, softmax over R_k, epsilon-greedy
  schedule   distillation at every phase point (fixed) or when the election is confident (ada)
  election   the statistic the election ranks (training returns, reward rate, evaluation), each
             audited against every member's true return before the phase
  target     the students' targets after a phase: one soft step (the authors) or set to the new
             critics (hard)
  cikd5      the 5-seed comparison: Vanilla-SAC, Ensemble-SAC, SAC-CIKD, SAC-CIKD (random teacher)
  study      does CIKD pay at N envs (issue 17): Vanilla-SAC, Ensemble-SAC, SAC-CIKD at three
             intervals spanning 8x (STUDY_INTERVALS), SAC-CIKD with a random teacher, and at the
             authors' learning rates (SAC 3e-4, distillation 1e-3) Ensemble-SAC, Ensemble-SAC
             raised to 1e-3 at the first phase point, SAC-CIKD with a fresh and with a
             handed-over distillation Adam; the controls distil at the middle interval; every
             phase point distils (argmax) but in SAC-CIKD (confident election)
  noise      the election against noise: each statistic under the argmax and the confident rule,
             every phase audited with `--audit_episodes` episodes per member (docs/election.md)
"""

from __future__ import annotations

import dataclasses
import functools
import re

PAPER_TASKS = ("halfcheetah", "hopper", "walker2d", "ant", "humanoid")
DEFAULT_SEEDS = 5
DEFAULT_TOTAL_STEPS = 1_000_000

# The kinds of one curve, and what each set's figure draws of a run: `SET_CURVES[set.curves]`.
BEST, WORST, MEMBER = "best", "worst", "member"
MEAN = "mean"  # the mean member: a table row beside the best (runs.mean_member)
SET_CURVES = {"best": (BEST,), "best+worst": (BEST, WORST), "members": (MEMBER,)}

# Config fields every set defines itself, and the ones --out / --seeds replace.
SET_FIELDS = ("env", "algo", "ensemble_size", "widths", "extra_updates")
REPLACED = {"run_dir": "--out", "num_seeds": "--seeds"}


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str  # the legend
    values: dict  # Config fields this variant sets

    @property
    def slug(self) -> str:
        """A directory name: the legend without spaces or brackets."""
        return re.sub(r"[^A-Za-z0-9.=+-]+", "_", self.name).strip("_")


def _agents(algo: str, k: int, **extra) -> dict:
    return dict(algo=algo, ensemble_size=k, widths=(), extra_updates=False) | extra


# The study's phase intervals in SAC updates per member, spanning 8x, all of which distil
# within a CPU budget (200k env steps at the default 128 envs, U = 8, are 12,000 updates after the
# warm-up): a phase every 8k, 24k and 64k env steps. Its controls distil at the middle one, and
# every phase point distils (argmax, the paper's) but in the one variant that measures the rule.
STUDY_INTERVALS = (500, 1_500, 4_000)


def _every(updates: int = STUDY_INTERVALS[1], rule: str = "argmax") -> dict:
    return dict(distill_interval=0, distill_interval_updates=updates, election_rule=rule)


_sac = functools.partial(_agents, "sac", 1)
_ensemble = functools.partial(_agents, "ensemble")
_cikd = functools.partial(_agents, "cikd")
PAPER_LR = {"actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4}
# the study's references at the authors' rates: the learning rate alone, then with distillation
LR_CONTROLS = ("Ensemble-SAC (lr 3e-4)", "Ensemble-SAC (lr 3e-4, 1e-3 after warm-up)",
               "SAC-CIKD (lr 3e-4, fresh Adam at 1e-3)")
# the study's other legends its panels and `decision` name
CONFIDENT = "SAC-CIKD (confident election)"
HANDOVER = "SAC-CIKD (lr 3e-4, handover at 1e-3)"


def interval_variant(updates: int) -> str:
    """The study's SAC-CIKD at a phase interval of `updates` SAC updates."""
    return f"SAC-CIKD (I={updates})"


@dataclasses.dataclass(frozen=True)
class Panel:
    """One question of a set: a row of its learning-curve figure, one panel per task, drawing
    these variants (legends) only, so that a set of many variants stays readable; and its
    comparisons: each variant against every reference (`against`) drawn before it."""

    title: str
    variants: tuple[str, ...]
    against: tuple[str, ...] = ()

    @property
    def comparisons(self) -> tuple[tuple[str, str], ...]:
        """(variant, reference) pairs, in the panel's order."""
        return tuple((v, ref) for i, v in enumerate(self.variants)
                     for ref in self.variants[:i] if ref in self.against)


@dataclasses.dataclass(frozen=True)
class ExperimentSet:
    title: str
    curves: str  # a key of SET_CURVES
    variants: tuple[Variant, ...]
    panels: tuple[Panel, ...] = ()  # none: every variant in one row
    decides_defaults: bool = False  # its table ends with the defaults it chooses (`decision`)

    @property
    def comparisons(self) -> tuple[tuple[str, str], ...]:
        """Its questions' (variant, reference) pairs, each once; none for a set without them."""
        return tuple(dict.fromkeys(pair for p in self.panels for pair in p.comparisons))

    @property
    def fields(self) -> tuple[str, ...]:
        """The Config fields the set defines (refused as flags): every set's SET_FIELDS and
        whatever its variants set."""
        names = dict.fromkeys(SET_FIELDS)
        for v in self.variants:
            names.update(dict.fromkeys(v.values))
        return tuple(names)


# The sets that compare elections (who teaches, when, ranked by what) keep the paper's rule,
# every phase point distilling, as their records ran: under the shipped `confident` rule a random
# or worst teacher, or a statistic without a standard error, would distil at every phase point
# and the elected best would not (`config.flags._implied_rule`).
PAPER_RULE = {"election_rule": "argmax"}


def _cikd_variants(field: str, legends: dict, **extra) -> tuple[Variant, ...]:
    """SAC-CIKD (K=3) once per value of `field`: {value: legend suffix}."""
    return tuple(Variant(f"SAC-CIKD ({legend})", _cikd(3, **{field: value}, **extra))
                 for value, legend in legends.items())


SETS: dict[str, ExperimentSet] = {
    "fig1": ExperimentSet(
        "Performance of inter-agent knowledge distillation (paper Fig. 1)", "best+worst", (
            Variant("Vanilla-SAC", _sac()),
            Variant("Ensemble-SAC", _ensemble(3)),
            Variant("SAC-CIKD", _cikd(3)))),
    "fig2": ExperimentSet(
        "Knowledge distillation vs extra policy updates (paper Fig. 2)", "best", (
            Variant("Vanilla-SAC (extra)", _sac(extra_updates=True)),
            Variant("Ensemble-SAC (extra)", _ensemble(3, extra_updates=True)),
            Variant("SAC-CIKD", _cikd(3)))),
    "fig3": ExperimentSet(
        "Ensemble size (paper Fig. 3)", "best", (
            Variant("SAC-CIKD (K=2)", _cikd(2)),
            Variant("SAC-CIKD (K=3)", _cikd(3)),
            Variant("SAC-CIKD (K=5)", _cikd(5)))),
    "fig4": ExperimentSet(
        "Simple and complex networks, mean return of each member (paper Fig. 4)", "members", (
            Variant("Vanilla-SAC (256)", _sac(hidden_width=256)),
            Variant("Vanilla-SAC (1024)", _sac(hidden_width=1024)),
            Variant("Ensemble-SAC (256/1024)", _ensemble(2, widths=(256, 1024))),
            Variant("SAC-CIKD (256/1024)", _cikd(2, widths=(256, 1024))))),
    "teacher": ExperimentSet(
        "Electing the best agent matters: the teacher is the best, a random or the worst member",
        "best", _cikd_variants("teacher", {"best": "best teacher", "random": "random teacher",
                                           "worst": "worst teacher"}, **PAPER_RULE)),
    "parts": ExperimentSet(
        "What is distilled: policy and critic, the policy, the critic, or a hard copy", "best",
        _cikd_variants("distill_parts", {"both": "both", "policy": "policy",
                                         "critic": "critic"}, hard_copy=False)
        + (Variant("SAC-CIKD (hard copy)", _cikd(3, distill_parts="both", hard_copy=True)),)),
    "selection": ExperimentSet(
        "Policy selection at episode starts", "best",
        _cikd_variants("policy_selection", {"uniform": "uniform", "softmax": "softmax",
                                            "eps_greedy": "eps-greedy"})),
    "schedule": ExperimentSet(
        "Distillation schedule: every phase point, or when the election is confident", "best",
        _cikd_variants("distill_schedule", {"fixed": "fixed", "ada": "ada"}, **PAPER_RULE)),
    "election": ExperimentSet(
        "The statistic the teacher election ranks, audited against true returns", "best",
        _cikd_variants("election_metric", {"train_returns": "train returns",
                                           "reward_rate": "reward rate", "eval": "eval"},
                       audit_election=True, **PAPER_RULE)),
    "target": ExperimentSet(
        "The students' target critics after a phase: one soft step, or a copy of the new critics",
        "best+worst", _cikd_variants("distill_target", {"soft": "soft target",
                                                        "hard": "hard target"})),
    "cikd5": ExperimentSet(
        "SAC-CIKD against its baselines and a random teacher", "best+worst", (
            Variant("Vanilla-SAC", _sac()),
            Variant("Ensemble-SAC", _ensemble(3)),
            Variant("SAC-CIKD", _cikd(3, teacher="best", **PAPER_RULE)),
            Variant("SAC-CIKD (random teacher)", _cikd(3, teacher="random", **PAPER_RULE)))),
    "study": ExperimentSet(
        "Does CIKD pay: its baselines, three intervals, a random teacher, and the authors' "
        "learning-rate handover against its control", "best+worst", (
            Variant("Vanilla-SAC", _sac()),
            Variant("Ensemble-SAC", _ensemble(3)),
            *(Variant(interval_variant(i), _cikd(3, **_every(i))) for i in STUDY_INTERVALS),
            Variant("SAC-CIKD (random teacher)", _cikd(3, teacher="random", **_every())),
            Variant(CONFIDENT, _cikd(3, **_every(rule="confident"))),
            # the authors' numbers (train_ensemble_sac.py:73, :92, :174): SAC at 3e-4, the
            # distillation at 1e-3, whose Adam their students keep (distill.py:20-21)
            Variant("Ensemble-SAC (lr 3e-4)", _ensemble(3, **PAPER_LR)),
            Variant("Ensemble-SAC (lr 3e-4, 1e-3 after warm-up)",
                    _ensemble(3, **PAPER_LR, lr_after_warmup=1e-3, **_every())),
            Variant("SAC-CIKD (lr 3e-4, fresh Adam at 1e-3)",
                    _cikd(3, **PAPER_LR, distill_lr=1e-3, distill_optimizer="fresh",
                          **_every())),
            Variant(HANDOVER,
                    _cikd(3, **PAPER_LR, distill_lr=1e-3, distill_optimizer="handover",
                          **_every()))),
        panels=(
            Panel("Against its baselines: the phase interval",
                  ("Vanilla-SAC", "Ensemble-SAC",
                   *map(interval_variant, STUDY_INTERVALS)),
                  against=("Vanilla-SAC", "Ensemble-SAC")),
            Panel(f"Electing the teacher (I={STUDY_INTERVALS[1]})",
                  ("Ensemble-SAC", interval_variant(STUDY_INTERVALS[1]),
                   "SAC-CIKD (random teacher)", CONFIDENT),
                  against=("Ensemble-SAC", interval_variant(STUDY_INTERVALS[1]))),
            Panel("At the authors' learning rates: SAC 3e-4, the distillation 1e-3",
                  LR_CONTROLS + (HANDOVER,), against=LR_CONTROLS)),
        decides_defaults=True),
    "noise": ExperimentSet(
        "The election against noise: statistic and rule, audited with their standard errors",
        "best", tuple(
            Variant(f"SAC-CIKD ({metric.replace('_', ' ')}, {rule})",
                    _cikd(3, election_metric=metric, election_rule=rule, audit_election=True))
            # reward_rate keeps no standard error, so `confident` would never let it teach
            for metric, rule in (("train_returns", "argmax"), ("train_returns", "confident"),
                                 ("eval", "argmax"), ("eval", "confident"),
                                 ("reward_rate", "argmax")))),
}
