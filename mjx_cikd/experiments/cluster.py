"""Spreading a planned experiment set's runs over a Ray cluster (`reproduce.py SET --cluster ray`).

What each run needs is decided by `experiments.plan` on the driver, before anything is submitted,
so the skip / resume / restart / reuse rules stay in `mjx_cikd.experiments.plan`; this module
carries the plan out with `experiments.execute`, as the local path does, only elsewhere:

  skip       on the driver, first (it only rewrites the run's variant.json);
  train, resume, restart
             one Ray task per run, each in a worker process of its own that exits after the run
             (max_calls=1: JAX keeps a process's compiled programs, and on a GPU the memory it
             preallocated, until the process exits). A task asks for one GPU where the cluster has
             GPUs, and for `cpus_per_run` CPUs (default 1). Ray retries nothing (max_retries=0):
             a retried task would carry the action planned before the failure; re-running the
             command re-decides from disk instead (finished runs skipped, the others resumed);
  reuse      on the driver, after every training task has ended. A reused run copies a twin that
             was finished when planned; copying only once no task is running means a copy never
             reads a directory that a worker is writing, whatever the set.

A run that fails (its exception, or its worker dying) is reported and the others go on; `run`
returns the failures and `scripts/reproduce.py` exits non-zero naming them. The driver itself
keeps JAX on the CPU: it only plans, and the GPUs are the workers'.

The workers write into the run directories the driver planned, so the paths must be absolute and
mean the same on every node: on one machine that is trivially true; a multi-node cluster needs
`--out` on a filesystem every node mounts at the same path (docs/cluster.md).
"""

from __future__ import annotations

import os
import pathlib
import socket
import sys
from typing import Callable, NamedTuple

from mjx_cikd import config as config_lib
from mjx_cikd.config import ConfigError
from mjx_cikd.experiments import plan as experiments
from mjx_cikd.experiments.plan import Planned

INSTALL = "pip install -e '.[cluster]'"
TRAINED = ("train", "resume", "restart")  # the actions a Ray task carries out
ON_DRIVER = ("skip", "reuse")
# ray.init retries an unreachable head for minutes, printing as it goes: the address is probed
# first, for this long.
CONNECT_TIMEOUT_S = 10.0


class ClusterSpec(NamedTuple):
    """What --cluster and --cpus_per_run ask for."""

    address: str | None  # a Ray address to join ("HOST:PORT", "auto", "ray://..."); None: start one
    cpus_per_run: float = 1.0


class Resources(NamedTuple):
    """What one run asks of Ray."""

    num_cpus: float
    num_gpus: int


class Ran(NamedTuple):
    """Where a run's task ran (a worker's answer)."""

    host: str
    pid: int


class Failure(NamedTuple):
    """A run whose task failed."""

    run: str  # set/task/variant
    run_dir: pathlib.Path
    error: str  # one line: the exception's type and first line


class Outcome(NamedTuple):
    """What `run` planned, and the runs of it that failed."""

    planned: list[Planned]
    failures: list[Failure]


def parse(cluster: str | None, cpus_per_run: str | None = None) -> ClusterSpec | None:
    """--cluster ray[=ADDRESS] and --cpus_per_run N -> a ClusterSpec, or None without --cluster."""
    if cluster is None:
        if cpus_per_run is not None:
            raise ConfigError("--cpus_per_run is read with --cluster only")
        return None
    kind, eq, address = cluster.partition("=")
    if kind.strip() != "ray" or (eq and not address.strip()):
        raise ConfigError(f"--cluster {cluster!r}: expected ray (a local Ray cluster) or "
                          f"ray=ADDRESS (e.g. ray=10.0.0.1:6379, ray=auto)")
    cpus = config_lib.coerce("cpus_per_run", "1" if cpus_per_run is None else cpus_per_run, float)
    if not cpus > 0:
        raise ConfigError(f"--cpus_per_run must be > 0, got {cpus_per_run}")
    return ClusterSpec(address.strip() or None, cpus)


def resources(nodes: list[dict], cpus_per_run: float) -> Resources:
    """What each run asks for, from the nodes `ray.nodes()` lists: one GPU (and `cpus_per_run`
    CPUs) where the cluster has GPUs, else `cpus_per_run` CPUs; an error where no alive node
    could ever hold that, since Ray would leave the tasks pending without end."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    gpus = any(r.get("GPU", 0) >= 1 for r in alive)
    fits = [r for r in alive
            if r.get("CPU", 0) >= cpus_per_run and (not gpus or r.get("GPU", 0) >= 1)]
    if not fits:
        most = max((r.get("CPU", 0) for r in alive if not gpus or r.get("GPU", 0) >= 1),
                   default=0)
        raise ConfigError(f"--cpus_per_run {cpus_per_run:g}: no node of the cluster has that "
                          f"many CPUs{' beside a GPU' if gpus else ''} (the most: {most:g})")
    return Resources(cpus_per_run, 1 if gpus else 0)


def host_port(address: str) -> tuple[str, int] | None:
    """The (host, port) a Ray address names, to probe; None for one Ray resolves itself (auto)."""
    rest = address.split("://", 1)[-1].rstrip("/")
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def run_name(p: Planned) -> str:
    """set/task/variant: how the driver's lines and the failures name a run."""
    return f"{p.set_name}/{p.task}/{p.variant.name}"


