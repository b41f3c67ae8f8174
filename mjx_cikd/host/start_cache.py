"""The first env states of a run, kept on disk beside the compilation cache.

Under MuJoCo Warp a reset is physics, not compilation: CheetahRun's runs 200 stabilising steps,
6 s at 256 envs and 22 s at 2048 on this project's CPU (docs/benchmarks.md), as long as the
compilation the XLA cache saves. The starts of a run (its training envs and, where the task
replays fixed starts, its evaluation's: `envs.Starts`) are a pure function of its seed keys, its
task and the code, so a second identical run loads them instead of simulating them again.
`prepare` gives the run its `FirstStates`: the file when there is one, else the compiled reset.

A file's name hashes everything the starts depend on: the bits of the seed keys, the task, its
sizes and options, the versions of the libraries that simulate it, and the source of the modules
that turn keys into starts (envs.py, trainer.py). A change to any of them is a miss, never a
stale start; a file whose arrays do not match the expected shapes is a miss too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
from typing import Callable

import jax
import numpy as np

from mjx_cikd.envs import tasks as envs
from mjx_cikd.host.checkpoint import is_key

SUBDIR = "env_starts"
_SOURCES = ("envs/tasks.py", "loop/trainer.py")  # beside the package root


def enabled(cache_dir: str, task: envs.Task) -> bool:
    """Only where a reset is worth a file (a task with fixed starts), with a cache directory."""
    return bool(cache_dir) and task.fixed_starts


def path(cache_dir: str, task: envs.Task, layout: envs.StartLayout,
         keys: jax.Array) -> pathlib.Path:
    """The file that holds (or will hold) the starts of `keys` for this task and layout."""
    here = pathlib.Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "env": task.name, "impl": task.impl, "episode_length": task.episode_length,
        **layout._asdict(), "versions": envs.library_versions()}, sort_keys=True).encode())
    digest.update(np.asarray(jax.random.key_data(keys)).tobytes())
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    folder = pathlib.Path(os.path.expanduser(cache_dir)) / SUBDIR
    return folder / f"{task.name}-{task.impl}-n{layout.num_envs}-{digest.hexdigest()[:24]}.npz"


def load(file: pathlib.Path, like):
    """The starts saved in `file`, shaped as `like` (a tree of ShapeDtypeStructs), or None."""
    if not file.exists():
        return None
    leaves, treedef = jax.tree.flatten(like)
    try:
        with np.load(file) as data:
            index = data["index"]
            unique = {j: data[f"u{j}"] for j in set(index.tolist())}
    except (OSError, KeyError, ValueError, EOFError):
        return None
    if len(index) != len(leaves):
        return None
    arrays = [unique[j] for j in index.tolist()]
    out = []
    for a, leaf in zip(arrays, leaves):
        if is_key(leaf):  # typed PRNG keys travel as their raw bits
            if a.shape[:len(leaf.shape)] != leaf.shape:
                return None
            out.append(jax.random.wrap_key_data(a))
        elif a.shape != leaf.shape or a.dtype != leaf.dtype:
            return None
        else:
            out.append(jax.numpy.asarray(a))
    if any(o.shape != leaf.shape or o.dtype != leaf.dtype for o, leaf in zip(out, leaves)):
        return None
    return jax.tree.unflatten(treedef, out)


def save(file: pathlib.Path, starts) -> None:
    """Write atomically (a concurrent reader sees the whole file or none), each distinct array
    once and compressed: Warp's starts hold every array twice (`EnvState.first` is the state
    itself at a reset) and mostly empty contact buffers (CheetahRun, 286 envs: 73 MB of arrays,
    19 MB distinct, 2 MB compressed)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    leaves = [np.asarray(jax.random.key_data(x) if is_key(x) else x)
              for x in jax.tree.leaves(starts)]
    unique, index = {}, []
    for a in leaves:
        digest = hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).digest()
        index.append(unique.setdefault(digest, (len(unique), a))[0])
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez_compressed(f, index=np.asarray(index, np.int64),
                            **{f"u{j}": a for j, a in unique.values()})
    os.replace(tmp, file)


@dataclasses.dataclass
class FirstStates:
    """A run's first states for its seed keys: loaded from `file` when it holds them, else
    simulated (and saved there, when there is a file to keep them in)."""

    shape: envs.Starts  # Starts[S] as ShapeDtypeStructs
    file: pathlib.Path | None  # where they are kept (None: nowhere)
    simulate: Callable[[jax.Array], envs.Starts]  # the vmapped reset, jitted
    compiled: Callable[[jax.Array], envs.Starts] | None  # ahead of time; None: the file had them

    def __call__(self, keys: jax.Array) -> envs.Starts:
        starts = load(self.file, self.shape) if self.file else None
        if starts is None:
            starts = (self.compiled or self.simulate)(keys)
            if self.file:
                save(self.file, starts)
        return starts


def prepare(trainer, keys: jax.Array, cache_dir: str) -> FirstStates:
    """The first states of `trainer`'s seeds `keys` (a `trainer.Trainer`): the reset is compiled
    only if `cache_dir` does not hold them yet."""
    simulate = jax.jit(jax.vmap(trainer.starts))
    file = (path(cache_dir, trainer.task, trainer.layout, keys)
            if enabled(cache_dir, trainer.task) else None)
    cached = file is not None and file.exists()
    return FirstStates(shape=jax.eval_shape(simulate, keys), file=file, simulate=simulate,
                       compiled=None if cached else simulate.lower(keys).compile())
