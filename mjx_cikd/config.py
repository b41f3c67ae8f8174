"""The run configuration: one frozen dataclass, and the one place that parses profiles and flags.

Every field is a command-line flag spelled as the field (`--num_envs 2048`). `--profile NAME`
loads `profiles/NAME.toml` first; flags override it. `Config.validate` turns bad input into one
`ConfigError` line before anything is compiled.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import pathlib
import sys
import tomllib
import typing
from dataclasses import dataclass

# profiles/ beside the package in a checkout (or an editable install); after `pip install .`, the
# copy that pyproject's data-files put under the environment's prefix
PROFILE_DIRS = (pathlib.Path(__file__).resolve().parent.parent / "profiles",
                pathlib.Path(sys.prefix) / "share" / "mjx_cikd" / "profiles")


def profile_dir() -> pathlib.Path:
    return next((d for d in PROFILE_DIRS if d.is_dir()), PROFILE_DIRS[0])
ALGOS = ("sac", "ensemble", "cikd")
IMPLS = ("auto", "jax", "warp")
CHOICES = {
    "algo": ALGOS,
    "impl": IMPLS,
    "log_std_bounds": ("smooth", "clip"),
    "election_metric": ("train_returns", "reward_rate", "eval"),
    "teacher": ("best", "random", "worst"),
    "distill_parts": ("both", "policy", "critic"),
    "distill_target": ("soft", "hard"),
    "distill_schedule": ("fixed", "ada"),
    "policy_selection": ("uniform", "softmax", "eps_greedy"),
    "on_nonfinite": ("stop", "rollback"),
    "parallel": ("data", "seeds"),
    "progress": ("bar", "plain", "off"),
}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class ConfigError(ValueError):
    """Bad user input: reported as one line, before any compilation."""


@dataclass(frozen=True)
class Config:
    # --- task -------------------------------------------------------------------------
    env: str = "CheetahRun"
    impl: str = "auto"  # MJX implementation: jax | warp | auto (the faster one measured here)
    episode_length: int = 0  # 0: the task's own time limit
    stagger_episodes: bool = True  # start env clocks at random steps: resets spread out
    num_envs: int = 64
    total_steps: int = 1_000_000  # env steps (transitions), summed over envs
    seed: int = 0
    num_seeds: int = 1  # independent seeds side by side in one program (vmap)
    devices: int = 1  # D devices for one run (docs/parallel.md)
    parallel: str = "data"  # data: the envs and buffer split over D | seeds: seeds on devices
    # --- ensemble ---------------------------------------------------------------------
    algo: str = "cikd"  # sac (K=1) | ensemble (K>1, shared buffer) | cikd
    ensemble_size: int = 3  # K
    widths: tuple[int, ...] = ()  # per-member hidden width; empty: hidden_width for all
    hidden_width: int = 256
    hidden_layers: int = 2
    # the actor's log-std: smooth (tanh into [-5, 2]) | clip (train_ensemble_sac.py:82)
    log_std_bounds: str = "smooth"
    return_window: int = 5  # M: R_k is the mean of member k's last M training returns
    # --- SAC (Haarnoja et al. 2018, Table 1, unless the parallel setting says otherwise) ----
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    init_alpha: float = 1.0
    # the temperature's target entropy is -scale |A|: 1 in Haarnoja et al.; Brax's SAC uses 0.5
    target_entropy_scale: float = 1.0
    critic_layer_norm: bool = False  # LayerNorm in the Q-networks' hidden layers (Playground)
    batch_size: int = 256  # B, per member
    updates_per_step: int = 8  # U: updates of every member per vector env step
    buffer_size: int = 1_000_000  # transitions, shared by the members
    learning_starts: int = 5_000  # env steps of uniform random actions before updates
    normalize_obs: bool = True  # one running normaliser shared by all members
    # --- CIKD (paper section 4.4) ------------------------------------------------------
    # I, the interval between phases, in SAC updates of each member (the paper's 5000 env steps
    # at one update per env step are 5000 updates), so the share of distillation per update is
    # the paper's at any N and U. An explicit --distill_interval (env steps) replaces it.
    distill_interval_updates: int = 5_000
    distill_interval: int = 0  # I in env steps instead (0: use distill_interval_updates)
    distill_warmup: int = 10_000  # no phase before this many env steps
    # D, gradient steps per phase, used when distill_epochs is 0. The authors run 5 passes over
    # the whole buffer (distill_epochs = 5): ~290 steps at 15k transitions, ~19.5k at 1M.
    distill_steps: int = 64
    distill_epochs: float = 0.0  # E > 0: ceil(E * filled / B_d) steps instead of D
    distill_batch_size: int = 256  # B_d
    # Fresh Adam per phase; the authors' 1e-3 (the paper profile's) ended some phases of D = 64
    # steps mid-transient with the student's KL up 10-20x (docs/results.md)
    distill_lr: float = 3e-4
    distill_parts: str = "both"  # policy | critic | both: what a student learns from the teacher
    distill_target: str = "soft"  # soft: one tau step of the students' targets (authors) | hard
    hard_copy: bool = False  # students become copies of the teacher instead of distilling
    teacher: str = "best"  # best | random | worst: which member the election picks
    # the statistic R_k the election ranks: train_returns (the paper's: mean of the last M
    # training returns) | reward_rate (mean reward per step since the last phase, x T) | eval
    # (an evaluation before the phase): eval by measurement (docs/election.md)
    election_metric: str = "eval"
    audit_election: bool = False  # evaluate every member at each phase, for the record only
    distill_schedule: str = "fixed"  # fixed | ada: distil only when softmax(R / T) >= threshold
    ada_threshold: float = 0.8
    # policy selection at each episode start (after learning_starts): uniform | softmax over
    # R_k / temperature | eps_greedy (epsilon decays linearly from 1 to selection_epsilon over
    # selection_epsilon_steps env steps, the authors' default: train_ensemble_sac.py:169)
    policy_selection: str = "uniform"
    selection_temperature: float = 1.0
    selection_epsilon: float = 0.1
    selection_epsilon_steps: int = 500_000
    extra_updates: bool = False  # sac/ensemble "(extra)": the phase's steps as SAC updates

    # --- evaluation, logging ------------------------------------------------------------
    log_every: int = 20_000  # env steps per compiled chunk, one log point each
    eval_every: int = 0  # env steps between evaluations (inside the loop); 0: = log_every
    eval_episodes: int = 10  # per member, deterministic policy tanh(mean)
    run_dir: str = ""  # empty: runs/<env>-<algo>-<time>
    checkpoint_every: int = 200_000  # env steps between checkpoints (and one at the end); 0: end only
    keep_checkpoints: int = 2  # the newest this many complete checkpoints are kept
    checkpoint_buffer: bool = True  # false: without the replay buffer (a resume is not exact)
    on_nonfinite: str = "stop"  # stop | rollback (to the last good checkpoint; docs/survival.md)
    max_rollbacks: int = 3
    # bar (tqdm, redrawn in place) | plain (one line per log point: SLURM logs) | off
    progress: str = "bar"
    compile_cache: str = "~/.cache/mjx_cikd/xla"  # persistent cache (XLA, Warp starts); "" off
    tensorboard: bool = True
    wandb: str = ""  # a Weights & Biases project: log there too (the `wandb` extra); "" off
    wandb_entity: str = ""  # the W&B team or user ("": your default entity)
    wandb_group: str = ""  # a W&B group for the run (e.g. one per experiment set)

    # ---------------------------------------------------------------------------------
    @property
    def member_widths(self) -> tuple[int, ...]:
        return self.widths if self.widths else (self.hidden_width,) * self.ensemble_size

    @property
    def total_iters(self) -> int:
        return max(1, ceil_div(self.total_steps, self.num_envs))

    @property
    def num_chunks(self) -> int:
        return ceil_div(self.total_iters, max(1, self.log_every // self.num_envs))

    @property
    def iters_per_chunk(self) -> int:
        """Vector steps per compiled chunk: at most log_every env steps, spread evenly so that
        the run overshoots total_steps by less than one step per chunk."""
        return ceil_div(self.total_iters, self.num_chunks)

    interval_in_updates = property(lambda self: self.distill_interval == 0)

    @property
    def phase_period(self) -> int:
        """Vector steps from one phase point to the next: ceil(I_updates / U) of the steps that
        update (the interval in SAC updates), or ceil(I / N) of all steps (in env steps)."""
        if self.interval_in_updates:
            return ceil_div(self.distill_interval_updates, self.updates_per_step)
        return ceil_div(self.distill_interval, self.num_envs)

    @property
    def phases_on(self) -> bool:
        """Whether the loop has phase points: CIKD's phases or the "(extra)" updates."""
        return self.algo == "cikd" or self.extra_updates

    @property
    def buffer_rows(self) -> int:
        """Capacity in transitions: a multiple of num_envs, so one write never wraps."""
        return (self.buffer_size // self.num_envs) * self.num_envs

    def validate(self) -> "Config":
        positive = ("num_envs", "total_steps", "num_seeds", "ensemble_size", "hidden_width",
                    "hidden_layers", "return_window", "batch_size", "updates_per_step",
                    "buffer_size", "distill_batch_size", "log_every", "eval_episodes",
                    "keep_checkpoints", "devices")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in ("episode_length", "learning_starts", "distill_warmup", "distill_steps",
                     "eval_every", "checkpoint_every", "distill_interval",
                     "distill_interval_updates", "distill_epochs", "selection_epsilon_steps",
                     "max_rollbacks"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must be >= 0, got {getattr(self, name)}")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "distill_lr", "init_alpha",
                     "selection_temperature", "target_entropy_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.gamma < 1:
            raise ConfigError(f"--gamma must be in [0, 1), got {self.gamma}")
        if not 0 < self.tau <= 1:
            raise ConfigError(f"--tau must be in (0, 1], got {self.tau}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name} must be one of {', '.join(allowed)}, got "
                                  f"{getattr(self, name)!r}")
        for name in ("ada_threshold", "selection_epsilon"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"--{name} must be in [0, 1], got {getattr(self, name)}")
        if (self.distill_interval > 0) == (self.distill_interval_updates > 0):
            raise ConfigError("give the phase interval once: --distill_interval (env steps) or "
                              "--distill_interval_updates (SAC updates), the other 0")
        if self.widths and len(self.widths) != self.ensemble_size:
            raise ConfigError(f"--widths lists {len(self.widths)} members but --ensemble_size "
                              f"is {self.ensemble_size}")
        if any(w < 1 for w in self.widths):
            raise ConfigError(f"--widths must all be >= 1, got {self.widths}")
        if self.algo == "sac" and self.ensemble_size != 1:
            raise ConfigError(f"--algo sac trains one agent; got --ensemble_size "
                              f"{self.ensemble_size} (use --algo ensemble or cikd)")
        if self.algo == "cikd" and self.ensemble_size < 2:
            raise ConfigError("--algo cikd needs --ensemble_size >= 2 (a teacher and a student)")
        if self.algo == "cikd" and self.extra_updates:
            raise ConfigError("--extra_updates is a baseline for --algo sac|ensemble, not cikd")
        if self.audit_election and self.algo != "cikd":
            raise ConfigError("--audit_election audits the teacher election of --algo cikd")
        if self.hard_copy and len(set(self.member_widths)) > 1:
            raise ConfigError("--hard_copy needs members of one width (a copy cannot cross "
                              f"widths {self.member_widths})")
        if self.hard_copy and self.distill_parts != "both":
            raise ConfigError("--hard_copy copies the whole teacher; --distill_parts does not "
                              "apply")
        split = (("num_envs", "batch_size", "distill_batch_size") if self.parallel == "data"
                 else ("num_seeds",))
        for name in split if self.devices > 1 else ():
            if getattr(self, name) % self.devices:
                raise ConfigError(f"--parallel {self.parallel}: --{name} {getattr(self, name)} "
                                  f"does not split over --devices {self.devices}")
        if self.buffer_size < self.num_envs:
            raise ConfigError(f"--buffer_size {self.buffer_size} is smaller than one vector "
                              f"step of --num_envs {self.num_envs}")
        if self.buffer_rows < max(self.batch_size, self.distill_batch_size):
            raise ConfigError(f"--buffer_size {self.buffer_size} holds fewer transitions than "
                              f"one batch ({max(self.batch_size, self.distill_batch_size)})")
        return self

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


# ---------------------------------------------------------------------------------------
# parsing: profiles, then flags


def field_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


BOOLS = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}


def coerce(name: str, value, typ) -> object:
    """One value from TOML or the command line to the field's type, or a ConfigError."""
    try:
        if typ is bool:
            text = str(value).strip().lower()  # True -> "true"
            if text in BOOLS:
                return BOOLS[text]
            raise ValueError(value)
        if typ == tuple[int, ...]:
            if isinstance(value, (list, tuple)):
                return tuple(int(v) for v in value)
            text = str(value).strip()
            return tuple(int(v) for v in text.split(",") if v.strip()) if text else ()
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() \
                else int(value)
        if typ is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--{name}: cannot read {value!r} as {getattr(typ, '__name__', typ)}")


def load_profile(name: str) -> dict:
    path = pathlib.Path(name)
    if not path.suffix:
        path = profile_dir() / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in profile_dir().glob("*.toml"))
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(known)}")
    with open(path, "rb") as f:
        try:
            values = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:  # its message names the line and column
            raise ConfigError(f"profile {path}: not valid TOML: {err}") from None
    types = field_types()
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"profile {path.name}: unknown field(s) {', '.join(unknown)}")
    return {k: coerce(k, v, types[k]) for k, v in values.items()}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, exit code 2; an unknown flag's close names
        if message.startswith("unrecognized arguments"):
            known = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            close = [difflib.get_close_matches(w.split("=")[0], known, n=1, cutoff=0.75)
                     for w in message.split(": ", 1)[1].split() if w.startswith("--")]
            hint = ", ".join(c[0] for c in close if c)
            message += f" (did you mean {hint}?)" if hint else ""
        raise ConfigError(message)


