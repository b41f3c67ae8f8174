"""From a command line, a profile or a saved config.json to a Config: flags, profiles, `--help`.

Every Config field is a flag spelled as the field (`--num_envs 2048`); its `--help` text is the
field's description (`schema.knob`). `--profile NAME` loads `profiles/NAME.toml` first; flags
override it (the phase interval counts as one knob in either unit). Bad input is one
`ConfigError` line. Why argparse and not tyro: `docs/architecture.md`, "Configuration".
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import pathlib
import sys
import textwrap
import tomllib
import typing

from mjx_cikd.config.budget import follow_envs
from mjx_cikd.config.checks import has_lead_to_test, validate
from mjx_cikd.config.schema import FIELDS, Config, ConfigError

# profiles/ beside the package in a checkout (or an editable install); after `pip install .`, the
# copy that pyproject's data-files put under the environment's prefix
PROFILE_DIRS = (pathlib.Path(__file__).resolve().parents[2] / "profiles",
                pathlib.Path(sys.prefix) / "share" / "mjx_cikd" / "profiles")


def profile_dir() -> pathlib.Path:
    return next((d for d in PROFILE_DIRS if d.is_dir()), PROFILE_DIRS[0])


def field_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in FIELDS}


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


# ---------------------------------------------------------------------------------------------
# --help: the fields' descriptions, grouped as the schema groups them

SECTIONS = {"env": "task", "algo": "ensemble", "actor_lr": "SAC (Haarnoja et al. 2018)",
            "distill_interval_updates": "CIKD (paper section 4.4)",
            "log_every": "evaluation, logging, checkpoints"}  # first field -> its group


def shown(value) -> str:
    """A default as it is typed on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or '""'
    return value if value != "" else '""'


def describe(name: str) -> str:
    """A field's --help text: meaning, unit, each allowed value's meaning, default and why."""
    meta, field = FIELDS[name].metadata, FIELDS[name]
    lines = [meta["meaning"]]
    lines += [f"  {value}: {text}" for value, text in meta["choices"].items()]
    if field_types()[name] is bool:
        lines.append(f"(--{name} alone means true)")
    tail = [f"unit: {meta['unit']}"] if meta["unit"] else []
    tail.append(f"default: {shown(field.default)}")
    lines.append("; ".join(tail + ([f"why: {meta['why']}"] if meta["why"] else [])))
    return "\n".join(lines)


class _Help(argparse.RawDescriptionHelpFormatter):
    """Keeps a help text's own lines (one per allowed value) and wraps each to the width."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=32, width=100)

    def _split_lines(self, text, width):
        out = []
        for line in text.splitlines():
            indent = " " * (len(line) - len(line.lstrip()) + 2)
            out += textwrap.wrap(line, width, subsequent_indent=indent) or [""]
        return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, exit code 2 (the scripts' ConfigError)
        raise ConfigError(message)


TRAIN_FLAGS = ("--resume", "--overwrite", "--coordinator", "--num_processes", "--process_id")


def build_parser(extra: typing.Callable[[argparse.ArgumentParser], None] | None = None,
                 description: str | None = None, train_flags: bool = True,
                 left_out: typing.Iterable[str] = ()) -> argparse.ArgumentParser:
    """The parser of a script: its `description`, the run flags (train.py's, unless not
    `train_flags`), every Config field but `left_out`, and the script's own (`extra`)."""
    parser = _Parser(description=description or "mjx_cikd: SAC ensembles with CIKD on MJX",
                     allow_abbrev=False, formatter_class=_Help)
    if extra is not None:
        extra(parser)
    words = [a.metavar or a.dest.upper() for a in parser._actions if not a.option_strings]
    parser.usage = " ".join(["%(prog)s", *words, "[--profile NAME] [--FIELD VALUE ...]"])
    run = parser.add_argument_group("run")
    run.add_argument("--profile", default=None, metavar="NAME",
                     help="profiles/NAME.toml (paper, parallel, playground, tiny) or a .toml "
                          "path, loaded first; flags override it")
    if train_flags:
        run.add_argument("--resume", default=None, metavar="RUN_DIR",
                         help="continue the run in RUN_DIR from its newest checkpoint")
        run.add_argument("--overwrite", action="store_true",
                         help="replace the run already in --run_dir (refused without it)")
        run.add_argument("--coordinator", default="", metavar="HOST:PORT",
                         help="one run over several processes (jax.distributed; "
                              "docs/parallel.md); auto: detect")
        run.add_argument("--num_processes", type=int, default=1, metavar="P",
                         help="the processes of a run with --coordinator")
        run.add_argument("--process_id", type=int, default=0, metavar="I",
                         help="this process, 0..P-1")
    group = run
    for name, typ in field_types().items():
        group = (parser.add_argument_group(SECTIONS[name]) if name in SECTIONS else group)
        if name in left_out:
            continue
        choices = FIELDS[name].metadata["choices"]
        metavar = ("{" + ",".join(choices) + "}" if choices
                   else "LIST" if typ == tuple[int, ...] else typ.__name__.upper())
        more = {"nargs": "?", "const": "true"} if typ is bool else {}  # a bare --flag: true
        group.add_argument(f"--{name}", default=None, metavar=metavar,
                           help=describe(name).replace("%", "%%"), **more)
    return parser


