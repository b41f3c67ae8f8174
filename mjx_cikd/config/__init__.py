"""The run configuration: one frozen `Config` and the one way to it from flags, profiles and
saved runs.

`schema` owns the fields and what each means (the text `--help` shows), `checks` the rules a
config obeys and a run's budget (refused or warned about), `budget` the update budget and the
cadences that follow N (the replay ratio), `flags` the parsing (profiles, flags, `--help`,
config.json). Callers import from here: `from mjx_cikd.config import Config`.
"""

from mjx_cikd.config.checks import budget_warnings, check_budget, validate
from mjx_cikd.config.flags import (
    BEFORE_FIELDS,
    BOOLS,
    PROFILE_DIRS,
    RESUMABLE,
    TRAIN_FLAGS,
    build_parser,
    coerce,
    config_from_args,
    describe,
    field_types,
    from_dict,
    load_profile,
    parse_flags,
    profile_dir,
    replace,
    resolve,
    shadowed,
)
from mjx_cikd.config.schema import CHOICES, FIELDS, NO_EVAL, Config, ConfigError, ceil_div, knob

__all__ = ["BEFORE_FIELDS", "BOOLS", "CHOICES", "FIELDS", "NO_EVAL", "PROFILE_DIRS", "RESUMABLE",
           "TRAIN_FLAGS", "Config", "ConfigError", "budget_warnings", "build_parser", "ceil_div",
           "check_budget", "coerce", "config_from_args", "describe", "field_types", "from_dict",
           "knob", "load_profile", "parse_flags", "profile_dir", "replace", "resolve", "shadowed",
           "validate"]
