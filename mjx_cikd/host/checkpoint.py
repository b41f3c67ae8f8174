"""Checkpoints of a whole run (every seed's state and the shared schedule), with orbax's
CheckpointManager, so that `scripts/train.py --resume RUN_DIR` continues a run where it stopped.

Layout: RUN_DIR/checkpoints/<env steps>/{state, meta}. Orbax writes each step into a temporary
directory and renames it into place once complete, so a kill during a save leaves the earlier
steps intact and a half-written step is never read (`latest` lists complete steps only); the
newest `keep` steps are kept. `meta` names what the state belongs to: the config as it decides
the computation (`config.RESUMABLE` and `run_dir` left out), the task's implementation and the
state's leaf shapes. `restore` refuses a checkpoint whose meta differs from the run that resumes
it, naming the difference. Without the replay buffer (`--checkpoint_buffer false`) the buffer's
rows (`Replay.data`) are not written; a restore then keeps the template's (empty) rows. Leaves are
chosen by the state's structure; their paths only name them in the files, so a checkpoint
written before the state took its present structure (replay rows in `data`, per-slot fields in
`slots`) is refused as another run's. A checkpoint
written over D devices restores on any other number that divides N (`meta.shards`: the buffer's
rows are mapped to the new layout by `parallel.relayout`).

The run also keeps the checkpoint of its best evaluation in RUN_DIR/best/<env steps>/ (one,
without the replay buffer; its meta adds the `score`: the best member's evaluation return,
averaged over the seeds), beside the newest ones: `scripts/evaluate.py --best` plays it. Only a
chunk whose last iteration evaluated can be it (the state saved is the one evaluated).

The state holds typed PRNG keys, which orbax cannot write: they travel as their raw key data.
"""

from __future__ import annotations

import pathlib
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from mjx_cikd.config import BEFORE_FIELDS, RESUMABLE, Config, ConfigError
from mjx_cikd.loop import parallel

DIR = "checkpoints"
BEST = "best"  # the best evaluation's checkpoint, beside DIR


def is_key(x) -> bool:
    """A typed PRNG key array (which orbax and numpy files hold only as its raw key data)."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _held(state, with_buffer: bool):
    """The part of the state a checkpoint holds: all of it, or all but the replay buffer's rows
    (`Replay.data`, left out by structure: its `ptr` and `size` stay)."""
    buffer = state.buffer
    return state if with_buffer else state.replace(buffer=buffer.replace(data=None))


def _leaves(state, with_buffer: bool) -> list[tuple[str, Any]]:
    """(path, leaf) of the leaves of `_held(state, with_buffer)`, but the empty ones (MJX and
    Warp have some): the path is the leaf's name in the checkpoint, never how it is chosen."""
    return [(jax.tree_util.keystr(path), x)
            for path, x in jax.tree_util.tree_leaves_with_path(_held(state, with_buffer))
            if np.prod(x.shape) != 0]


def _raw(x):
    """A key's raw data; a template's shapes (from `jax.eval_shape`) placed on this process's
    first device, so that a checkpoint written over several devices (and processes) reads back
    on one."""
    if isinstance(x, jax.ShapeDtypeStruct):
        if is_key(x):
            x = jax.eval_shape(jax.random.key_data, x)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding or
                                    jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
    return jax.random.key_data(x) if is_key(x) else x


def _to_data(state, with_buffer: bool) -> dict:
    return {name: _raw(x) for name, x in _leaves(state, with_buffer)}


def _shapes(state, with_buffer: bool) -> dict[str, str]:
    return {name: f"{x.dtype}{list(x.shape)}" for name, x in _leaves(state, with_buffer)}


def describe(config, impl: str, state) -> dict:
    """The meta of a checkpoint of `state` (a TrainState over seeds, or its shapes): `shapes` of
    every leaf it holds but the buffer's rows, `rows` of those (compared only when saved)."""
    fields = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE + ("run_dir",)}
    shapes = _shapes(state, False)
    rows = {k: v for k, v in _shapes(state, True).items() if k not in shapes}
    return dict(config=fields, impl=impl, buffer=config.checkpoint_buffer,
                shards=parallel.shards(config), shapes=shapes, rows=rows)


def path(run_dir, root: str = DIR) -> pathlib.Path:
    return pathlib.Path(run_dir).resolve() / root


def _manager(run_dir, keep: int | None = None, root: str = DIR) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(path(run_dir, root), options=options,
                                 item_names=("state", "meta"))


def _steps(run_dir, root: str = DIR) -> list[int]:
    if not path(run_dir, root).is_dir():
        return []
    with _manager(run_dir, root=root) as manager:
        return sorted(manager.all_steps())


def steps(run_dir) -> dict[str, list[int]]:
    """The complete checkpoints' steps: the newest ones (`checkpoints`) and the best (`best`)."""
    return {DIR: _steps(run_dir), BEST: _steps(run_dir, BEST)}


def latest(run_dir, root: str = DIR) -> int | None:
    """The newest complete checkpoint's step (env steps per seed), or None."""
    if not path(run_dir, root).is_dir():
        return None
    with _manager(run_dir, root=root) as manager:
        return manager.latest_step()


class Saved(NamedTuple):
    step: int  # env steps per seed at the checkpoint
    state: Any  # TrainState over seeds
    schedule: Any  # trainer.Schedule
    with_buffer: bool  # the replay buffer came from the checkpoint (else: the template's)


