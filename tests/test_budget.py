"""The update budget and the cadences that follow N (`config/budget.py`, issue 29): with
`--num_envs N` alone the shipped replay ratio (U * B / N = 32 samples per env step) is kept by
the batch first, then U; log points and checkpoints keep their count of vector steps; the
evaluation keeps its count of SAC updates; an explicit batch or U wins."""

import pytest

from mjx_cikd.config import budget_warnings, config_from_args
from mjx_cikd.config.budget import derived, replay_ratio
from mjx_cikd.config.checks import eval_period


def _at(*argv):
    return config_from_args(list(argv))[0]


def test_at_128_envs_nothing_changes():
    config = _at()
    assert (config.num_envs, config.batch_size, config.updates_per_step) == (128, 512, 8)
    assert replay_ratio(config) == 32
    assert (config.log_every, config.checkpoint_every, config.learning_starts) == (
        20_000, 200_000, 8_192)
    assert config.iters_per_chunk == 154 and eval_period(config) == 625


def test_at_2048_envs_u_keeps_the_ratio_and_the_cadences_their_vector_steps():
    base, config = _at(), _at("--num_envs", "2048")
    assert (config.batch_size, config.updates_per_step) == (512, 128)  # issue 29's screen
    assert replay_ratio(config) == 32
    assert config.log_every == 320_000 and config.checkpoint_every == 3_200_000
    assert config.learning_starts == 8_192  # at least two batches in the buffer
    # log points come every as many vector steps as at 128 envs; evaluations every as many SAC
    # updates (the phase schedule's), so every 40 vector steps of 128 updates, against 625 of 8
    # at 128 envs: about as often per env step (every 81,920 env steps against 80,000)
    assert config.log_every // 2048 == base.log_every // 128 == 156
    assert (eval_period(config), eval_period(base)) == (40, 625)
    assert eval_period(config) * 2048 == 81_920 and eval_period(base) * 128 == 80_000
    assert derived(config)["replay_ratio"] == 32
    assert not any("replay ratio" in note for note in budget_warnings(config, 1000))


@pytest.mark.parametrize("argv, batch, updates", [
    (["--num_envs", "512"], 512, 32),  # the batch stays at its cap, U grows
    (["--num_envs", "8192"], 512, 512),
    (["--num_envs", "64"], 512, 4),  # below 128 envs the batch stays, U shrinks
    (["--num_envs", "2048", "--batch_size", "1024"], 1024, 64),  # the given one wins
    (["--num_envs", "2048", "--updates_per_step", "4"], 512, 4),  # ... capped: ratio 1
])
def test_the_other_half_of_the_budget_follows(argv, batch, updates):
    config = _at(*argv)
    assert (config.batch_size, config.updates_per_step) == (batch, updates)


def test_a_ratio_far_below_the_shipped_one_is_one_warning():
    config = _at("--num_envs", "2048", "--batch_size", "512", "--updates_per_step", "8")
    assert replay_ratio(config) == 2
    (note,) = [n for n in budget_warnings(config, 1000) if "replay ratio" in n]
    assert note.startswith("replay ratio 2 samples per env step (U 8 x B 512 / N 2048), under "
                           "1/4 of the shipped 32")
    capped = _at("--num_envs", "2048", "--batch_size", "8192", "--updates_per_step", "2")
    assert not any("replay ratio" in n for n in budget_warnings(capped, 1000))


def test_a_profile_or_saved_config_keeps_its_own_values():
    tiny = _at("--profile", "tiny")  # gives its batch, U and log cadence at 8 envs
    assert (tiny.batch_size, tiny.updates_per_step, tiny.log_every) == (32, 2, 512)
    from mjx_cikd.config import from_dict

    saved = _at("--num_envs", "2048", "--batch_size", "512").to_dict()
    assert from_dict(saved).updates_per_step == 128 and from_dict(saved).batch_size == 512
