"""The task registry: a batched, auto-resetting MJX task by name.

Sources: MuJoCo Playground's DM Control suite (`CheetahRun`, `CartpoleSwingup`, ...), the
Gym-MuJoCo tasks of the paper through Brax (`halfcheetah`, `hopper`, ...), and tiny probe tasks
(`mjx_cikd.envs.probes`) whose values are known in closed form. Every source is wrapped the same
way: a time limit that *truncates* (kept apart from the task's own termination, so the SAC target
bootstraps through it), and an auto-reset that hands back the true final observation of a
finished episode alongside the first observation of the next.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mjx_cikd.config import Config, ConfigError
from mjx_cikd.envs import contacts, probes

# Implementation chosen by impl="auto", measured on this project's CPU (docs/benchmarks.md):
# MJX-JAX steps cartpole ~15x faster than Warp, Warp steps the cheetah ~6x faster than JAX.
# On a GPU the Warp wheel is usually absent (docs); auto then takes jax.
_AUTO_CPU_PREFERS_JAX = ("Cartpole", "Pendulum", "Acrobot", "PointMass", "Reacher")

BRAX_TASKS = ("ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_pendulum",
              "inverted_double_pendulum", "pusher", "reacher", "swimmer", "walker2d")


# the libraries that simulate a task: their versions go into every run directory and into the key
# of the cached Warp starts
SIMULATION_LIBRARIES = ("jax", "jaxlib", "mujoco", "mujoco-core", "mujoco-mjx", "playground",
                        "brax", "warp-lang")


def library_versions() -> dict[str, str | None]:
    found = {}
    for name in SIMULATION_LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


@functools.cache
def playground_tasks() -> tuple[str, ...]:
    from mujoco_playground._src import dm_control_suite

    return tuple(dm_control_suite.ALL_ENVS)


def task_names() -> tuple[str, ...]:
    return playground_tasks() + BRAX_TASKS + probes.PROBE_TASKS


@functools.cache
def _menagerie_tasks() -> tuple[str, ...]:
    """Playground's locomotion and manipulation tasks: their robots come from MuJoCo Menagerie,
    which Playground clones from GitHub on first use (not something every machine can reach)."""
    from mujoco_playground import registry

    return tuple(n for n in registry.ALL_ENVS if n not in playground_tasks())


def check_task(name: str) -> None:
    """A clear error for an unknown task (with the close names), without building anything."""
    if name in task_names():
        return
    if name in _menagerie_tasks():
        raise ConfigError(f"task {name!r} is one of MuJoCo Playground's Menagerie tasks, whose "
                          f"assets are fetched from GitHub and which mjx_cikd does not register; "
                          f"use a DM Control task (e.g. CheetahRun) or a Brax one (e.g. hopper)")
    close = difflib.get_close_matches(name, task_names(), n=3, cutoff=0.6)
    close += [n for n in task_names() if n.lower() == name.lower() and n not in close]
    hint = (f"did you mean {' or '.join(close)}?" if close
            else f"known: {', '.join(task_names())}")
    raise ConfigError(f"unknown task {name!r}; {hint}")


def warp_available() -> bool:
    try:
        import warp  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_impl(name: str, impl: str, devices: int = 1) -> str:
    """The MJX implementation a task will run with over `devices`, or a ConfigError (unknown
    task included). MuJoCo Warp runs on one device: its state keeps leaves without an env axis
    (`_per_env`), which a mesh cannot split, so a run over several takes MJX-JAX."""
    check_task(name)
    if impl == "warp" and devices > 1:
        raise ConfigError(f"--impl warp runs on one device (MuJoCo Warp's state has leaves "
                          f"without an env axis): use --impl jax (or auto) with --devices "
                          f"{devices}")
    if name in probes.PROBE_TASKS:
        return "jax"
    if name in BRAX_TASKS:
        if impl == "warp":
            raise ConfigError(f"task {name!r} (Brax) runs on MJX-JAX only; use --impl jax")
        return "jax"
    if impl == "warp" and not warp_available():
        raise ConfigError("--impl warp needs MuJoCo Warp: pip install warp-lang")
    if impl == "auto":
        if devices > 1 or not warp_available() or jax.default_backend() != "cpu":
            return "jax"
        return "jax" if name.startswith(_AUTO_CPU_PREFERS_JAX) else "warp"
    return impl


def impl_note(name: str, impl: str, devices: int) -> str | None:
    """One line when `--impl auto` took MJX-JAX only because the run spans several devices."""
    if impl != "auto" or devices <= 1 or resolve_impl(name, impl) != "warp":
        return None
    return (f"--impl auto takes MJX-JAX for {name} over {devices} devices (MuJoCo Warp, its "
            f"choice on one device, runs on one only)")


@contextlib.contextmanager
def _quiet_warp():
    """Silence MuJoCo Warp while it loads: its per-module timing lines (Python) and its CUDA-driver
    notice on CPU machines (printed by native code, hence the file-descriptor redirect)."""
    import warp

    warp.config.quiet = True
    warp.config.log_level = warp.LOG_WARNING
    logging.getLogger("warp").setLevel(logging.ERROR)
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(devnull, 1), os.dup2(devnull, 2)
        warp.init()
        yield
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _no_iteration_prints(env) -> None:
    """MuJoCo Warp prints a line per world whenever its solver hits its iteration cap (Playground
    caps the DM Control tasks at a few iterations on purpose): turn those kernel printfs off, and
    keep the others (a contact or constraint buffer too small for the worlds says so)."""
    from mujoco.mjx.third_party.mujoco_warp import OverflowType

    keep = OverflowType.ALL & ~(OverflowType.ITERATIONS | OverflowType.LS_ITERATIONS)
    model = env._mjx_model
    opt = model.opt.replace(_impl=model.opt._impl.replace(warn_overflow=int(keep)))
    env._mjx_model = model.replace(opt=opt)


def _size_contacts(env, worlds: int) -> None:
    """Playground reads `naconmax` when it builds a Data (at every reset): the buffer for
    `worlds` worlds instead of its GPU-sized figure (`contacts`)."""
    shipped = getattr(env._config, "naconmax", None)
    if shipped:  # absent, None or 0: the source's own choice stands
        env._config.naconmax = contacts.capacity(env.mj_model, worlds, int(shipped))


@struct.dataclass
class EnvState:
    inner: Any  # the source task's own state, batched over envs
    obs: jax.Array  # [N, obs] current observation (the first of a new episode after a reset)
    t: jax.Array  # [N] steps taken in the current episode
    first: Any = None  # Warp only: each env's own initial state, restored at every reset


class StartLayout(NamedTuple):
    """The first states one seed asks of its task: `num_envs` training envs (their time-limit
    clocks staggered when `stagger`) and, where the task replays fixed starts, `eval_envs`
    evaluation episodes (which the election reads too) and `audit_envs` for the election audit
    (0: none)."""

    num_envs: int
    eval_envs: int
    audit_envs: int
    stagger: bool


class Starts(NamedTuple):
    """A seed's first env states (`Task.starts`): its training envs and, where the task replays
    fixed starts, its evaluation's and its audit's (drawn apart, so the audit never replays the
    episodes the `eval` statistic played); None where every evaluation draws a fresh reset."""

    env: EnvState
    eval: EnvState | None = None
    audit: EnvState | None = None


class StepOut(NamedTuple):
    next_obs: jax.Array  # [N, obs] the observation the action led to (before any reset)
    reward: jax.Array  # [N]
    terminated: jax.Array  # [N] bool, the task ended the episode: no bootstrap
    truncated: jax.Array  # [N] bool, the time limit ended it: bootstrap through


@struct.dataclass
class Task:
    """A batched task. `reset(keys[N])`, `step(state, action[N, A], key)`.

    Resets: MJX-JAX draws a fresh random initial state for every new episode (its reset costs
    about one step). MuJoCo Warp's reset rebuilds the whole Data (seconds per call on a CPU,
    measured in docs/benchmarks.md), so under Warp each env slot restarts from its own initial
    state drawn once at `reset` (as Playground's training wrapper does by default): N distinct
    initial states, each replayed by its slot.
    """

    name: str = struct.field(pytree_node=False)
    impl: str = struct.field(pytree_node=False)
    obs_size: int = struct.field(pytree_node=False)
    action_size: int = struct.field(pytree_node=False)
    episode_length: int = struct.field(pytree_node=False)
    _reset: Callable = struct.field(pytree_node=False)
    _step: Callable = struct.field(pytree_node=False)
    # for playback's renderer (mjx_cikd.host.playback): the source's MuJoCo model and its control
    # step in seconds; None for the probe tasks, which have neither
    mj_model: Any = struct.field(pytree_node=False, default=None)
    dt: float | None = struct.field(pytree_node=False, default=None)
    reward_bound: float | None = struct.field(pytree_node=False, default=None)  # |r| per step
    # the worlds one reset may hold (MuJoCo Warp's contact buffer is sized for them); None: any
    worlds: int | None = struct.field(pytree_node=False, default=None)

    @property
    def fixed_starts(self) -> bool:
        """Whether episodes restart from states drawn once (MuJoCo Warp), evaluations included."""
        return self.impl == "warp"

    def starts(self, env_key: jax.Array, eval_key: jax.Array, layout: StartLayout) -> Starts:
        """A seed's first states, in one reset: the training envs' from `env_key`, and with fixed
        starts the evaluation's from `eval_key` and the audit's from a key folded off it."""
        batches = {"env": jax.random.split(env_key, layout.num_envs)}
        if self.fixed_starts:
            batches["eval"] = jax.random.split(eval_key, layout.eval_envs)
            if layout.audit_envs:
                batches["audit"] = jax.random.split(jax.random.fold_in(eval_key, 1),
                                                    layout.audit_envs)
        states = self.reset_batches(*batches.values(), stagger=layout.stagger)
        return Starts(**dict(zip(batches, states)))

    def reset(self, keys: jax.Array, stagger: bool = False) -> EnvState:
        """Fresh episodes. `stagger` starts each env's time-limit clock at a random step in
        [0, T), so that N synchronised envs do not all finish (and reset) in the same step."""
        return self.reset_batches(keys, stagger=stagger)[0]

    def reset_batches(self, *batches: jax.Array, stagger: bool = False) -> tuple[EnvState, ...]:
        """`reset` of each batch of keys, in a single call of the source's reset: what separate
        calls would return (every env has its own key), at the cost of one. A reset costs about
        the same whatever the batch on a CPU under Warp (CheetahRun's runs 200 stabilising
        steps: ~6 s for 30 envs or 286). `stagger` applies to the first batch only."""
        total = sum(k.shape[0] for k in batches)
        if self.worlds is not None and total > self.worlds:
            raise ConfigError(f"a reset of {total} worlds on a task whose MuJoCo Warp contact "
                              f"buffer holds {self.worlds}: build it with make_task(config, "
                              f"worlds=...) for them")
        inner = jax.vmap(self._reset)(jnp.concatenate(batches))
        states, start = [], 0
        for i, keys in enumerate(batches):
            size = keys.shape[0]
            mine = jax.tree.map(
                lambda x, start=start, size=size: x[start:start + size] if _per_env(x, total)
                else x, inner)
            t = jnp.zeros(size, jnp.int32)
            if stagger and i == 0:
                t = jax.random.randint(jax.random.fold_in(keys[0], 1), t.shape, 0,
                                       self.episode_length)
            states.append(EnvState(inner=mine, obs=_finite_obs(mine.obs), t=t,
                                   first=mine if self.fixed_starts else None))
            start += size
        return tuple(states)

    def step_raw(self, state: EnvState, action: jax.Array) -> tuple[EnvState, StepOut]:
        """One step without reset: the evaluation rollout masks finished episodes itself."""
        inner = jax.vmap(self._step)(state.inner, action)
        t = state.t + 1
        next_obs = _finite_obs(inner.obs)
        terminated = inner.done > 0.5
        truncated = (t >= self.episode_length) & ~terminated
        out = StepOut(next_obs, jnp.nan_to_num(inner.reward.astype(jnp.float32)),
                      terminated, truncated)
        return state.replace(inner=inner, obs=next_obs, t=t), out

    def step(self, state: EnvState, action: jax.Array, key: jax.Array) -> tuple[EnvState, StepOut]:
        """One step; finished envs restart (see the class docstring for how)."""
        stepped, out = self.step_raw(state, action)
        done = out.terminated | out.truncated

        def pick(new, old):
            if not _per_env(old, done.shape[0]):
                return old
            return jnp.where(done.reshape(done.shape + (1,) * (old.ndim - 1)), new, old)

        def restart(stepped: EnvState, inner) -> EnvState:
            inner = jax.tree.map(pick, inner, stepped.inner)
            return stepped.replace(inner=inner, obs=_finite_obs(inner.obs),
                                   t=jnp.where(done, 0, stepped.t))

        if self.fixed_starts:
            # no cond here: Warp's custom vmap also fails inside a cond whose predicate is
            # batched, as done.any() is under the seed vmap
            return restart(stepped, state.first), out
        # Most steps finish no episode: skip the reset's cost then (a select under seed-vmap).
        fresh = lambda s: restart(s, jax.vmap(self._reset)(  # noqa: E731
            jax.random.split(key, done.shape[0])))
        return jax.lax.cond(done.any(), fresh, lambda s: s, stepped), out


def mjx_data(state: EnvState):
    """The batched MJX Data of a MuJoCo task's state (Playground keeps it as `data`, Brax as
    `pipeline_state`), e.g. to render it."""
    inner = state.inner
    return inner.data if hasattr(inner, "data") else inner.pipeline_state


def _per_env(x: jax.Array, n: int) -> bool:
    """Whether a batched state leaf has the env axis (of n): Warp keeps a few leaves without it
    (e.g. empty buffers), which resets must leave as they are."""
    return x.ndim > 0 and x.shape[0] == n


def _finite_obs(obs: jax.Array) -> jax.Array:
    """An observation as float32 with NaN and infinities zeroed (dict observations refused)."""
    if isinstance(obs, dict):
        raise ConfigError("tasks with dict observations are not supported")
    return jnp.nan_to_num(obs.astype(jnp.float32), posinf=0.0, neginf=0.0)


def reward_bound(name: str) -> float | None:
    """A bound on |r| per step, where the task has one by construction: DM Control's rewards are
    tolerances in [0, 1] (Tassa et al. 2018, "DeepMind Control Suite", section 2), and so are
    Playground's ports of them; the probes' are known (`probes.py`); Brax's are unbounded."""
    if name in probes.PROBE_TASKS:
        return probes.REWARD_BOUND[name]
    if name in playground_tasks():
        return 1.0
    return None


