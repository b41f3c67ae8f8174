"""Issue 30's stage 1 read from the forks' records: what one phase gave each student, and for how
long (the rules: docs/results.md, "Does a phase teach? Paired forks").

A student's paired gain at a horizon is its audited return in an arm minus the same member's in
the no-phase arm (same seed, same audit episodes: `cikd/forks.py`); a seed's gain is the mean over
its students (the members other than that arm's teacher), an arm's the mean over seeds with a 95%
BCa bootstrap interval over seeds (`stats.bootstrap_ci`). A phase *teaches* at a horizon when the
interval lies above 0, *harms* when below it, and is *level* otherwise; its gain *lasts* when it
teaches at the last horizon (the next phase point). Beside the gains: the teacher's change (its
audit at the horizon minus before the fork, in the arm and paired with the no-phase arm), the
students' policy KL before and after the phase, the steps it took and its wall-clock.
"""

from __future__ import annotations

import json
import pathlib
from typing import NamedTuple

import numpy as np

from mjx_cikd.experiments import stats

NO_PHASE = "no phase"  # forks.ARMS[0].name: the arm every other one pairs with


class Fork(NamedTuple):
    """One fork point's records (`OUT/forks.jsonl`), arrays over seeds."""

    label: str  # "<task> at <env steps> env steps"
    step: int  # env steps per seed at the fork
    updates: tuple[int, ...]  # the horizons, SAC updates of each member after the fork
    arms: tuple[str, ...]  # in the order they ran
    teacher: dict  # arm -> [S] the member that taught
    before: dict  # arm -> [S, K] each member's audit before the fork
    returns: dict  # arm -> [S, H, K] each member's audit at each horizon
    phase: dict  # arm -> {kl_before, kl_after: [S, K], steps: [S], phase_s: [S]}


def load(out: str | pathlib.Path) -> Fork:
    """The finished arms of one `scripts/forks.py --out OUT` directory."""
    path = pathlib.Path(out) / "forks.jsonl"
    rows = [json.loads(line) for line in path.open()]
    ends = [r for r in rows if r["event"] == "end"]
    arms = tuple(r["arm"] for r in ends)
    if NO_PHASE not in arms:
        raise ValueError(f"{path} has no finished '{NO_PHASE}' arm: nothing to pair the arms with")
    seeds = 1 + max(r["seed"] for r in rows if "seed" in r)
    forks = {(r["arm"], r["seed"]): r for r in rows if r["event"] == "fork"}
    audits = {(r["arm"], r["seed"], r["horizon"]): r for r in rows if r["event"] == "audit"}
    horizons = sorted({h for _, _, h in audits})
    updates = tuple(audits[NO_PHASE, 0, h]["updates"] for h in horizons)

    def by_seed(arm, key):
        return np.array([forks[arm, s][key] for s in range(seeds)], dtype=float)

    task = ends[0].get("env", pathlib.Path(out).name)
    return Fork(
        label=f"{task} at {ends[0]['fork_env_steps']:,} env steps", step=ends[0]["fork_env_steps"],
        updates=updates, arms=arms,
        teacher={a: by_seed(a, "teacher").astype(int) for a in arms},
        before={a: by_seed(a, "before") for a in arms},
        returns={a: np.array([[audits[a, s, h]["returns"] for h in horizons]
                              for s in range(seeds)], dtype=float) for a in arms},
        phase={a: dict(kl_before=by_seed(a, "kl_before"), kl_after=by_seed(a, "kl_after"),
                       steps=by_seed(a, "steps"), phase_s=by_seed(a, "phase_s")) for a in arms})


def _students(teacher: np.ndarray, k: int) -> np.ndarray:
    """[S, K] True where a member is a student of its seed's teacher."""
    return np.arange(k)[None, :] != teacher[:, None]


def student_gain(fork: Fork, arm: str) -> np.ndarray:
    """[S, H] each seed's mean paired gain over its students, at each horizon."""
    diff = fork.returns[arm] - fork.returns[NO_PHASE]  # [S, H, K]
    students = _students(fork.teacher[arm], diff.shape[-1])[:, None, :]
    return (diff * students).sum(-1) / students.sum(-1)


