"""The experiment sets (`sets`) as planned run directories: skip, resume, restart or reuse.

The sets and their variants: `mjx_cikd.experiments.sets`.

Each (set, task, variant) is one run directory OUT/<set>/<task>/<variant-slug>/, trained in-process
by `mjx_cikd.host.run.train` with `num_seeds` seeds side by side, beside which `variant.json` (a
`VariantRecord`) names the set, task and variant for `mjx_cikd.experiments.analysis`. The default
tasks are the paper's Gym-MuJoCo tasks that MJX has (through Brax); any task of
`mjx_cikd.envs.tasks` may be given.

Planning the same runs again continues where they stopped: a finished run directory with the same
config is skipped, an unfinished one resumes from its checkpoint (or restarts if it has none), and
a directory holding a different config is an error. A variant whose config is identical to a
finished run of another set (SAC-CIKD K=3 is in fig1, fig2, fig3, teacher, ...) copies that run's
metrics instead of training again (its record names the source in `reused_from`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import shutil
import sys

from mjx_cikd import config as config_lib
from mjx_cikd.config import Config, ConfigError
from mjx_cikd.experiments.sets import (  # noqa: F401 (callers read them from here too)
    BEST,
    DEFAULT_SEEDS,
    DEFAULT_TOTAL_STEPS,
    MEAN,
    MEMBER,
    PAPER_TASKS,
    REPLACED,
    SET_CURVES,
    SET_FIELDS,
    SETS,
    WORST,
    ExperimentSet,
    Variant,
)
from mjx_cikd.host.run_dir import clear as clear_run_dir

# Fields that may differ between an existing run directory and the planned run without making
# it a different experiment: the ones a resume may change (total_steps: a longer run resumes the
# shorter one), and where the run lives.
IGNORED = ("run_dir",) + config_lib.RESUMABLE
# The distillation, election and policy-selection fields: a baseline never reads them, so a
# finished baseline stays the same experiment when only they change.
DISTILL_FIELDS = tuple(name for name in config_lib.field_types() if name.startswith((
    "distill_", "election", "audit", "teacher", "hard_copy", "ada_", "selection_",
    "policy_selection")))
# What "(extra)" runs (and --lr_after_warmup, which acts at the first phase point) do read of
# them: when the phase points come and how many steps a phase takes (the schedule's fields too,
# to stay on the safe side: a needless rerun, never a wrong skip).
PHASE_TIMING = ("distill_interval", "distill_interval_updates", "distill_warmup", "distill_steps",
                "distill_epochs", "distill_batch_size", "distill_schedule", "ada_threshold",
                "selection_temperature")


def comparable(config_dict: dict) -> dict:
    """The part of a saved or planned config that decides whether two runs are one experiment."""
    if config_dict.get("algo") == "cikd":
        unread = ()
    elif config_dict.get("extra_updates") or config_dict.get("lr_after_warmup", 0) > 0:
        unread = tuple(name for name in DISTILL_FIELDS if name not in PHASE_TIMING)
    else:
        unread = DISTILL_FIELDS
    if config_dict.get("policy_selection", "uniform") != "uniform":  # ranks members by R_k
        unread = tuple(n for n in unread if not n.startswith(("election", "selection_")))
    return {k: v for k, v in config_dict.items() if k not in IGNORED + unread}


def saved_config(path: pathlib.Path) -> dict:
    """A run's config.json as today's Config reads it back (fields added since it was written get
    what they meant then); as written if it no longer validates (it then compares different)."""
    values = json.loads(path.read_text())
    try:
        return config_lib.from_dict(values).to_dict()
    except ConfigError:
        return values


def member_labels(variant: str, widths) -> list[str]:
    """Curve labels for each member (fig4 draws them): the paper's '(member) X (width)'."""
    if len(widths) == 1:
        return [variant]
    base = variant.split(" (")[0]
    return [f"(member) {base} ({w})" for w in widths]


