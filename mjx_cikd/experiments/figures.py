"""The figures of a set, drawn to be read in a paper and in greyscale: the learning curves
(<set>.png), rliable's interval estimates of the IQM (<set>-iqm.png) and its performance profiles
(<set>-profile.png). Every variant keeps one colour and one marker across a set's figures; the
colours differ in lightness and the markers in shape, so the curves stay apart when printed
without colour. The election audit's figure: `mjx_cikd.experiments.election_figure`."""

from __future__ import annotations

import pathlib
import textwrap

import numpy as np

from mjx_cikd.config import ceil_div
from mjx_cikd.envs.probes import PROBE_TASKS
from mjx_cikd.envs.tasks import BRAX_TASKS
from mjx_cikd.experiments import stats
from mjx_cikd.experiments.plan import MEMBER, WORST
from mjx_cikd.experiments.runs import (
    Curve,
    Run,
    curves_of,
    final_scores,
    set_of,
    task_runs,
    tasks_of,
)

# Okabe and Ito's colour-blind safe colours, ordered so that neighbours differ in lightness, each
# with a marker of its own (the shape tells variants apart where the colour cannot).
STYLES = (("#000000", "o"), ("#E69F00", "s"), ("#0072B2", "^"), ("#56B4E9", "D"),
          ("#D55E00", "v"), ("#009E73", "P"), ("#CC79A7", "X"), ("#999999", "*"))
# A DM Control return is a sum of per-step rewards in [0, 1]: a curve that stays under this
# share of the episode's length has not learned, and a band around it would suggest it had.
NOT_LEARNED_SHARE = 0.05
DM_CONTROL_EPISODE = 1000  # the suite's episode length, where the config leaves it to the task
EVAL_RETURN = "Evaluation return"


def pyplot():
    # matplotlib takes a while to load and is only needed to draw: imported here, headless
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8.5,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def steps_text(x: float, _pos=None) -> str:
    """Env steps as a reader writes them: 0, 50k, 100k, 1.5M."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def panels_of(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """The rows of a set's learning-curve figure, [(title, variants)]: the set's own questions
    (`sets.Panel`) with the variants that ran, then any variant no question holds; a set without
    questions is one untitled row of every variant."""
    present = list(dict.fromkeys(r.record.variant for t in tasks_of(runs)
                                 for r in task_runs(runs, t)))
    known = set_of(runs)
    rows = [(p.title, [v for v in p.variants if v in present])
            for p in (known.panels if known else ())]
    rows = [(title, names) for title, names in rows if names]
    placed = {v for _, names in rows for v in names}
    rest = [v for v in present if v not in placed]
    return rows + [("Other variants" if rows else "", rest)] if rest else rows


def styles_of(runs: list[Run]) -> dict[str, tuple[str, str]]:
    """{variant or member label: (colour, marker)} in the set's order, the same in every figure.
    A variant takes the first style no other variant has; when they run out, the first no
    variant of its own rows has (`panels_of`), so that no row draws two curves alike."""
    names = [_lead(c) for t in tasks_of(runs) for r in task_runs(runs, t) for c in curves_of(r)]
    rows = [set(members) for _, members in panels_of(runs)]
    styles: dict[str, tuple[str, str]] = {}
    for name in dict.fromkeys(names):
        near = set().union(*(row for row in rows if name in row)) or set(styles)
        taken = {styles[other] for other in near if other in styles}
        free = [s for s in STYLES if s not in taken]
        fresh = [s for s in free if s not in styles.values()]
        styles[name] = (fresh or free or [STYLES[len(styles) % len(STYLES)]])[0]
    return styles


def short_title(runs: list[Run]) -> str:
    """The set's title up to its first colon ("" for a set without one: the figure says what it
    plots instead; the set's own name is the project's, not the reader's)."""
    record = runs[0].record
    if record.set_title and record.set_title != record.set:
        return record.set_title.split(":")[0].strip()
    return ""


