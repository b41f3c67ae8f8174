"""What makes a Config wrong: `validate`, the rules every config obeys (ranges, allowed values,
fields that contradict each other), each broken one a one-line ConfigError."""

from __future__ import annotations

from mjx_cikd.config.schema import CHOICES, Config, ConfigError

POSITIVE = ("num_envs", "total_steps", "num_seeds", "ensemble_size", "hidden_width",
            "hidden_layers", "return_window", "batch_size", "updates_per_step", "buffer_size",
            "distill_batch_size", "log_every", "eval_episodes", "keep_checkpoints", "devices")
NON_NEGATIVE = ("episode_length", "learning_starts", "distill_warmup", "distill_steps",
                "eval_every", "checkpoint_every", "distill_interval", "distill_interval_updates",
                "distill_epochs", "selection_epsilon_steps", "max_rollbacks")
ABOVE_ZERO = ("actor_lr", "critic_lr", "alpha_lr", "distill_lr", "init_alpha",
              "selection_temperature", "target_entropy_scale")


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
    if any(w < 1 for w in config.widths):
        raise ConfigError(f"--widths must all be >= 1, got {config.widths}")


def _together(config: Config) -> None:
    """Fields that contradict each other."""
    if (config.distill_interval > 0) == (config.distill_interval_updates > 0):
        raise ConfigError("give the phase interval once: --distill_interval (env steps) or "
                          "--distill_interval_updates (SAC updates), the other 0")
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
