"""What makes a Config wrong or wasteful: `validate` (the rules every config obeys), and a
run's budget: `check_budget` (one that trains nothing: an error) and `budget_warnings` (one that
runs no phase, or mostly evaluates: one line each).

`validate` runs on every config, tests' included; `check_budget` where a user starts a run
(`scripts/train.py`), since tests run short budgets on purpose; `budget_warnings` where a run
starts (`host/run.train`, after its refusals: a warning never precedes an error's one line).
"""

from __future__ import annotations

from mjx_cikd.config.budget import ratio_warning
from mjx_cikd.config.schema import CHOICES, Config, ConfigError, ceil_div

POSITIVE = ("num_envs", "total_steps", "num_seeds", "ensemble_size", "hidden_width",
            "hidden_layers", "return_window", "batch_size", "updates_per_step", "buffer_size",
            "distill_batch_size", "log_every", "eval_episodes", "keep_checkpoints", "devices",
            "audit_episodes", "n_step", "policy_delay")
# where a field is on only above 0, it must not be 1 (a support of one atom has no spacing)
AT_LEAST_TWO_WHEN_ON = ("critic_atoms",)
NON_NEGATIVE = ("episode_length", "learning_starts", "distill_warmup", "distill_steps",
                "eval_every", "checkpoint_every", "distill_interval", "distill_interval_updates",
                "distill_epochs", "selection_epsilon_steps", "max_rollbacks", "election_z",
                "lr_after_warmup", "weight_decay", "critic_atoms")
ABOVE_ZERO = ("actor_lr", "critic_lr", "alpha_lr", "distill_lr", "init_alpha",
              "selection_temperature", "target_entropy_scale", "explore_std_min",
              "explore_std_max")


def _ranges(config: Config) -> None:
    for name in POSITIVE:
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(config, name)}")
    for name in NON_NEGATIVE:
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(config, name)}")
    for name in ABOVE_ZERO:
        if not getattr(config, name) > 0:
            raise ConfigError(f"--{name} must be > 0, got {getattr(config, name)}")
    if not 0 <= config.gamma < 1:
        raise ConfigError(f"--gamma must be in [0, 1), got {config.gamma}")
    if not 0 < config.tau <= 1:
        raise ConfigError(f"--tau must be in (0, 1], got {config.tau}")
    for name, allowed in CHOICES.items():
        if getattr(config, name) not in allowed:
            raise ConfigError(f"--{name} must be one of {', '.join(allowed)}, got "
                              f"{getattr(config, name)!r}")
    for name in ("ada_threshold", "selection_epsilon"):
        if not 0 <= getattr(config, name) <= 1:
            raise ConfigError(f"--{name} must be in [0, 1], got {getattr(config, name)}")
    for name in AT_LEAST_TWO_WHEN_ON:
        if getattr(config, name) == 1:
            raise ConfigError(f"--{name} must be 0 (off) or >= 2, got 1")
    if (config.v_min or config.v_max) and not config.v_min < config.v_max:
        raise ConfigError(f"--v_min {config.v_min} must be below --v_max {config.v_max}")
    for name in ("widths", "actor_layers", "critic_layers"):
        if any(w < 1 for w in getattr(config, name)):
            raise ConfigError(f"--{name} must all be >= 1, got {getattr(config, name)}")


def has_lead_to_test(teacher: str, election_metric: str) -> bool:
    """Whether `--election_rule confident` applies: it tests the best member's lead in standard
    errors of the statistic, so it needs the best member elected and a statistic with a
    standard error (not reward_rate)."""
    return teacher == "best" and election_metric != "reward_rate"