@dataclasses.dataclass(frozen=True)
class VariantRecord:
    """`variant.json`: which set, task and variant a run directory is, in the set's order."""

    set: str
    task: str
    variant: str
    set_title: str = ""
    curves: str = "best"  # a key of SET_CURVES
    task_order: float = math.inf  # position in the planned tasks: the figure's panel order
    order: float = math.inf  # the variant's position in its set
    baseline: bool = False  # not CIKD: the reference of the tables
    algo: str = ""
    ensemble_size: int = 1
    widths: tuple[int, ...] = ()
    member_labels: tuple[str, ...] = ()
    seeds: int = 1
    reused_from: str | None = None  # the finished run whose metrics were copied

    FILE = "variant.json"

    def write(self, run_dir: pathlib.Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / self.FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, run_dir: pathlib.Path) -> VariantRecord | None:
        path = run_dir / cls.FILE
        if not path.is_file():
            return None
        values = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in values.items() if k in known}
        return cls(**values)


def default_curves(set_name: str) -> str:
    return SETS[set_name].curves if set_name in SETS else "best"


@dataclasses.dataclass
class Planned:
    set_name: str
    task: str
    order: int
    variant: Variant
    config: Config
    run_dir: pathlib.Path
    task_order: int = 0  # position in the planned tasks: the panel order of the figure
    action: str = "train"  # train | resume | restart | skip | reuse
    source: pathlib.Path | None = None  # for reuse

    def record(self, reused_from: str | None = None) -> VariantRecord:
        exp, widths = SETS[self.set_name], self.config.member_widths
        return VariantRecord(
            set=self.set_name, task=self.task, variant=self.variant.name, set_title=exp.title,
            curves=exp.curves, task_order=self.task_order, order=self.order,
            baseline=self.config.algo != "cikd", algo=self.config.algo,
            ensemble_size=self.config.ensemble_size, widths=widths,
            member_labels=tuple(member_labels(self.variant.name, widths)),
            seeds=self.config.num_seeds, reused_from=reused_from)


