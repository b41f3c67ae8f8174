"""The update budget and the cadences that follow N (issue 29): what `--num_envs N` alone
changes beside N.

The shipped config is Playground's tuned SAC at N = 128 (`REFERENCE_ENVS`): U = 8 updates of
B = 512 per vector step, a **replay ratio** (samples drawn per env step, U * B / N) of 32. At
another N, unless the run gives them, `follow_envs` keeps that ratio by growing the batch up to
`BATCH_CAP` (512 since issue 29's screen: the batch no longer grows), then U; and it keeps the
cadences that count vector steps (log points, checkpoints) at their 128-env count of vector
steps, so a run at 2048 envs logs and saves no more often per vector step than one at 128.
Below 128 envs the batch stays and U shrinks. An explicit
`--batch_size` or `--updates_per_step` wins (the other follows it to keep the ratio), and a
ratio far below the shipped one is a warning (`checks.budget_warnings`).

The evaluation needs no scaling: it falls at the phase schedule's points, counted in SAC updates
(`loop/trainer.py`, `EvalCadence`): every 625 vector steps of 8 updates at 128 envs, every 40 of
128 at 2048 (the same per env step and per SAC update). Nor does the
warm-up: `--learning_starts` is a count of transitions in the buffer (Playground's
`min_replay_size`), raised to two batches where the batch grows.
"""

from __future__ import annotations

from mjx_cikd.config.schema import Config

REFERENCE_ENVS = 128  # the N of the shipped config (Config.num_envs)
# The largest batch the ratio grows (per member and SAC update), chosen by issue 29's screen
# (docs/results.md, "Thousands of envs"; rule 3, applied by experiments/scaling.decide): at 2048
# envs on CartpoleSwingup, 1M env steps, 3 seeds each, the ratio kept by U at B = 512 (U = 128)
# beat the ratio kept by the batch up to 2,048 (U = 32) in every pair of seeds, at about the same
# cost per sample on this CPU (15.7 and 15.6 us at B = 512 and 2,048, `bench/batch_cost.py`): the
# learning follows the number of updates, not the samples they draw. So the batch no longer grows:
# U carries the ratio. On a GPU, where the batch is the cheap axis and U is serial, this costs
# wall-clock; `--profile parallel` is the preset there, `--batch_size` the flag.
BATCH_CAP = 512
# A ratio below the shipped one divided by this is warned about
RATIO_WARNING = 4


def replay_ratio(config: Config) -> float:
    """Samples each member draws per env step: U * B / N."""
    return config.updates_per_step * config.batch_size / config.num_envs


SHIPPED_RATIO = Config.updates_per_step * Config.batch_size / REFERENCE_ENVS


def follow_envs(values: dict) -> None:
    """Fill in, where `values` (what a user gave: flags and profile) leaves them out, the batch
    and U that keep the shipped replay ratio at their `num_envs`, and the log and checkpoint
    cadences that keep their count of vector steps. Nothing changes at 128 envs."""
    n = values.get("num_envs", REFERENCE_ENVS)
    if n == REFERENCE_ENVS:
        return
    samples = SHIPPED_RATIO * n  # per vector step
    batch, updates = values.get("batch_size"), values.get("updates_per_step")
    if batch is None and updates is None:
        batch = min(BATCH_CAP, max(Config.batch_size, Config.batch_size * n // REFERENCE_ENVS))
    if batch is None:
        batch = max(1, min(BATCH_CAP, round(samples / updates)))
    if updates is None:
        updates = max(1, round(samples / batch))
    values["batch_size"], values["updates_per_step"] = batch, updates
    if "learning_starts" not in values:
        values["learning_starts"] = max(Config.learning_starts, 2 * batch)
    for name in ("log_every", "checkpoint_every"):
        if name not in values:
            values[name] = getattr(Config, name) * n // REFERENCE_ENVS


def derived(config: Config) -> dict:
    """What the budget and the cadences come to, in the units they act in: for run.json."""
    from mjx_cikd.config.checks import eval_period

    return dict(replay_ratio=replay_ratio(config), batch_size=config.batch_size,
                updates_per_step=config.updates_per_step,
                updates_per_env_step=config.updates_per_step / config.num_envs,
                eval_every_vector_steps=eval_period(config),
                log_every_vector_steps=config.iters_per_chunk,
                phase_every_vector_steps=config.phase_period)


def ratio_warning(config: Config) -> str | None:
    """One line when the replay ratio is far below the shipped one."""
    ratio = replay_ratio(config)
    if ratio * RATIO_WARNING >= SHIPPED_RATIO:
        return None
    return (f"replay ratio {ratio:g} samples per env step (U {config.updates_per_step} x B "
            f"{config.batch_size} / N {config.num_envs}), under 1/{RATIO_WARNING} of the shipped "
            f"{SHIPPED_RATIO:g}: the members get few updates for their data; leave --batch_size "
            f"and --updates_per_step out to keep the ratio (docs/results.md, issue 29)")
