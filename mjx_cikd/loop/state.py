"""What one seed carries from vector step to vector step (`TrainState`, with the per-slot
`Slots`), and its layout over env slots (`env_axis`).

It lives below both the loop that advances it (`loop/trainer.py`) and the phase point that
reads and moves it (`cikd/phases.py`), so neither imports the other for it.
"""

from __future__ import annotations

import jax
from flax import struct

from mjx_cikd.agent import normalizer as norm_lib
from mjx_cikd.agent import replay
from mjx_cikd.agent.ensemble import Members
from mjx_cikd.cikd import election
from mjx_cikd.envs import tasks as envs
from mjx_cikd.loop.evaluation import Score


@struct.dataclass
class Slots:
    """What each of the N env slots carries: every leaf has the env axis first (after a seed
    axis), which is what the data-parallel mesh splits (`env_axis`)."""

    env: envs.EnvState
    player: jax.Array  # [N] which member plays each env slot
    ep_return: jax.Array  # [N] return of the running episode
    ep_full: jax.Array  # [N] the running episode began at t = 0 (a staggered first one did not)
    ep_start: jax.Array  # [N] phase points passed when the running episode began
    std_scale: jax.Array  # [N] the running episode's multiplier of the policy's std (1: off;
    #                       agent/exploration.py)


@struct.dataclass
class TrainState:
    """Everything one seed carries from iteration to iteration."""

    slots: Slots
    ring: election.ReturnRing  # train_returns
    rate: election.RewardRate  # reward_rate, since the last phase point
    # [K] each the last periodic evaluation's mean return and standard error (NaN before the
    # first): the eval statistic the election reads at a phase point, where one always falls
    last_eval: Score
    buffer: replay.Replay
    norm: norm_lib.Normalizer
    members: Members
    key: jax.Array
    eval_key: jax.Array  # evaluation and audit draw from their own stream: never change training
    eval_start: envs.EnvState | None = None  # the task's fixed evaluation starts, if it has them
    audit_start: envs.EnvState | None = None  # and the audit's own (`envs.Starts`)


def env_axis(state: TrainState) -> TrainState:
    """The state's layout, a pytree of bools built beside it: True at the leaves whose axis
    after the seeds' runs over env slots or replay rows (`Slots`, `Replay.data`), False at the
    rest. Data parallelism splits the True leaves over devices (`parallel.state_specs`); chosen
    by structure, so a renamed or added field lands on its side without a list to keep."""
    layout = jax.tree.map(lambda _: False, state)
    rows = layout.buffer
    on = lambda tree: jax.tree.map(lambda _: True, tree)  # noqa: E731
    return layout.replace(slots=on(layout.slots), buffer=rows.replace(data=on(rows.data)))