def one_line(err: BaseException) -> str:
    """A task's error as one line: the worker's exception where Ray carries it, else Ray's own."""
    cause = getattr(err, "cause", None)
    shown = cause if isinstance(cause, BaseException) else err
    lines = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def failure_line(failures: list[Failure], total: int) -> str:
    """What reproduce.py prints (after 'error: ') when runs failed."""
    named = "; ".join(f"{f.run} ({f.error})" for f in failures)
    return (f"{len(failures)} of {total} run(s) failed on the cluster: {named}; re-run the same "
            f"command to resume them")


def say(msg: str) -> None:
    """A line of the driver's, beside the `[reproduce i/n]` lines the workers' tasks print."""
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def _import_ray():
    # Ray is an optional extra (pip install -e '.[cluster]'): the trainer and the local path
    # never need it, so it is imported here, only when --cluster asks for it, and its absence is
    # one line, not a traceback.
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--cluster ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def connect(ray, spec: ClusterSpec) -> None:
    """Join the cluster at `spec.address`, or start a Ray instance on this machine (address
    "local": a new one, never one found running)."""
    target = host_port(spec.address) if spec.address else None
    if target:
        try:
            socket.create_connection(target, timeout=CONNECT_TIMEOUT_S).close()
        except OSError as err:
            raise ConfigError(f"--cluster ray={spec.address}: cannot reach a Ray head there "
                              f"({err.strerror or err}); start one with `ray start --head`"
                              ) from None
    try:
        if spec.address:
            ray.init(address=spec.address)
        else:
            ray.init(address="local", include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = f"ray={spec.address}" if spec.address else "ray (a local instance)"
        raise ConfigError(f"--cluster {where}: {one_line(err)}") from None


def _execute(p: Planned, index: int, total: int) -> Ran:
    """The body of a run's Ray task (module-level: a worker imports it by name)."""
    experiments.execute(p, index, total)
    return Ran(socket.gethostname(), os.getpid())


def dispatch(ray, planned: list[Planned], cpus_per_run: float) -> list[Failure]:
    """Carry out `planned` on the connected cluster `ray` (see the module's docstring)."""
    unknown = sorted({p.action for p in planned} - set(TRAINED + ON_DRIVER))
    if unknown:
        raise ValueError(f"no rule for the planned action(s) {', '.join(unknown)}")
    relative = [str(p.run_dir) for p in planned if not p.run_dir.is_absolute()]
    if relative:  # a worker's working directory is not the driver's
        raise ValueError(f"run directories must be absolute on a cluster: {relative[0]}")
    need = resources(ray.nodes(), cpus_per_run)
    numbered, total = list(enumerate(planned, 1)), len(planned)
    for i, p in numbered:
        if p.action == "skip":
            experiments.execute(p, i, total)
    task = ray.remote(max_calls=1, max_retries=0)(_execute).options(
        num_cpus=need.num_cpus, num_gpus=need.num_gpus)
    pending = {task.remote(p, i, total): p for i, p in numbered if p.action in TRAINED}
    say(f"{len(pending)} run(s) submitted, each asking for {need.num_cpus:g} CPU(s)"
        f"{' and 1 GPU' if need.num_gpus else ''}")
    failures = []
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        p = pending.pop(ref)
        try:
            ran = ray.get(ref)
        except ray.exceptions.RayError as err:
            failures.append(Failure(run_name(p), p.run_dir, one_line(err)))
            say(f"{run_name(p)}: FAILED\n{err}")
        else:
            say(f"{run_name(p)}: finished on {ran.host} (worker pid {ran.pid})")
    for i, p in numbered:
        if p.action == "reuse":
            experiments.execute(p, i, total)
    return failures


def run(spec: ClusterSpec, plan: Callable[[], list[Planned]]) -> Outcome:
    """Plan (`plan()`, on the driver) and carry the plan out on the cluster `spec` names: Ray is
    imported first, so a missing install fails before the planning's seconds; the cluster is
    joined (or a local one started) after, and left at the end."""
    ray = _import_ray()
    _driver_on_cpu()
    planned = plan()
    connect(ray, spec)
    try:
        return Outcome(planned, dispatch(ray, planned, spec.cpus_per_run))
    finally:
        ray.shutdown()


def _driver_on_cpu() -> None:
    """Keep the driver's JAX off the accelerators. Planning may ask JAX for a backend (the
    "auto" MJX implementation, a checkpoint look-up); on a GPU it would take most of the GPU's
    memory for the driver's lifetime, and a run scheduled on that GPU would go without. Set in
    this process only: an environment variable would reach the workers of a local cluster."""
    import jax  # takes seconds to load: after the flags are read, as experiments.plan does

    jax.config.update("jax_platforms", "cpu")  # no effect once a backend exists