def save(run_dir, step: int, state, schedule, meta: dict, keep: int, root: str = DIR) -> None:
    """Write step `step` (replacing one of that number), then drop all but the newest `keep`."""
    tree = {"state": _to_data(state, meta["buffer"]),
            "schedule": schedule._asdict()}
    with _manager(run_dir, keep, root) as manager:
        if step in manager.all_steps():
            manager.delete(step)
        manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                   meta=ocp.args.JsonSave(meta)))
        manager.wait_until_finished()


def save_best(run_dir, step: int, state, schedule, meta: dict, score: float) -> None:
    """`step` as the run's best evaluation (`score`), replacing the one kept before."""
    lean = dict(meta, buffer=False, score=float(score))  # its shapes never held the rows
    save(run_dir, step, state, schedule, lean, 1, BEST)


def best(run_dir, upto: int | None = None) -> float | None:
    """The kept best evaluation's score, or None; one past env step `upto` (a stretch a resume
    or rollback runs again) is removed first."""
    kept = _steps(run_dir, BEST)
    if upto is not None and kept and kept[-1] > upto:
        with _manager(run_dir, root=BEST) as manager:
            manager.delete(kept[-1])
        kept = kept[:-1]
    if not kept:
        return None
    meta = _read(run_dir, kept[-1], lambda m: m.restore(kept[-1], args=ocp.args.Composite(
        meta=ocp.args.JsonRestore())).meta, BEST)
    return meta.get("score")


def _difference(have: dict, want: dict) -> str | None:
    """The first thing a checkpoint's meta says differently from the run that resumes it."""
    if have.get("impl") != want["impl"]:
        return (f"it was written by a run on impl={have.get('impl')}, this one resolves to "
                f"impl={want['impl']} (pass --impl {have.get('impl')} to a fresh run, or resume on "
                f"a machine that has it)")
    # a field the checkpoint's version did not have yet reads as what it meant then (the
    # behaviour before it: its default, or `BEFORE_FIELDS` where the default has changed since),
    # as the run's config.json does when it is read: a run that leaves it so resumes
    saved, then = have.get("config", {}), {**Config().to_dict(), **BEFORE_FIELDS}
    fields = sorted(k for k in set(saved) | set(want["config"])
                    if saved.get(k, then.get(k)) != want["config"].get(k))
    if fields:
        k = fields[0]
        return (f"its config differs in {', '.join(fields)} (e.g. {k}: checkpoint "
                f"{saved.get(k, then.get(k))!r}, run {want['config'].get(k)!r})")
    for part in ("shapes", "rows") if have.get("buffer") else ("shapes",):
        mine, theirs = have.get(part, {}), want[part]
        for name in sorted(set(mine) | set(theirs)):
            if mine.get(name) != theirs.get(name):
                return (f"its state differs in shape at {name} (checkpoint {mine.get(name)}, "
                        f"run {theirs.get(name)})")
    return None


def _read(run_dir, step: int, read, root: str = DIR):
    """`read(manager)` on the checkpoint at `step`, orbax's failures as one ConfigError line."""
    where = path(run_dir, root) / str(step)
    try:
        with _manager(run_dir, root=root) as manager:
            return read(manager)
    except ConfigError:
        raise
    except Exception as err:  # orbax / tensorstore: a truncated, corrupt or foreign step
        first = (str(err).strip().splitlines() or [""])[0].split(" See full TensorStore")[0]
        others = [s for s in _steps(run_dir, root) if s != step]
        hint = (f"; the other complete checkpoint(s) {', '.join(map(str, others))} may be whole: "
                f"move {where.name} away to resume from the newest of them" if others else "")
        raise ConfigError(f"{where}: cannot read the checkpoint ({first[:160]}){hint}") from None


def verify(run_dir, step: int, meta: dict, root: str = DIR) -> dict:
    """The checkpoint's meta, or a ConfigError naming how it differs from this run's `meta`."""
    have = _read(run_dir, step, lambda m: m.restore(
        step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta, root)
    why = _difference(have or {}, meta)
    if why:
        raise ConfigError(f"{path(run_dir, root) / str(step)} is not this run's checkpoint: "
                          f"{why}")
    return have


def restore(run_dir, state_like, schedule_like, meta: dict, step: int | None = None,
            root: str = DIR) -> Saved:
    """The newest complete checkpoint (or `step`) under `root` (the newest ones, or the best),
    shaped like the templates; a ConfigError when there is none, it cannot be read, or it
    belongs to another run (`meta`, from `describe`, is this run's). Leaves it does not hold
    (empty ones; the buffer, if saved without) come from the template, which must then be
    concrete."""
    step = latest(run_dir, root) if step is None else step
    if step is None:
        raise ConfigError(f"{path(run_dir, root)}: no complete checkpoint")
    have = verify(run_dir, step, meta, root)
    with_buffer = bool(have["buffer"])
    target = {"state": _to_data(state_like, with_buffer),
              "schedule": schedule_like._asdict()}
    tree = _read(run_dir, step, lambda m: m.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target))).state, root)
    data = tree["state"]
    flat, treedef = jax.tree_util.tree_flatten_with_path(state_like)
    leaves = []
    for p, ref in flat:
        name = jax.tree_util.keystr(p)
        x = data.get(name, ref)
        if is_key(ref) and name in data:
            x = jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref) if isinstance(
                ref, jax.Array) else None)
        leaves.append(x)
    state = jax.tree.unflatten(treedef, leaves)
    if with_buffer:  # written over another number of devices: the rows as this run lays them out
        state = state.replace(buffer=parallel.relayout(
            state.buffer, meta["config"]["num_envs"], have.get("shards", 1), meta["shards"]))
    return Saved(step=int(step), state=state, schedule=type(schedule_like)(**tree["schedule"]),
                 with_buffer=with_buffer)