def return_scale(run: Run) -> float | None:
    """The largest return a task can give, where the task says (DM Control), else None."""
    task = run.record.task
    if task in BRAX_TASKS or task in PROBE_TASKS:
        return None
    return float(run.episode_length or DM_CONTROL_EPISODE)


def _seeds_text(runs: list[Run]) -> str:
    seeds = sorted({r.returns.shape[0] for r in runs})
    return f"{'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}"


def _ylabel(runs: list[Run]) -> str:
    kinds = {c.kind for r in runs for c in curves_of(r)}
    if MEMBER in kinds:
        return f"{EVAL_RETURN}\n(each member, deterministic)"
    if WORST in kinds:
        return f"{EVAL_RETURN}, deterministic\n(best member solid, worst dashed)"
    return f"{EVAL_RETURN}\n(best member, deterministic)"


def _lead(c: Curve) -> str:
    """What a curve's style follows: its member label in a members set, else its variant."""
    return c.label if c.kind == MEMBER else c.variant


def _draw_curve(ax, c: Curve, style, shift: float, learned: bool) -> object:
    """One curve: the seed mean with markers; the best member's 95% CI as error bars, set
    `shift` env steps apart from the other variants' so that no two bars overlap."""
    color, marker = style
    worst = c.kind == WORST
    x = c.steps + shift
    (line,) = ax.plot(x, c.band.mean, color=color, marker=marker, markersize=4.5,
                      linewidth=1.0 if worst else 1.6, linestyle="--" if worst else "-",
                      markerfacecolor="white" if worst else color, label=c.label)
    if learned and not worst and c.values.shape[0] > 1:
        ax.errorbar(x, c.band.mean, yerr=[c.band.mean - c.band.low, c.band.high - c.band.mean],
                    fmt="none", ecolor=color, elinewidth=1.0, capsize=2.5)
    return line


def _draw_task(ax, task: str, runs: list[Run], styles, handles: dict) -> None:
    """One panel: every curve of `runs` on `task`, each variant's bars set apart from the
    others'; the handles of the legend gathered in `handles`."""
    from matplotlib.ticker import FuncFormatter

    curves = [(run, c) for run in task_runs(runs, task) for c in curves_of(run)]
    width = max(int(c.steps[-1]) for _, c in curves)
    leads = list(dict.fromkeys(_lead(c) for _, c in curves))
    flat = []
    for run, c in curves:
        scale = return_scale(run)
        learned = scale is None or np.nanmax(c.band.mean) >= NOT_LEARNED_SHARE * scale
        if not learned and c.kind != WORST:
            flat.append(scale)
        lead = _lead(c)
        shift = 0.012 * width * (leads.index(lead) - (len(leads) - 1) / 2)
        handles.setdefault(c.label, _draw_curve(ax, c, styles[lead], shift, learned))
    if flat and len(flat) == len(leads):  # nothing learned: show it flat on the task's scale
        ax.set_ylim(0, max(ax.get_ylim()[1], 2 * NOT_LEARNED_SHARE * max(flat)))
    if flat:
        ax.text(0.02, 0.97, f"not learned (under {NOT_LEARNED_SHARE:.0%} of the "
                f"{max(flat):g} maximum):\nno CI drawn", transform=ax.transAxes,
                va="top", fontsize=7.5, color="0.3")
    ax.set_title(task)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(FuncFormatter(steps_text))
    ax.set_xlabel("Environment steps")
    ax.grid(alpha=0.25, linewidth=0.6)


def _legend(where, handles: dict, loc: str, ncol: int, runs: list[Run]) -> None:
    where.legend(list(handles.values()), list(handles), loc=loc, ncol=ncol, frameon=False,
                 title=f"mean of {_seeds_text(runs)}\nbars: 95% bootstrap CI (BCa)",
                 title_fontsize=8.5, alignment="left")