def _unknown(rest: list[str], argv: list[str], parser, instead: dict[str, str]) -> str:
    """One line for what the parser left over: close names, tyro's spellings (--num-envs,
    --no-flag, a list as separate words) and flags this script does not take (`instead`)."""
    known = {o for a in parser._actions for o in a.option_strings}
    types = field_types()
    for word in rest:
        name = word.split("=")[0]
        if name in instead:
            return f"{name} is not taken here: {instead[name]}"
        if not name.startswith("--"):  # a value: whose? (the nearest flag before it)
            at = len(argv) - 1 - argv[::-1].index(word)
            flag = next((i for i in range(at - 1, -1, -1) if argv[i].startswith("--")), None)
            spelled = "" if flag is None else argv[flag].split("=")[0]
            if types.get(spelled[2:]) == tuple[int, ...]:  # --widths 256 1024, --widths=256 1024
                values = [*argv[flag].split("=")[1:], *argv[flag + 1:at + 1]]
                return (f"{spelled} takes one comma-separated list: {spelled} "
                        f"{','.join(values)} (not {spelled} {' '.join(values)})")
    hints = []
    for word in (w.split("=")[0] for w in rest if w.startswith("--")):
        snake = "--" + word[2:].replace("-", "_")
        if snake.startswith("--no_") and types.get(snake[5:]) is bool:
            hints.append(f"--{snake[5:]} false")
        elif snake in known:
            hints.append(snake)
        else:
            hints += difflib.get_close_matches(word, known, n=1, cutoff=0.75)
    message = f"unrecognized arguments: {' '.join(rest)}"
    return message + (f" (did you mean {', '.join(hints)}?)" if hints else "")


# Flags that were Config fields once, and what replaced them
GONE = {"--election_episodes": "the eval election reads the periodic evaluation since "
                               "2026-12-06 (no evaluation of its own): its episodes are "
                               "--eval_episodes"}


def parse_flags(argv: list[str] | None = None, extra=None, *, description: str | None = None,
                train_flags: bool = True, instead: dict[str, str] | None = None):
    """argv -> (the Config fields given as flags, the profile's fields, the parsed namespace),
    each value coerced to its field's type. Scripts with flags of their own add them through
    `extra(parser)`; `instead` names the flags a script does not take (a Config field among them
    is left out of its parser and its --help) and what to use instead."""
    instead = {**GONE, **(instead or {})}
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(extra, description, train_flags,
                          left_out=[f[2:] for f in instead if f[2:] in FIELDS])
    args, rest = parser.parse_known_args(argv)
    if rest:
        raise ConfigError(_unknown(rest, argv, parser, instead))
    types = field_types()
    given = {k: coerce(k, getattr(args, k), types[k])
             for k in types if getattr(args, k, None) is not None}
    return given, (load_profile(args.profile) if args.profile else {}), args


# The phase interval is one knob in two units: a flag in either unit replaces a profile's in both
INTERVAL = ("distill_interval", "distill_interval_updates")


def shadowed(lower: dict, upper: dict) -> dict:
    """`lower` (a profile's values) without what `upper` (the flags) overrides."""
    hidden = set(upper) | (set(INTERVAL) if set(INTERVAL) & set(upper) else set())
    return {k: v for k, v in lower.items() if k not in hidden}


# Fields that say how far a run goes and how it is carried out, never what it computes: a resumed
# run may change them, and two runs that differ only in them (and run_dir) are one experiment.
RESUMABLE = ("total_steps", "progress", "tensorboard", "compile_cache", "checkpoint_every",
             "keep_checkpoints", "checkpoint_buffer", "on_nonfinite", "max_rollbacks",
             "devices", "parallel", "wandb", "wandb_entity", "wandb_group")


