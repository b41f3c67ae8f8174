"""Paired forks (issue 30): what one distillation phase gives a student, and for how long.

From one state of an Ensemble-SAC run, every arm continues with the same continuation keys; the
arms differ only by what happens at the fork (`Arm`): nothing, a phase of D steps, the authors'
passes over the buffer, a random teacher, a hard copy. The teacher is the member whose audit
before the fork (every member's deterministic return over `episodes`) is best: the election's
truth, so that what a phase gives is not mixed with the election's errors. Every member is
audited again right after the fork and after each horizon of SAC updates, on the same audit keys
in every arm, so that each student's gain pairs up: its audited return in an arm minus in the
no-phase arm, the same episodes' starts on both sides.

The fork draws its keys (the phase's batches, a random teacher) and the audits theirs from the
seed's evaluation stream (`TrainState.eval_key`), never from the training key: an arm's
continuation is the no-phase arm's but for the members the phase moved.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax

from mjx_cikd.agent.ensemble import Ensemble
from mjx_cikd.cikd import distillation, election
from mjx_cikd.cikd.phases import PhaseOutcome
from mjx_cikd.config import Config, replace
from mjx_cikd.envs.tasks import Task
from mjx_cikd.loop.evaluation import Score, make_score
from mjx_cikd.loop.state import TrainState

# salts of the evaluation stream: the audit before the fork, the teacher's draw, the phase, and
# the audit after the fork at horizon i (AFTER + i)
BEFORE, TEACHER, PHASE, AFTER = 30_001, 30_002, 30_003, 30_100


@dataclasses.dataclass(frozen=True)
class Arm:
    key: str  # its short name on a command line
    name: str  # its legend
    phase: dict | None  # the phase's Config fields (teacher, distill_steps, ...); None: no phase

    @property
    def teacher(self) -> str:
        """Who teaches: the best audit's member, or a random one (`--teacher`'s rules)."""
        return (self.phase or {}).get("teacher", "best")


ARMS = (
    Arm("none", "no phase", None),
    Arm("d64", "D=64 (shipped)", {}),
    Arm("d1024", "D=1024", dict(distill_steps=1024)),
    # the authors' phase: 5 passes over the filled buffer at lr 1e-3 (train_ensemble_sac.py:171-174,
    # docs/fidelity.md)
    Arm("authors", "5 passes at 1e-3 (authors)", dict(distill_epochs=5, distill_lr=1e-3)),
    Arm("random", "random teacher, D=1024", dict(distill_steps=1024, teacher="random")),
    Arm("copy", "hard copy", dict(hard_copy=True)),
)


class Elected(NamedTuple):
    """One seed's audit before the fork and the teacher it gives."""

    before: Score  # [K] each member's deterministic return and its standard error
    teacher: jax.Array  # the best audit's member, or a random one (`Arm.teacher`)


def make_elect(task: Task, ensemble: Ensemble, rule: str, episodes: int):
    """-> elect(state) -> Elected for one seed, the teacher by `rule` (`Arm.teacher`)."""
    scorer = make_score(task, ensemble, episodes)

    def elect(state: TrainState) -> Elected:
        key = state.eval_key
        before = scorer(state.members, state.norm, jax.random.fold_in(key, BEFORE),
                        state.audit_start)
        teacher, _ = election.elect_teacher(before.mean, rule, jax.random.fold_in(key, TEACHER))
        return Elected(before, teacher)

    return elect


def make_fork(config: Config, ensemble: Ensemble, arm: Arm):
    """-> fork(state, teacher) -> (state, PhaseStats) for one seed: the arm's phase (none: the
    state as it is, NaN gaps)."""
    if arm.phase is None:
        return lambda state, teacher: (state, PhaseOutcome.skipped(ensemble.size).stats)
    phase = distillation.make_phase(replace(config, **arm.phase), ensemble)

    def fork(state: TrainState, teacher: jax.Array) -> tuple[TrainState, distillation.PhaseStats]:
        members, stats = phase(state.members, state.buffer, state.norm, teacher,
                               jax.random.fold_in(state.eval_key, PHASE))
        return state.replace(members=members), stats

    return fork


def make_audit(task: Task, ensemble: Ensemble, episodes: int):
    """-> audit(state, i) -> Score: every member over `episodes` at horizon i, on keys that are
    the same in every arm of the fork."""
    scorer = make_score(task, ensemble, episodes)

    def audit(state: TrainState, i: jax.Array) -> Score:
        return scorer(state.members, state.norm, jax.random.fold_in(state.eval_key, AFTER + i),
                      state.audit_start)

    return audit