def plot_set(set_name: str, runs: list[Run], out: pathlib.Path) -> pathlib.Path:
    """<set>.png: per task, the seed mean of the evaluation return against env steps; a set of
    several questions (`panels_of`) draws a row per question, with its own legend."""
    plt = pyplot()
    tasks, styles, rows = tasks_of(runs), styles_of(runs), panels_of(runs)
    if len(rows) > 1:
        fig = plt.figure(figsize=(4.2 * len(tasks) + 3.4, 3.1 * len(rows) + 0.4),
                         layout="constrained")
        for sub, (title, names) in zip(fig.subfigures(len(rows), 1, squeeze=False)[:, 0], rows):
            mine = [r for r in runs if r.record.variant in names]
            axes = sub.subplots(1, len(tasks), squeeze=False)[0]
            handles: dict[str, object] = {}
            for ax, task in zip(axes, tasks):
                if task_runs(mine, task):
                    _draw_task(ax, task, mine, styles, handles)
                else:
                    ax.set_visible(False)
            axes[0].set_ylabel(_ylabel(runs))
            sub.suptitle(title, fontsize=10)
            _legend(sub, handles, "outside right center", 1, runs)
        fig.suptitle(short_title(runs) or "Learning curves", fontsize=11)
    else:
        ncols = min(len(tasks), 3)
        nrows = ceil_div(len(tasks), ncols)
        side = len(tasks) == 1  # one panel: the legend beside it; several: below them
        size = (max(4.2 * ncols, 6.0) + (2.6 if side else 0), 3.0 * nrows + (0.5 if side else 1.2))
        fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained")
        handles = {}
        for ax, task in zip(axes.flat, tasks):
            _draw_task(ax, task, runs, styles, handles)
        for ax in axes[:, 0]:
            ax.set_ylabel(_ylabel(runs))
        for ax in list(axes.flat)[len(tasks):]:
            ax.set_visible(False)
        fig.suptitle(short_title(runs) or "Learning curves", fontsize=11)
        _legend(fig, handles, "outside right center" if side else "outside lower center",
                1 if side else max(1, int(fig.get_figwidth() / 3.2)), runs)
    path = out / f"{set_name}.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _score_panels(plt, runs: list[Run], height: float, label_chars: int = 0):
    """One panel per task, side by side, for the figures of final scores; `label_chars`: the
    longest label the first panel's axis carries, which the figure widens for."""
    tasks = tasks_of(runs)
    width = max(3.4 * len(tasks) + 0.075 * label_chars, 7.0)
    fig, axes = plt.subplots(1, len(tasks), figsize=(width, height), squeeze=False,
                             layout="constrained")
    return fig, list(zip(axes[0], tasks))


