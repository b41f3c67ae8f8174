"""The election audit's figure (<set>-election.png): per audited run and seed, every member's true
return at each phase with the elected teacher marked, and each statistic's hit rate."""

from __future__ import annotations

import pathlib
import textwrap

import numpy as np

from mjx_cikd.experiments import stats
from mjx_cikd.experiments.figures import STYLES, pyplot, steps_text
from mjx_cikd.experiments.runs import (
    STATISTICS,
    as_array,
    audit_records,
    election_summary,
    phase_ran,
    run_name,
)


def _seed_panel(ax, rows: list[dict], seed: int, k: int) -> None:
    """One seed of one run: each member's audited return at every audited phase point, the
    teacher marked where a phase ran (a rule may decline one, a statistic may have no value)."""
    mine = [r for r in rows if int(r["seed"]) == seed]
    if not mine:
        ax.text(0.5, 0.5, "no phase point", transform=ax.transAxes, ha="center", color="0.3")
        return
    steps, audit = np.array([r["env_steps"] for r in mine]), as_array(mine, "audit")
    se = as_array(mine, "audit_se") if all(r.get("audit_se") is not None for r in mine) else None
    for m in range(k):
        color, marker = STYLES[m % len(STYLES)]
        ax.plot(steps, audit[:, m], color=color, marker=marker, markersize=3.5, linewidth=1.1,
                label=f"member {m}")
        if se is not None:  # the audit's own noise: +-2 standard errors of each mean
            ax.fill_between(steps, audit[:, m] - 2 * se[:, m], audit[:, m] + 2 * se[:, m],
                            color=color, alpha=0.15, linewidth=0)
    ran = np.array([phase_ran(r) for r in mine], dtype=bool)
    title = f"seed {seed}: no phase ran of {len(mine)}"
    if ran.any():
        done = [r for r, on in zip(mine, ran) if on]
        at, picked = steps[ran], audit[ran][np.arange(len(done)), [int(r["teacher"]) for r in done]]
        hit = np.array([bool(r["hit"]) for r in done], dtype=bool)
        # open rings around the teacher's point: the member's own marker stays readable inside
        ax.scatter(at[hit], picked[hit], marker="o", s=70, facecolors="none", edgecolors="black",
                   linewidths=1.1, zorder=3, label="teacher, best")
        ax.scatter(at[~hit], picked[~hit], marker="x", s=45, color="#D55E00", linewidths=1.6,
                   zorder=3, label="teacher, not best")
        title = f"seed {seed}: {int(hit.sum())} of {hit.size} phases hit"
        if all("decided" in r for r in done):
            decided = np.array([bool(r["decided"]) for r in done], dtype=bool)
            title += f"\n{int((hit & decided).sum())} of {int(decided.sum())} decided ones"
        if not ran.all():
            title += f"; {int((~ran).sum())} not run"
    ax.set_title(title, fontsize=9)


def _hit_bars(ax, summary: dict) -> None:
    """Each statistic's hit rate over all seeds, its number of phases on the bar; beside it, where
    the audit had standard errors, the hit rate over the decided phases alone (dark)."""
    overall = summary["overall"]
    names = [k for k in (stats.DECIDED, *STATISTICS) if k in overall]
    both = all("hit_rate_decided" in overall[k] for k in names)
    width = 0.4 if both else 0.8
    series = [("hit_rate", "phases", "0.75", "all phases")]
    if both:
        series.append(("hit_rate_decided", "decided_phases", "0.3", "decided phases"))
    for i, (rate, count, color, label) in enumerate(series):
        x = np.arange(len(names)) + (i - (len(series) - 1) / 2) * width
        rates = [np.nan_to_num(overall[k][rate]) for k in names]
        bars = ax.bar(x, rates, width, color=color, edgecolor="black", linewidth=0.6,
                      label=label)
        for bar, name in zip(bars, names):
            ax.annotate(f"{overall[name][count]}", (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), xytext=(0, 2), textcoords="offset points",
                        ha="center", fontsize=7)
    ax.axhline(summary["random_hit_rate"], color="black", linestyle=":", linewidth=1.2)
    ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7.5)
    # a band above 1 for the bars' counts and, above them, the legend: neither covers a bar
    ax.set(ylim=(0, 1.38), yticks=np.linspace(0, 1, 6), ylabel="Hit rate (share of phases)",
           title=f"elected by {summary['metric']}\n(dotted: random, 1/{summary['members']})")
    if both:
        ax.legend(fontsize=7, frameon=False, loc="upper center", ncol=2, handlelength=1.2,
                  columnspacing=0.8, borderaxespad=0.2)


def plot_election(run_dirs, out_png) -> pathlib.Path | None:
    """Per audited run a row: one panel per seed (members' true returns, the teacher ringed where
    it was the best and crossed where it was not), then the hit rates of the teacher and of each
    statistic had it decided. None if no run was audited."""
    audited = [(d, rows) for d in map(pathlib.Path, run_dirs) if (rows := audit_records(d))]
    if not audited:
        return None
    from matplotlib.ticker import FuncFormatter

    plt = pyplot()
    seeds = max(len({int(r["seed"]) for r in rows}) for _, rows in audited)
    fig, axes = plt.subplots(len(audited), seeds + 1, figsize=(3.0 * seeds + 3.0,
                             2.6 * len(audited) + 0.8), squeeze=False, layout="constrained",
                             gridspec_kw={"width_ratios": (3,) * seeds + (2.6,)})
    for row, (run_dir, rows) in zip(axes, audited):
        k = len(rows[0]["audit"])
        for ax, seed in zip(row[:-1], sorted({int(r["seed"]) for r in rows})):
            _seed_panel(ax, rows, seed, k)
            ax.xaxis.set_major_formatter(FuncFormatter(steps_text))
            ax.grid(alpha=0.25, linewidth=0.6)
        for ax in row[len({int(r["seed"]) for r in rows}):-1]:
            ax.set_visible(False)
        # the run's name wrapped to the panel's height, so that rows' labels never run together
        row[0].set_ylabel(textwrap.fill(run_name(run_dir), 34) + "\ntrue return (deterministic)",
                          fontsize=8.5)
        _hit_bars(row[-1], election_summary(run_dir))
    for ax in axes[-1, :-1]:
        ax.set_xlabel("Environment steps")
    fig.suptitle("Teacher elections audited against the members' true returns", fontsize=11)
    legend = {}  # every panel's entries once: a run whose phases never ran has no teacher marks
    for ax in axes[:, :-1].flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside lower center",
               ncol=max(len(legend), 1), frameon=False)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)
    return pathlib.Path(out_png)