def teacher_change(fork: Fork, arm: str) -> tuple[np.ndarray, np.ndarray]:
    """[S, H] the teacher's audit at each horizon minus before the fork, and minus the same
    member's in the no-phase arm (what the students' new data did to it)."""
    rows = np.arange(len(fork.teacher[arm]))
    t = fork.teacher[arm]
    own = fork.returns[arm][rows, :, t]  # [S, H]
    return (own - fork.before[arm][rows, t][:, None], own - fork.returns[NO_PHASE][rows, :, t])


def verdict(low: float, high: float) -> str:
    """Rule 2: teaches (interval above 0), harms (below) or level."""
    return "teaches" if low > 0 else "harms" if high < 0 else "level"


def _students_mean(values: np.ndarray, teacher: np.ndarray) -> float:
    """The mean over seeds and students of [S, K] values (NaN where an arm ran no phase)."""
    students = _students(teacher, values.shape[-1])
    return float(np.mean([v[m].mean() for v, m in zip(values, students)]))


def table(fork: Fork) -> list[str]:
    """The fork point's two markdown tables: gains by arm and horizon; the phase itself."""
    seeds = len(fork.teacher[NO_PHASE])
    head = " | ".join(f"{u:,} updates" for u in fork.updates)
    lines = [f"**{fork.label}** ({seeds} seeds): the students' paired gain, mean [95% BCa CI] "
             f"(verdict)", "", f"| arm | {head} |", "|---" * (1 + len(fork.updates)) + "|"]
    arms = [a for a in fork.arms if a != NO_PHASE]
    for arm in arms:
        band = stats.bootstrap_ci(student_gain(fork, arm))
        cells = [f"{stats.fmt(m)} [{stats.fmt(lo)}, {stats.fmt(hi)}] ({verdict(lo, hi)})"
                 for m, lo, hi in zip(*band)]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", "| arm | students' KL before | after | phase steps | phase wall-clock, s | "
                  f"teacher's change at {fork.updates[-1]:,} | paired with no phase |",
              "|---|---|---|---|---|---|---|"]
    for arm in arms:
        p, t = fork.phase[arm], fork.teacher[arm]
        own, paired = (stats.bootstrap_ci(x[:, -1]) for x in teacher_change(fork, arm))
        lines.append(f"| {arm} | {_students_mean(p['kl_before'], t):.3g} | "
                     f"{_students_mean(p['kl_after'], t):.3g} | {np.mean(p['steps']):,.0f} | "
                     f"{np.mean(p['phase_s']):.2f} | {stats.fmt_interval(*own)} | "
                     f"{stats.fmt_interval(*paired)} |")
    return lines


def plot(forks_: list[Fork], path: pathlib.Path) -> pathlib.Path:
    """One panel per fork point: each arm's paired student gain against the horizon, 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(forks_), figsize=(4.2 * len(forks_), 3.8), squeeze=False)
    for ax, fork in zip(axes[0], forks_):
        x = np.arange(len(fork.updates))
        for i, arm in enumerate(a for a in fork.arms if a != NO_PHASE):
            band = stats.bootstrap_ci(student_gain(fork, arm))
            offset = (i - 2) * 0.04  # the bars side by side
            ax.errorbar(x + offset, band.mean, yerr=[band.mean - band.low, band.high - band.mean],
                        marker="o", capsize=3, label=arm)
        ax.axhline(0.0, color="#999999", linewidth=0.8)
        ax.set_xticks(x, [f"{u:,}" for u in fork.updates])
        ax.set(title=fork.label, xlabel="SAC updates of each member after the fork")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("student's paired gain (return)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), frameon=False,
               fontsize=9)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def report(outs, dest: str | pathlib.Path, name: str = "forks") -> list[pathlib.Path]:
    """DEST/NAME.md (every fork point's tables) and DEST/NAME.png (the gains) from the forks'
    OUT directories."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    forks_ = [load(out) for out in outs]
    text = dest / f"{name}.md"
    text.write_text("\n".join(line for f in forks_ for line in [*table(f), ""]))
    return [text, plot(forks_, dest / f"{name}.png")]