def finished_steps(run_dir: pathlib.Path) -> int | None:
    """Env steps of the run's last `run`/`end` record, or None if it never finished."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    steps = None
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        if row.get("event") == "run" and row.get("phase") == "end":
            steps = row.get("env_steps")
    return steps


def _target_steps(config: Config) -> int:
    return config.total_iters * config.num_envs


def check_flags(set_name: str, flags: dict) -> None:
    """Refuse the Config flags a set defines itself, and the ones --out and --seeds replace."""
    for name in SETS[set_name].fields:
        if name in flags:
            raise ConfigError(f"--{name} is defined by the experiment set {set_name}; it "
                              f"cannot be passed to reproduce.py")
    for name, instead in REPLACED.items():
        if name in flags:
            raise ConfigError(f"--{name} is not used by reproduce.py; use {instead}")


def chosen_variants(set_name: str, names: list[str] | None) -> list[tuple[int, Variant]]:
    """The variants of `set_name` named in `names` (directory names: `Variant.slug`), each with its
    position in the whole set (so that a figure's colours do not depend on which ran); every
    variant when `names` is None."""
    variants = list(enumerate(SETS[set_name].variants))
    if names is None:
        return variants
    known = {v.slug: i for i, v in variants}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"--variants: no variant {', '.join(map(repr, unknown)) or 'named'} in "
                          f"{set_name}; its variants: {', '.join(v.slug for _, v in variants)}")
    wanted = {known[n] for n in names}
    return [(i, v) for i, v in variants if i in wanted]


def plan(set_name: str, tasks: list[str], seeds: int, out: pathlib.Path, flags: dict,
         profile: dict | None = None, reuse: bool = True,
         variants: list[str] | None = None) -> list[Planned]:
    """Every run of `set_name` on `tasks` (only the `variants` named, if given): its Config
    (DEFAULT_TOTAL_STEPS, then the profile's values, then `flags`, then the variant's fields),
    its directory, and what to do with it."""
    if set_name not in SETS:
        raise ConfigError(f"unknown experiment set {set_name!r}; known: {', '.join(SETS)}")
    check_flags(set_name, flags)
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if not tasks:
        raise ConfigError("--tasks is empty")
    chosen = chosen_variants(set_name, variants)
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"--tasks lists a task twice: {','.join(tasks)}")
    # jax and MuJoCo take seconds to load: analysis reads the records of this module without them
    from mjx_cikd.envs import tasks as envs

    base = dict(total_steps=DEFAULT_TOTAL_STEPS) | (profile or {}) | flags | dict(num_seeds=seeds)
    planned = []
    for task_order, task in enumerate(tasks):
        for order, variant in chosen:
            run_dir = out / set_name / task / variant.slug
            values = dict(base, **variant.values, env=task, run_dir=str(run_dir))
            try:
                config = config_lib.resolve(values)
            except ConfigError as err:
                raise ConfigError(f"{set_name}/{task}/{variant.name}: {err}") from None
            envs.resolve_impl(task, config.impl)
            planned.append(Planned(set_name, task, order, variant, config, run_dir, task_order))
    for p in planned:
        decide(p, out, reuse=reuse)
    return planned


def _reused_from(run_dir: pathlib.Path) -> str | None:
    record = VariantRecord.read(run_dir)
    return record.reused_from if record else None


def _has_checkpoint(run_dir: pathlib.Path) -> bool:
    from mjx_cikd.host import checkpoint  # imports jax: see plan

    return checkpoint.latest(run_dir) is not None


def decide(p: Planned, out: pathlib.Path, reuse: bool) -> None:
    """What to do with one planned run, given what is already on disk."""
    saved = p.run_dir / "config.json"
    want = comparable(p.config.to_dict())
    if saved.is_file():
        have = comparable(saved_config(saved))
        if have != want:
            diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            raise ConfigError(f"{p.run_dir} holds a run with a different config ({', '.join(diff)}"
                              f"); use another --out or remove it")
        done = finished_steps(p.run_dir)
        if done is not None and done >= _target_steps(p.config):
            p.action = "skip"
            return
        if _has_checkpoint(p.run_dir) and not _reused_from(p.run_dir):
            p.action = "resume"
            return
        p.action = "restart"  # nothing to resume from (or a copy that is too short)
    elif (p.run_dir / "metrics.jsonl").exists():
        p.action = "restart"
    if reuse:
        for other in sorted(out.glob(f"*/{p.task}/*/config.json")):
            run_dir = other.parent
            if run_dir == p.run_dir or _reused_from(run_dir):
                continue
            if comparable(saved_config(other)) == want and \
                    finished_steps(run_dir) == _target_steps(p.config):
                p.action, p.source = "reuse", run_dir
                return


def execute(p: Planned, index: int, total: int) -> None:
    """Carry out `p.action`: skip, copy a finished twin's metrics, or train (fresh or resumed)."""
    def say(msg: str) -> None:
        print(f"[reproduce {index}/{total}] {p.set_name}/{p.task}/{p.variant.name}: {msg}",
              file=sys.stderr, flush=True)

    if p.action == "skip":
        say(f"finished already in {p.run_dir}, skipped")
        p.record(_reused_from(p.run_dir)).write(p.run_dir)
        return
    if p.action in ("restart", "reuse"):  # what an unfinished, unresumable run left behind
        clear_run_dir(p.run_dir)
    if p.action == "reuse":
        say(f"identical to the finished run {p.source}, its metrics copied")
        p.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p.source / "metrics.jsonl", p.run_dir / "metrics.jsonl")
        (p.run_dir / "config.json").write_text(json.dumps(p.config.to_dict(), indent=2) + "\n")
        p.record(str(p.source)).write(p.run_dir)
        return
    p.record().write(p.run_dir)
    say(("resuming" if p.action == "resume" else "training") + f" into {p.run_dir}")
    import jax  # see plan

    from mjx_cikd.host.run import train

    train(p.config, p.run_dir, resume=p.action == "resume")
    jax.clear_caches()  # the next variant compiles its own programs
