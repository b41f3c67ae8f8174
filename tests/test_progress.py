"""What a run shows while it trains: the same labelled values in the bar and the plain lines,
means over seeds said to be means, steps counted as the `sps` of the records counts them."""

import json
from typing import NamedTuple

import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.config import ConfigError, config_from_args, from_dict
from mjx_cikd.host.progress import Progress, summary


class Log(NamedTuple):  # the one field of a ChunkLog that progress reads
    recent_return: np.ndarray


def _evals(*rows):
    return [dict(event="eval", seed=s, env_steps=t, best=b, worst=b - 1, mean=b - 0.5)
            for s, t, b in rows]


def test_over_seeds_the_values_are_means_and_labelled_so():
    config = tiny(num_seeds=2, ensemble_size=3)
    log = Log(np.array([[10.0, np.nan, 4.0], [20.0, np.nan, np.nan]]))
    rows = _evals((0, 64, 5.0), (1, 64, 7.0), (0, 128, 9.0))  # seed 1 not yet evaluated again
    shown = summary(config, log, rows)
    assert shown == {"R (mean of 2 seeds)": "15/-/4", "eval best (mean of 2 seeds)": "8"}
    one = summary(tiny(ensemble_size=3), Log(log.recent_return[:1]), rows[:1])
    assert one == {"R": "10/-/4", "eval best": "5"}


def test_plain_prints_one_line_per_log_point_and_the_bar_counts_what_sps_counts(capsys):
    config = tiny(num_seeds=2, num_envs=8, total_steps=256, log_every=64)
    log = Log(np.zeros((2, 3)))
    plain = Progress(config, 0, "plain")
    for it in (8, 16):
        plain.update(log, [], it, 1234.0)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") == 2
    assert err.splitlines()[1] == ("[mjx_cikd] env step 128/256 per seed x 2 seeds (50%), "
                                   "1,234 steps/s, R (mean of 2 seeds) 0/0/0")
    bar = Progress(config, 8, "bar")  # resumed at vector step 8
    assert (bar.bar.n, bar.bar.total) == (8 * 8 * 2, 32 * 8 * 2)  # env steps of both seeds
    bar.update(log, [], 16, 1234.0)
    assert bar.bar.n == 16 * 8 * 2 and "sps" not in bar.bar.postfix
    bar.close()
    off = Progress(config, 0, "off")
    off.update(log, [], 8, 1.0)
    assert capsys.readouterr().err.count("\n") <= 1  # the bar's own close only


def test_progress_is_a_choice_and_a_saved_bool_still_loads(tmp_path):
    assert config_from_args(["--progress", "plain"])[0].progress == "plain"
    assert config_from_args(["--progress", "false"])[0].progress == "off"
    with pytest.raises(ConfigError, match="--progress must be one of bar, plain, off"):
        config_from_args(["--progress", "maybe"])
    saved = json.loads(json.dumps(tiny().to_dict()))
    for old, new in ((True, "bar"), (False, "off")):
        assert from_dict(dict(saved, progress=old)).progress == new