def _together(config: Config) -> None:
    """Fields that contradict each other."""
    if (config.distill_interval > 0) == (config.distill_interval_updates > 0):
        raise ConfigError("give the phase interval once: --distill_interval (env steps) or "
                          "--distill_interval_updates (SAC updates), the other 0")
    if config.explore_std_min > config.explore_std_max:
        raise ConfigError(f"--explore_std_min {config.explore_std_min} is above "
                          f"--explore_std_max {config.explore_std_max}")
    if config.updates_per_step % config.policy_delay:
        raise ConfigError(f"--policy_delay {config.policy_delay} must divide --updates_per_step "
                          f"{config.updates_per_step} (the actors move at every d-th update "
                          f"of a vector step)")
    if config.n_step > 1 and (config.n_step - 1) * config.num_envs >= config.buffer_rows:
        raise ConfigError(f"--n_step {config.n_step} needs more than (n - 1) N = "
                          f"{(config.n_step - 1) * config.num_envs} rows in the replay buffer; "
                          f"it holds {config.buffer_rows}")
    if config.widths and (config.actor_layers or config.critic_layers):
        raise ConfigError("--widths gives each member its width; --actor_layers and "
                          "--critic_layers give every member the same layers: use one or the "
                          "other")
    if config.widths and len(config.widths) != config.ensemble_size:
        raise ConfigError(f"--widths lists {len(config.widths)} members but --ensemble_size "
                          f"is {config.ensemble_size}")
    if config.algo == "sac" and config.ensemble_size != 1:
        raise ConfigError(f"--algo sac trains one agent; got --ensemble_size "
                          f"{config.ensemble_size} (use --algo ensemble or cikd)")
    if config.algo == "cikd" and config.ensemble_size < 2:
        raise ConfigError("--algo cikd needs --ensemble_size >= 2 (a teacher and a student)")
    if config.algo == "cikd" and config.extra_updates:
        raise ConfigError("--extra_updates is a baseline for --algo sac|ensemble, not cikd")
    if config.audit_election and config.algo != "cikd":
        raise ConfigError("--audit_election audits the teacher election of --algo cikd")
    if (config.algo == "cikd" and config.election_rule == "confident"
            and not has_lead_to_test(config.teacher, config.election_metric)):
        raise ConfigError("--election_rule confident needs --teacher best and a statistic "
                          "with a standard error (--election_metric eval or train_returns); "
                          "use --election_rule argmax")
    if config.lr_after_warmup and (config.algo != "ensemble" or config.extra_updates):
        raise ConfigError("--lr_after_warmup is the learning-rate control for --algo ensemble "
                          "(CIKD's students get distill_lr by --distill_optimizer handover)")
    if config.hard_copy and len(set(config.member_widths)) > 1:
        raise ConfigError("--hard_copy needs members of one width (a copy cannot cross "
                          f"widths {config.member_widths})")
    if config.hard_copy and config.distill_parts != "both":
        raise ConfigError("--hard_copy copies the whole teacher; --distill_parts does not "
                          "apply")
    split = (("num_envs", "batch_size", "distill_batch_size") if config.parallel == "data"
             else ("num_seeds",))
    for name in split if config.devices > 1 else ():
        if getattr(config, name) % config.devices:
            raise ConfigError(f"--parallel {config.parallel}: --{name} {getattr(config, name)} "
                              f"does not split over --devices {config.devices}")
    if config.buffer_size < config.num_envs:
        raise ConfigError(f"--buffer_size {config.buffer_size} is smaller than one vector "
                          f"step of --num_envs {config.num_envs}")
    if config.buffer_rows < max(config.batch_size, config.distill_batch_size):
        raise ConfigError(f"--buffer_size {config.buffer_size} holds fewer transitions than "
                          f"one batch ({max(config.batch_size, config.distill_batch_size)})")


def validate(config: Config) -> Config:
    """`config`, or the ConfigError of its first broken rule."""
    _ranges(config)
    _together(config)
    return config


# A run warns when more than this share of its sequential steps would be evaluation: past half,
# the evaluations, not the training, set the run's length
EVAL_SHARE_WARNING = 0.5