def build_parser(extra: typing.Callable[[argparse.ArgumentParser], None] | None = None):
    parser = _Parser(description="mjx_cikd: SAC ensembles with CIKD on MJX", allow_abbrev=False)
    parser.add_argument("--profile", default=None, help="profiles/NAME.toml, overridden by flags")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue RUN_DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in --run_dir")
    # one run over several processes (jax.distributed; docs/parallel.md); "auto": detect
    parser.add_argument("--coordinator", default="", metavar="HOST:PORT")
    parser.add_argument("--num_processes", type=int, default=1)
    parser.add_argument("--process_id", type=int, default=0)
    for name, typ in field_types().items():
        default = getattr(Config, name, None)
        parser.add_argument(f"--{name}", default=None, metavar=typ.__name__.upper()
                            if hasattr(typ, "__name__") else "LIST",
                            help=f"default: {default!r}")
    if extra is not None:
        extra(parser)
    return parser


# Fields that say how far a run goes and how it is carried out, never what it computes: a resumed
# run may change them, and two runs that differ only in them (and run_dir) are one experiment.
RESUMABLE = ("total_steps", "progress", "tensorboard", "compile_cache", "checkpoint_every",
             "keep_checkpoints", "checkpoint_buffer", "on_nonfinite", "max_rollbacks",
             "devices", "parallel", "wandb", "wandb_entity", "wandb_group")


