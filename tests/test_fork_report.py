"""Issue 30's stage-1 report (`experiments/fork_report.py`) on forks' records written by hand:
the paired gain counts each seed's students only, pairs them with the same member in the no-phase
arm, and the verdict follows the interval (teaches / level / harms)."""

import json

import numpy as np
import pytest

from mjx_cikd.experiments import fork_report

SEEDS, K, UPDATES = 5, 3, (0, 500, 5000)


def _write(out, arms):
    """forks.jsonl as `host/fork_runs.run` writes it; `arms` {name: (teacher[S], returns[S, H, K],
    kl_after[K])}."""
    rows = []
    for name, (teacher, returns, kl_after) in arms.items():
        for s in range(SEEDS):
            rows.append(dict(event="fork", arm=name, seed=s, fork_env_steps=100_352,
                             before=(90.0 + 10 * np.arange(K) + s).tolist(),
                             teacher=int(teacher[s]),
                             phase_s=0.5, kl_before=[3.0] * K, kl_after=kl_after, steps=64))
        for h, u in enumerate(UPDATES):
            rows += [dict(event="audit", arm=name, seed=s, fork_env_steps=100_352, horizon=h,
                          updates=u, returns=returns[s, h].tolist(), se=[1.0] * K)
                     for s in range(SEEDS)]
        rows.append(dict(event="end", arm=name, env="CartpoleSwingup", fork_env_steps=100_352,
                         episodes=100, wall_s=1.0))
    out.mkdir()
    (out / "forks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_paired_gains_count_the_students_against_the_same_members_without_a_phase(tmp_path):
    s = np.arange(SEEDS)[:, None, None]
    none = 100.0 + 10 * np.arange(K)[None, None, :] + s + np.zeros((SEEDS, len(UPDATES), K))
    taught = none.copy()  # teacher 0 unchanged; its students +20+s, then +5, then -(30+s)
    taught[:, 0, 1:] += 20 + s[:, 0]
    taught[:, 1, 1:] += 5
    taught[:, 2, 1:] -= 30 + s[:, 0]
    teachers = np.arange(SEEDS) % K  # a random teacher: the students differ by seed
    noise = none.copy()
    for seed, t in enumerate(teachers):
        for m in range(K):  # its students' gains cancel over seeds; its teacher moves a lot
            noise[seed, :, m] += 1000 if m == t else (seed - 2) * (1 if m != 1 else 3)
    _write(tmp_path / "f", {"no phase": (np.zeros(SEEDS), none, [float("nan")] * K),
                            "D=64": (np.zeros(SEEDS), taught, [0.0, 0.5, 0.5]),
                            "random": (teachers, noise, [0.0, 0.2, 0.2])})
    fork = fork_report.load(tmp_path / "f")
    assert fork.label == "CartpoleSwingup at 100,352 env steps" and fork.updates == UPDATES
    np.testing.assert_array_equal(fork_report.student_gain(fork, "D=64"),
                                  np.stack([20.0 + np.arange(SEEDS), np.full(SEEDS, 5.0),
                                            -30.0 - np.arange(SEEDS)], 1))
    own, paired = fork_report.teacher_change(fork, "D=64")
    np.testing.assert_array_equal(own, 10.0)  # 100 + s at every horizon against 90 + s before
    np.testing.assert_array_equal(paired, 0.0)
    random_gain = fork_report.student_gain(fork, "random")  # the teacher's +1000 left out
    assert np.all(np.abs(random_gain) < 10) and abs(random_gain.mean()) < 1
    lines = fork_report.table(fork)
    row = next(line for line in lines if line.startswith("| D=64 |") and "teaches" in line)
    cells = row.split(" | ")[1:]
    assert cells[0].startswith("22 [") and cells[0].endswith("(teaches)")
    assert cells[1] == "5 [5, 5] (teaches)" and cells[2].endswith("(harms) |")
    assert next(line for line in lines if line.startswith("| random |")).count("(level)") == 3
    phase = next(line for line in lines if line.startswith("| D=64 |") and "teaches" not in line)
    assert phase.startswith("| D=64 | 3 | 0.5 | 64 | 0.50 | 10 | [10, 10] | 0 | [0, 0] |")
    paths = fork_report.report([tmp_path / "f"], tmp_path / "figs")
    assert paths[1].stat().st_size > 10_000


def test_a_fork_point_without_its_no_phase_arm_is_refused(tmp_path):
    none = np.zeros((SEEDS, len(UPDATES), K))
    _write(tmp_path / "f", {"D=64": (np.zeros(SEEDS), none, [0.0] * K)})
    with pytest.raises(ValueError, match="no finished 'no phase' arm"):
        fork_report.load(tmp_path / "f")