def updating_steps(config: Config) -> int:
    """Vector steps of the run that update the members: the trainer updates when the env steps
    after the vector step reach --learning_starts (`loop/trainer.py`, `learning`)."""
    first_update = ceil_div(max(config.learning_starts, 1), config.num_envs)
    return max(0, config.last_step // config.num_envs - first_update + 1)


def has_phase(config: Config) -> bool:
    """Whether a phase point falls within the run. The trainer's rule: a phase is due at the
    first vector step whose counter has reached the period and whose env steps after it reach
    --distill_warmup; the counter counts every vector step (interval in env steps) or the
    updating ones (in SAC updates), so the run's last step decides."""
    counted = (updating_steps(config) if config.interval_in_updates
               else config.last_step // config.num_envs)
    return config.last_step >= config.distill_warmup and counted >= config.phase_period


def eval_period(config: Config) -> float:
    """Vector steps per evaluation: the trainer evaluates at most once per vector step, when
    the env steps cross a multiple of --eval_every, and by default (0) at every point of the
    phase schedule (`loop/trainer.py`, `EvalCadence`); the phase points' own evaluations (the
    election's) are counted where they come more often."""
    period = config.eval_every / config.num_envs if config.eval_every else config.phase_period
    if config.algo == "cikd" and config.election_metric == "eval":
        period = min(period, config.phase_period)
    return max(1.0, period)


def eval_share(config: Config, episode_length: int) -> float:
    """The periodic evaluations' share of the run (one per --eval_every env steps), counted in
    sequential steps: an evaluation plays T steps (its K x n episodes side by side), a training
    vector step one env step and U SAC updates, each counted as one step. A rough count: on a
    CPU, docs/election.md measured one evaluation step at 1/800 (MJX-JAX) to 1/7 (MuJoCo Warp)
    of a training vector step, around the 1/(1 + U) counted here; on a GPU it is unmeasured.
    The election reads the periodic evaluation (it plays none of its own), so it is counted
    here."""
    evaluating = episode_length / eval_period(config)
    return evaluating / (evaluating + 1 + config.updates_per_step)


def check_budget(config: Config) -> None:
    """A ConfigError for a budget that ends before --learning_starts: no member is ever updated,
    so the run's evaluations and checkpoints are of untrained members."""
    if updating_steps(config) == 0:
        raise ConfigError(f"--total_steps {config.total_steps} ends before --learning_starts "
                          f"{config.learning_starts}: no member would ever be updated; raise "
                          f"--total_steps or lower --learning_starts")


def budget_warnings(config: Config, episode_length: int) -> list[str]:
    """One line for each way a run that is still useful wastes its budget: no phase within it
    (the members still train: a smoke test, or the first leg of a run resumed with a larger
    --total_steps), evaluation past EVAL_SHARE_WARNING of it, or a replay ratio far below the
    shipped one (`budget.ratio_warning`). `episode_length`: the task's T."""
    notes = [note] if (note := ratio_warning(config)) else []
    if config.phases_on and not has_phase(config):
        why = (f"ends before --distill_warmup {config.distill_warmup}"
               if config.last_step < config.distill_warmup else
               "ends before the first phase interval is complete")
        instead = "distillation" if config.algo == "cikd" else "extra updates"
        notes.append(f"--total_steps {config.total_steps} {why}: no phase will run, so this "
                     f"--algo {config.algo} run trains its members without {instead}")
    share = eval_share(config, episode_length)
    if share > EVAL_SHARE_WARNING:
        elected = (config.algo == "cikd" and config.election_metric == "eval"
                   and eval_period(config) == config.phase_period)
        instead = ("the eval election evaluates at every phase point: lengthen the interval "
                   "or elect by --election_metric reward_rate" if elected
                   else "raise --eval_every (env steps)")
        notes.append(f"evaluation would take about {share:.0%} of the run: one evaluation "
                     f"(T = {episode_length} steps) every {eval_period(config):g} vector step(s) "
                     f"of --num_envs {config.num_envs}; {instead}")
    return notes
