"""Checkpoints of a whole run (every seed's state and the shared schedule) with
orbax, so that `scripts/train.py --resume RUN_DIR` continues a run where it stopped.

The state holds typed PRNG keys, which orbax cannot write: they travel as their raw key data.
A checkpoint is written into a temporary directory and renamed, so a crash while saving leaves the
previous one intact.
"""

from __future__ import annotations

import pathlib
import shutil

import jax
import orbax.checkpoint as ocp

NAME = "checkpoint"


def is_key(x) -> bool:
    """A typed PRNG key array (which orbax and numpy files hold only as its raw key data)."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_data(tree) -> dict:
    """Leaves by position, keys as raw data; empty leaves (Warp has some) are not written."""
    leaves = jax.tree.leaves(tree)
    return {str(i): jax.random.key_data(x) if is_key(x) else x
            for i, x in enumerate(leaves) if x.size > 0}


def _from_data(data: dict, like):
    leaves, treedef = jax.tree.flatten(like)
    out = []
    for i, ref in enumerate(leaves):
        x = data.get(str(i), ref)
        out.append(jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref))
                   if is_key(ref) and str(i) in data else x)
    return jax.tree.unflatten(treedef, out)


def path(run_dir: str | pathlib.Path) -> pathlib.Path:
    return pathlib.Path(run_dir).resolve() / NAME


def exists(run_dir) -> bool:
    return (path(run_dir) / "_CHECKPOINT_METADATA").exists() or path(run_dir).is_dir()


def save(run_dir, state, schedule) -> None:
    final = path(run_dir)
    tmp = final.with_name(NAME + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tree = {"state": _to_data(state), "schedule": tuple(schedule)}
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp, tree)
    ckpt.wait_until_finished()
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def restore(run_dir, state_like, schedule_like):
    """-> (state, schedule), shaped like the given templates."""
    target = {"state": _to_data(state_like), "schedule": tuple(schedule_like)}
    tree = ocp.StandardCheckpointer().restore(path(run_dir), target)
    state = _from_data(tree["state"], state_like)
    schedule = type(schedule_like)(*tree["schedule"])
    return state, schedule
