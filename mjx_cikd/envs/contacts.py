"""The contact buffer MuJoCo Warp allocates for a batch of worlds, sized from the model and the
worlds a run steps at once.

MuJoCo Warp keeps one contact buffer for every world of a call (`naconmax` contacts in all, not
per world), and its collision kernels cost in proportion to it. Playground sizes it for
thousands of envs on a GPU (CheetahRun: 100,000); at the 128 envs of the default job on a CPU,
that buffer made every physics step cost 23 ms against 15 ms with one sized to its worlds, with
identical rewards (docs/benchmarks.md, "The contact buffer"). `capacity` gives each world room
for the most contacts its model can make at once, counted pair by pair from the geoms that can
collide, and never more than Playground's own figure. An overflow is not silent: `tasks` keeps
MuJoCo Warp's overflow prints on, all but the solver's iteration cap.
"""

from __future__ import annotations

import mujoco

from mjx_cikd.config import Config

_T = mujoco.mjtGeom
# the most contacts one pair of geoms makes where one of them is of this type (MuJoCo's
# primitive colliders: a sphere or an ellipsoid touches at one point, a capsule along a segment at
# two, a cylinder or a box face at four or eight); any other type (mesh, height field, SDF) at
# mjMAXCONPAIR
PER_PAIR = {int(_T.mjGEOM_PLANE): 1, int(_T.mjGEOM_SPHERE): 1, int(_T.mjGEOM_ELLIPSOID): 1,
            int(_T.mjGEOM_CAPSULE): 2, int(_T.mjGEOM_CYLINDER): 4, int(_T.mjGEOM_BOX): 8}
MAX_PER_PAIR = 50  # mjMAXCONPAIR


def _pair_bound(model: mujoco.MjModel, a: int, b: int) -> int:
    return max(PER_PAIR.get(int(model.geom_type[g]), MAX_PER_PAIR) for g in (a, b))


def _may_collide(model: mujoco.MjModel, a: int, b: int) -> bool:
    """MuJoCo's filter for a geom pair found by the broadphase: compatible contype/conaffinity,
    different weld bodies, and not a body with its parent (the world excepted) unless that filter
    is off."""
    if not ((model.geom_contype[a] & model.geom_conaffinity[b])
            or (model.geom_contype[b] & model.geom_conaffinity[a])):
        return False
    wa, wb = (model.body_weldid[model.geom_bodyid[g]] for g in (a, b))
    if wa == wb:
        return False
    if model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_FILTERPARENT:
        return True
    parent = model.body_weldid[model.body_parentid]
    return not ((wb and parent[wa] == wb) or (wa and parent[wb] == wa))


def per_world(model: mujoco.MjModel) -> int:
    """The most contacts one world of `model` can hold at once: each pair that may collide (and
    each explicit <pair>) at its own bound."""
    bound = sum(_pair_bound(model, a, b) for a in range(model.ngeom)
                for b in range(a + 1, model.ngeom) if _may_collide(model, a, b))
    return bound + sum(_pair_bound(model, a, b)
                       for a, b in zip(model.pair_geom1, model.pair_geom2))


def worlds(config: Config) -> int:
    """The worlds a run resets at once (under MuJoCo Warp a seed's training, evaluation and
    audit envs start in one reset, `Task.starts`), over its seeds side by side."""
    k = config.ensemble_size
    audit = k * config.audit_episodes if config.audit_election else 0
    return config.num_seeds * (config.num_envs + k * config.eval_episodes + audit)


def capacity(model: mujoco.MjModel, worlds: int, shipped: int) -> int:
    """The contact buffer for `worlds` worlds of `model`: room for each world's most contacts,
    at most Playground's `shipped` figure (0: the task makes no contacts)."""
    return min(shipped, max(1, worlds) * per_world(model)) if shipped else 0