def make_task(config: Config, worlds: int | None = None) -> Task:
    """Build the task named by `config.env` with its implementation and time limit. Under MuJoCo
    Warp its contact buffer holds `worlds` worlds (default: what the run resets at once,
    `contacts.worlds`); `Task.worlds` says how many."""
    name = config.env
    impl = resolve_impl(name, config.impl, config.devices)
    mj_model, sized = None, None
    if name in probes.PROBE_TASKS:
        env = probes.make(name)
        limit = env.episode_length
    elif name in BRAX_TASKS:
        import brax.envs

        env = brax.envs.get_environment(name, backend="mjx")
        limit = 1000
        mj_model = env.sys.mj_model
    else:
        from mujoco_playground import registry

        quiet = _quiet_warp() if impl == "warp" else contextlib.redirect_stdout(io.StringIO())
        with quiet:
            env = registry.load(name, config_overrides={"impl": impl})
        if impl == "warp":
            _no_iteration_prints(env)
            sized = worlds or contacts.worlds(config)
            _size_contacts(env, sized)
        if impl == "jax" and jax.process_count() > 1:
            # MJX puts the model on jax.devices()[0] (mujoco/mjx/_src/io.py:89), which in a run of
            # several processes is process 0's: every other one would close over an array it
            # cannot read. Each process's own copy instead (Playground keeps it in _mjx_model).
            from mujoco import mjx

            env._mjx_model = mjx.put_model(env.mj_model, device=jax.local_devices()[0], impl=impl)
        limit = int(env._config.episode_length)
        mj_model = env.mj_model
    if config.episode_length:
        limit = config.episode_length
    return Task(name=name, impl=impl, obs_size=int(env.observation_size),
                action_size=int(env.action_size), episode_length=int(limit),
                _reset=env.reset, _step=env.step, mj_model=mj_model,
                dt=None if mj_model is None else float(env.dt), reward_bound=reward_bound(name),
                worlds=sized)