def parse_flags(argv: list[str] | None = None, extra=None):
    """argv -> (the Config fields given as flags, the profile's fields, the parsed namespace),
    each value coerced to its field's type. Scripts with flags of their own add them through
    `extra(parser)`; every script reads Config flags through this one function."""
    args = build_parser(extra).parse_args(argv)
    types = field_types()
    given = {k: coerce(k, getattr(args, k), types[k])
             for k in types if getattr(args, k) is not None}
    return given, (load_profile(args.profile) if args.profile else {}), args


def config_from_args(argv: list[str] | None = None, extra=None) -> tuple[Config, argparse.Namespace]:
    """Profile, then flags, then the values they imply (`resolve`), then validation.
    With `--resume RUN_DIR`, the run's own config.json replaces the profile and defaults."""
    given, profile, args = parse_flags(argv, extra)
    if args.resume:
        saved = pathlib.Path(args.resume) / "config.json"
        if not saved.is_file():
            raise ConfigError(f"--resume {args.resume}: no config.json there")
        changed = sorted(set(given) - set(RESUMABLE))
        if changed or args.profile:
            raise ConfigError(f"--resume keeps the run's config; only {', '.join(RESUMABLE)} "
                              f"may change (got {', '.join(changed) or '--profile'})")
        values = dict(json.loads(saved.read_text()), **given, run_dir=str(args.resume))
        return from_dict(values), args
    return resolve({**profile, **given}), args