def plot_intervals(set_name: str, runs: list[Run], out: pathlib.Path,
                   reps: int = 2000) -> pathlib.Path | None:
    """<set>-iqm.png: rliable's interval estimate of each variant's IQM of the final return (the
    best member's, per seed), as rliable's `plot_interval_estimates` draws it: a bar per variant
    from the low to the high end of its 95% stratified-bootstrap CI, the IQM marked."""
    scores = final_scores(runs)
    if not scores:
        return None
    iqm = stats.iqm_ci({k: v[:, None] for k, v in scores.items()}, reps=reps)
    plt = pyplot()
    styles = styles_of(runs)
    names_of = {task: [v for t, v in scores if t == task] for task in tasks_of(runs)}
    shared = len({tuple(n) for n in names_of.values()}) == 1  # labelled once, on the left
    label = max(len(f"{v} ({s.size})") for (_, v), s in scores.items())
    rows = max(len(n) for n in names_of.values())
    fig, panels = _score_panels(plt, runs, 1.6 + 0.45 * rows, label * (1 if shared else 2))
    for i, (ax, task) in enumerate(panels):
        names = names_of[task]
        for y, name in enumerate(names):
            point, low, high = iqm[task, name]
            color, marker = styles[name]
            ax.barh(y, high - low, left=low, height=0.6, color=color, alpha=0.35,
                    edgecolor=color)
            ax.plot([point], [y], marker=marker, color=color, markersize=7,
                    markeredgecolor="black", markeredgewidth=0.6)
        ax.set_yticks(range(len(names)), [f"{n} ({scores[task, n].size})" for n in names]
                      if i == 0 or not shared else [])
        ax.set_title(task)
        ax.set_xlabel("IQM of the final return\n(best member, deterministic)")
        ax.set_ylim(len(names) - 0.5, -0.5)
        ends = [x for n in names for x in iqm[task, n][1:]]
        pad = 0.06 * max(max(ends) - min(ends), 1.0)
        ax.set_xlim(min(ends) - pad, max(ends) + pad)
        ax.grid(axis="x", alpha=0.25, linewidth=0.6)
    fig.suptitle(f"{short_title(runs) or 'Final returns'}: IQM", fontsize=10)
    fig.supxlabel("bars: 95% stratified-bootstrap CI (rliable); (n): seeds", fontsize=7.5,
                  color="0.25")
    path = out / f"{set_name}-iqm.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_profiles(set_name: str, runs: list[Run], out: pathlib.Path,
                  reps: int = 2000) -> pathlib.Path | None:
    """<set>-profile.png: rliable's performance profiles, the share of seeds whose final return (the
    best member's) exceeds tau, against tau: a row per task (per task and question in a set of
    several, `panels_of`), a panel per variant with its 95% stratified-bootstrap CI shaded and
    the row's other variants in grey behind it (four overlapping bands would blend into one)."""
    scores = final_scores(runs)
    if not scores:
        return None
    plt = pyplot()
    styles, panels = styles_of(runs), panels_of(runs)
    rows = [(task, title, [n for n in names if (task, n) in scores])
            for task in tasks_of(runs) for title, names in panels]
    rows = [row for row in rows if row[2]]
    width = max(len(names) for _, _, names in rows)
    fig = plt.figure(figsize=(2.6 * width + 0.6, 2.7 * len(rows) + 0.7), layout="constrained")
    for sub, (task, title, names) in zip(fig.subfigures(len(rows), 1, squeeze=False)[:, 0], rows):
        axes = sub.subplots(1, width, squeeze=False, sharey=True)[0]
        mine = {n: scores[task, n][:, None] for n in names}
        every = np.concatenate([v for (t, _), v in scores.items() if t == task])  # a task's scale
        pad = 0.05 * max(float(np.ptp(every)), 1.0)
        taus = np.linspace(float(every.min()) - pad, float(every.max()) + pad, 201)
        profiles = stats.performance_profile(mine, taus, reps=reps)
        for ax, (name, band) in zip(axes, profiles.items()):
            for other, theirs in profiles.items():
                if other != name:
                    ax.plot(taus, theirs.mean, color="0.75", linewidth=1.0)
            color, marker = styles[name]
            ax.fill_between(taus, band.low, band.high, color=color, alpha=0.25, linewidth=0)
            ax.plot(taus, band.mean, color=color, linewidth=1.8)
            ax.plot([], [], color=color, marker=marker, label=name)
            ax.set_title(textwrap.fill(f"{name} ({mine[name].shape[0]} seeds)", 34),
                         fontsize=8.5)
            ax.set(ylim=(-0.02, 1.02), xlabel=f"τ, final return on {task}")
            ax.grid(alpha=0.25, linewidth=0.6)
        for ax in axes[len(profiles):]:
            ax.set_visible(False)
        axes[0].set_ylabel("Fraction of seeds\nwith return > τ")
        if len(panels) > 1:
            sub.suptitle(f"{task}: {title}", fontsize=9.5)
    title = short_title(runs)
    fig.suptitle(f"{title}: performance profiles" if title else "Performance profiles",
                 fontsize=10)
    # a figure-level label: the constrained layout makes room for it under the axes' labels
    fig.supxlabel("return: the best member's deterministic evaluation at the last evaluation\n"
                  "shaded: 95% stratified-bootstrap CI (rliable); grey: the row's other variants",
                  fontsize=7.5, color="0.25")
    path = out / f"{set_name}-profile.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