def config_from_args(argv: list[str] | None = None, extra=None,
                     **script) -> tuple[Config, argparse.Namespace]:
    """Profile, then flags, then the values they imply (`resolve`), then validation.
    With `--resume RUN_DIR`, the run's own config.json replaces the profile and defaults.
    `script`: parse_flags' description, train_flags and instead."""
    given, profile, args = parse_flags(argv, extra, **script)
    if getattr(args, "resume", None):
        saved = pathlib.Path(args.resume) / "config.json"
        if not saved.is_file():
            raise ConfigError(f"--resume {args.resume}: no config.json there")
        changed = sorted(set(given) - set(RESUMABLE))
        if changed or args.profile:
            raise ConfigError(f"--resume keeps the run's config; only {', '.join(RESUMABLE)} "
                              f"may change (got {', '.join(changed) or '--profile'})")
        values = dict(json.loads(saved.read_text()), **given, run_dir=str(args.resume))
        return from_dict(values), args
    return resolve({**shadowed(profile, given), **given}), args


# What a run did before these fields existed: a saved config holds every field of its day, so a
# missing one predates the field (then the election ranked training returns and the students'
# targets were set to their new critics).
BEFORE_FIELDS = {"election_metric": "train_returns", "distill_target": "hard",
                 # every phase point distilled, and the distillation's Adam was dropped
                 "election_rule": "argmax", "distill_optimizer": "fresh",
                 # the actor's squash and the critics before the SAC defaults took Playground's
                 "log_std_bounds": "smooth", "critic_layer_norm": False,
                 "target_entropy_scale": 1.0}


PROGRESS_BOOLS = {"true": "bar", "false": "off"}


def from_dict(values: dict) -> Config:
    """A config as saved (`Config.to_dict`, e.g. a run's config.json): every field coerced back
    to its type (JSON lists to tuples), unknown keys ignored, implied values filled (a config
    saved before a field existed gets what it meant then), validated."""
    types = field_types()
    values = {**BEFORE_FIELDS, **values}
    # the audit played eval_episodes before it had a count of its own
    values.setdefault("audit_episodes", values.get("eval_episodes", Config.eval_episodes))
    return resolve({k: coerce(k, v, types[k]) for k, v in values.items() if k in types})


def resolve(values: dict) -> Config:
    """The values a user gave, with the ones they imply filled in, validated: the ensemble
    size implied by the algo or the widths, an interval in env steps (`distill_interval`)
    replacing the default one in SAC updates, the batch, U and cadences that follow N
    (`budget.follow_envs`), and the election rule (`_implied_rule`)."""
    values = dict(values)
    if "progress" in values:  # a bool before it was bar | plain | off: saved configs, old flags
        values["progress"] = PROGRESS_BOOLS.get(str(values["progress"]).lower(),
                                                values["progress"])
    if values.get("widths") and "ensemble_size" not in values:
        values["ensemble_size"] = len(values["widths"])
    if values.get("algo") == "sac" and "ensemble_size" not in values:
        values["ensemble_size"] = 1
    if values.get("distill_interval", 0) > 0 and "distill_interval_updates" not in values:
        values["distill_interval_updates"] = 0
    follow_envs(values)
    _implied_rule(values, values)
    return validate(Config(**values))


def _implied_rule(values: dict, given: dict) -> None:
    """The confident rule tests the best member's lead in standard errors of the statistic: a
    run that elects another member (--teacher random|worst) or ranks a statistic without one
    (reward_rate) distils at every phase point instead, unless `given` names a rule."""
    if "election_rule" not in given and not has_lead_to_test(
            values.get("teacher", Config.teacher),
            values.get("election_metric", Config.election_metric)):
        values["election_rule"] = "argmax"


def replace(config: Config, **changes) -> Config:
    """`config` with `changes`; an interval in env steps replaces the one in updates, and the
    election rule follows the teacher and the statistic, as in `resolve`."""
    if changes.get("distill_interval", 0) > 0:
        changes.setdefault("distill_interval_updates", 0)
    values = dict(teacher=config.teacher, election_metric=config.election_metric,
                  election_rule=config.election_rule) | changes
    _implied_rule(values, changes)
    changes["election_rule"] = values["election_rule"]
    return validate(dataclasses.replace(config, **changes))
