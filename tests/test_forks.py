"""Paired forks (issue 30, `cikd/forks.py`, `host/fork_runs.py`), from a checkpoint of an
Ensemble-SAC run on CartpoleSwingup: two arms with nothing different at the fork stay
bit-identical, an arm with a phase differs from the no-phase arm only in the students it moved,
and from there on; the runner writes each arm once and resumes."""

import json

import jax
import numpy as np
import pytest
from conftest import tiny

from mjx_cikd.cikd import forks
from mjx_cikd.config import ConfigError
from mjx_cikd.experiments import fork_report
from mjx_cikd.host import fork_runs
from mjx_cikd.host.run import train

EPISODES = 3


def _flat(state) -> dict:
    """Every leaf of a state on the host, by its path (keys as their data)."""
    leaves = jax.tree_util.tree_leaves_with_path(state)
    return {jax.tree_util.keystr(p): np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x) for p, x in leaves}


def _arm(forker, arm, horizons=(0, 4)):
    """fork_arm's records with each state copied to the host before the next chunk donates it."""
    return [(event, data, _flat(state))
            for event, data, state in fork_runs.fork_arm(forker, arm, horizons)]


def _same(a: dict, b: dict, skip: str = "\0") -> bool:
    return all(np.array_equal(a[k], b[k]) for k in a if skip not in k)


@pytest.fixture(scope="module")
def forker(tmp_path_factory):
    """Forks from an Ensemble-SAC run on CartpoleSwingup (3 members, 2 seeds), checkpointed at
    its end."""
    root = tmp_path_factory.mktemp("forks")
    config = tiny(env="CartpoleSwingup", algo="ensemble", ensemble_size=3, num_seeds=2,
                  total_steps=256, checkpoint_every=256)
    train(config, root / "base", quiet=True)
    base = fork_runs.load(root / "base", None, EPISODES)
    return fork_runs.Forker(base, EPISODES)


def test_forks_pair_up_until_and_from_the_phase(forker):
    assert forker.base.step == 256
    none, twin = _arm(forker, forks.ARMS[0]), _arm(forker, forks.Arm("twin", "no phase, twin",
                                                                     None))
    shipped = _arm(forker, forks.ARMS[1])
    copied = _arm(forker, next(a for a in forks.ARMS if a.key == "copy"))
    # nothing different at the fork: every record and every state bit-identical, to the end
    for (e1, d1, s1), (e2, d2, s2) in zip(none, twin, strict=True):
        assert e1 == e2 and _same(s1, s2)
        for k in d1:
            if k != "phase_s":
                np.testing.assert_array_equal(d1[k], d2[k])
    # the same audit before the fork, so the same teacher, in every arm
    fork = {name: arm[0][1] for name, arm in (("none", none), ("shipped", shipped),
                                             ("copy", copied))}
    for name in ("shipped", "copy"):
        np.testing.assert_array_equal(fork[name]["before"], fork["none"]["before"])
        np.testing.assert_array_equal(fork[name]["teacher"], fork["none"]["teacher"])
    teacher = fork["none"]["teacher"]
    assert np.array_equal(teacher, np.argmax(fork["none"]["before"], -1))
    # right after the fork a phase moved the students and nothing else: the same training key,
    # envs, buffer and normaliser as the no-phase arm, the teacher's own networks untouched
    after_none, after_phase = none[0][2], shipped[0][2]
    assert _same(after_none, after_phase, skip=".members")
    moved = [k for k in after_none if ".members" in k and "actor" in k
             and not np.array_equal(after_none[k], after_phase[k])]
    assert moved
    for k in moved:  # [seed, member, ...]: only the students' rows moved
        for s, t in enumerate(teacher):
            np.testing.assert_array_equal(after_phase[k][s, t], after_none[k][s, t])
    assert np.isfinite(fork["shipped"]["kl_after"]).all()
    assert (fork["shipped"]["kl_after"] <= fork["shipped"]["kl_before"] + 1e-6).all()
    assert np.isnan(fork["none"]["kl_after"]).all()
    # a hard copy: every member's actor is the teacher's
    for k in (k for k in copied[0][2] if ".members" in k and "actor" in k):
        for s, t in enumerate(teacher):
            for m in range(3):
                np.testing.assert_array_equal(copied[0][2][k][s, m], copied[0][2][k][s, t])
    # and from the phase on the runs part: the envs have seen other actions by the horizon
    (_, audit_none, end_none), (_, audit_phase, end_phase) = none[-1], shipped[-1]
    assert audit_none["updates"] == audit_phase["updates"] == 4
    assert not _same(end_none, end_phase, skip=".members")


def test_the_runner_writes_each_arm_once_and_resumes(forker, tmp_path):
    arms = (forks.ARMS[0], next(a for a in forks.ARMS if a.key == "copy"))
    kwargs = dict(horizons=(0, 2), say=lambda *_: None)
    fork_runs.run(forker, tmp_path / "forks", arms=arms[:1], **kwargs)
    path = fork_runs.run(forker, tmp_path / "forks", arms=arms, **kwargs)  # the first: skipped
    rows = [json.loads(line) for line in path.open()]
    assert [r["arm"] for r in rows if r["event"] == "end"] == [a.name for a in arms]
    audits = [r for r in rows if r["event"] == "audit"]
    assert [(r["arm"], r["seed"], r["updates"]) for r in audits] == [
        (a.name, s, u) for a in arms for u in (0, 2) for s in (0, 1)]
    assert all(len(r["returns"]) == 3 and r["fork_env_steps"] == 256 for r in audits)
    fork = [r for r in rows if r["event"] == "fork" and r["arm"] == "hard copy"]
    assert [r["teacher"] for r in fork] == [int(np.argmax(r["before"])) for r in fork]
    # the report reads the records: right after the copy the teacher is the no-phase arm's,
    # audited on the same episodes, and its students are no longer themselves
    read = fork_report.load(path.parent)
    assert read.label == "CartpoleSwingup at 256 env steps" and read.updates == (0, 2)
    np.testing.assert_array_equal(fork_report.teacher_change(read, "hard copy")[1][:, 0], 0.0)
    assert np.all(fork_report.student_gain(read, "hard copy")[:, 0] != 0.0)


def test_forks_start_only_from_an_ensemble_run_that_kept_its_buffer(tmp_path):
    for name, values in (("cikd", dict(algo="cikd")),
                         ("unbuffered", dict(algo="ensemble", checkpoint_buffer=False))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(tiny(**values).to_dict()))
    with pytest.raises(ConfigError, match="forks start from an Ensemble-SAC run"):
        fork_runs.load(tmp_path / "cikd", None, 2)
    with pytest.raises(ConfigError, match="--checkpoint_buffer true"):
        fork_runs.load(tmp_path / "unbuffered", None, 2)