# What a run did before these fields existed (a saved config holds every field of its day)
BEFORE_FIELDS = {"election_metric": "train_returns", "distill_target": "hard"}


PROGRESS_BOOLS = {"true": "bar", "false": "off"}


def from_dict(values: dict) -> Config:
    """A config as saved (`Config.to_dict`, e.g. a run's config.json): every field coerced back
    to its type (JSON lists to tuples), unknown keys ignored, implied values filled (a config
    saved before a field existed gets what it meant then), validated."""
    types = field_types()
    values = {**BEFORE_FIELDS, **values}
    return resolve({k: coerce(k, v, types[k]) for k, v in values.items() if k in types})


def resolve(values: dict) -> Config:
    """The values a user gave, with the ones they imply filled in, validated: the ensemble
    size implied by the algo or the widths, and an interval in env steps
    (`distill_interval`) replacing the default one in SAC updates."""
    values = dict(values)
    if "progress" in values:  # a bool before it was bar | plain | off: saved configs, old flags
        values["progress"] = PROGRESS_BOOLS.get(str(values["progress"]).lower(), values["progress"])
    if values.get("widths") and "ensemble_size" not in values:
        values["ensemble_size"] = len(values["widths"])
    if values.get("algo") == "sac" and "ensemble_size" not in values:
        values["ensemble_size"] = 1
    if values.get("distill_interval", 0) > 0 and "distill_interval_updates" not in values:
        values["distill_interval_updates"] = 0
    return Config(**values).validate()


def replace(config: Config, **changes) -> Config:
    """`config` with `changes`; an interval in env steps replaces the one in updates, as in
    `resolve`."""
    if changes.get("distill_interval", 0) > 0:
        changes.setdefault("distill_interval_updates", 0)
    return dataclasses.replace(config, **changes).validate()
