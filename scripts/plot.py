#!/usr/bin/env python
"""Plot run directories like the paper's figures, and tabulate final returns and sample efficiency.

    python scripts/plot.py RUNS --out FIGS

Finds every run directory under RUNS (a directory holding metrics.jsonl, at any depth) and groups
them by experiment set and task. The set, task and variant come from the `variant.json` that
scripts/reproduce.py writes; without one, a run at RUNS/.../<set>/<task>/<variant>/ is named by
its last three directories, and a shallower one goes to the set "runs" under its config's env.

For each set it writes
  FIGS/<set>.png  one panel per task: the mean over seeds of the best member's evaluation return
                  against env steps, with a 95% percentile-bootstrap confidence band over seeds
                  (section 5.1 of the paper). fig1 adds the worst member, dashed; fig4 draws each
                  member's return instead (one curve per member width). One seed: no band.
  FIGS/<set>.md   per task and variant (fig4: per member), the final return (the seed mean at the
                  last evaluation, with its 95% bootstrap CI) and the sample efficiency: the env
                  steps at which the seed-mean curve first reaches the best baseline's final return
                  (baselines: the non-CIKD variants; "—" if it never does).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import textwrap

# replace scripts/ (sys.path[0]) with the repo root: scripts/profile.py must not shadow the
# standard library's `profile`, which warp imports through cProfile
sys.path[0] = str(pathlib.Path(__file__).resolve().parent.parent)

import numpy as np  # noqa: E402

from mjx_cikd.logger import read_metrics  # noqa: E402
from mjx_cikd.stats import Band, bootstrap_ci, first_reach  # noqa: E402

CURVES_BY_SET = {"fig1": "best+worst", "fig4": "members"}  # the rest: best


@dataclasses.dataclass
class Run:
    dir: pathlib.Path
    set: str
    set_title: str
    task: str
    variant: str
    order: float  # the variant's position in its set
    task_order: float  # the task's position in reproduce.py's --tasks
    curves: str  # best | best+worst | members
    baseline: bool
    member_labels: list[str]
    steps: np.ndarray  # [T] evaluation env steps every seed has
    returns: np.ndarray  # [S, T, K] each member's mean evaluation return


@dataclasses.dataclass
class Curve:
    label: str
    variant: str
    kind: str  # best | worst | member
    baseline: bool
    steps: np.ndarray
    values: np.ndarray  # [S, T]
    band: Band


def _eval_arrays(run_dir: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """-> steps [T], returns [S, T, K] over the evaluation points every seed reached. A resumed run
    may log an evaluation twice: the last record wins."""
    per_seed: dict[int, dict[int, list]] = {}
    for row in read_metrics(run_dir, "eval"):
        values = [np.nan if v is None else v for v in row["returns"]]
        per_seed.setdefault(int(row["seed"]), {})[int(row["env_steps"])] = values
    if not per_seed:
        return np.zeros(0, int), np.zeros((0, 0, 0))
    steps = sorted(set.intersection(*(set(d) for d in per_seed.values())))
    seeds = sorted(per_seed)
    returns = np.array([[per_seed[s][t] for t in steps] for s in seeds], dtype=np.float64)
    return np.asarray(steps, dtype=np.int64), returns.reshape(len(seeds), len(steps), -1)


def load_run(root: pathlib.Path, run_dir: pathlib.Path) -> Run | None:
    steps, returns = _eval_arrays(run_dir)
    if steps.size == 0:
        print(f"[plot] {run_dir}: no evaluation yet, skipped", file=sys.stderr)
        return None
    config = {}
    if (run_dir / "config.json").is_file():
        config = json.loads((run_dir / "config.json").read_text())
    meta = {}
    if (run_dir / "variant.json").is_file():
        meta = json.loads((run_dir / "variant.json").read_text())
    parts = run_dir.relative_to(root).parts
    if len(parts) >= 3:
        set_name, task, variant = parts[-3:]
    else:
        set_name = "runs"
        task = config.get("env", "task")
        variant = parts[-1] if parts else run_dir.name
    set_name = meta.get("set", set_name)
    algo = meta.get("algo", config.get("algo", ""))
    k = returns.shape[-1]
    widths = meta.get("widths") or config.get("widths") or [config.get("hidden_width", "?")] * k
    labels = meta.get("member_labels") or (
        [meta.get("variant", variant)] if k == 1
        else [f"(member) {meta.get('variant', variant)} ({w})" for w in widths])
    return Run(dir=run_dir, set=set_name, set_title=meta.get("set_title", set_name),
               task=meta.get("task", task), variant=meta.get("variant", variant),
               order=meta.get("order", math.inf), task_order=meta.get("task_order", math.inf),
               curves=meta.get("curves", CURVES_BY_SET.get(set_name, "best")),
               baseline=bool(meta.get("baseline", algo != "cikd")), member_labels=labels,
               steps=steps, returns=returns)


def find_runs(root: pathlib.Path) -> list[Run]:
    runs = []
    for metrics in sorted(root.rglob("metrics.jsonl")):
        run = load_run(root, metrics.parent)
        if run is not None:
            runs.append(run)
    return runs


def curves_of(run: Run) -> list[Curve]:
    """The curves a run contributes to its set's figure and table."""
    def curve(label, kind, values):
        return Curve(label, run.variant, kind, run.baseline, run.steps, values,
                     bootstrap_ci(values))

    if run.curves == "members":
        return [curve(run.member_labels[k] if k < len(run.member_labels) else
                      f"{run.variant} [{k}]", "member", run.returns[..., k])
                for k in range(run.returns.shape[-1])]
    out = [curve(run.variant, "best", np.nanmax(run.returns, axis=-1))]
    if run.curves == "best+worst" and run.returns.shape[-1] > 1:
        out.append(curve(f"{run.variant} (worst)", "worst", np.nanmin(run.returns, axis=-1)))
    return out


def _ordered(values):
    return list(dict.fromkeys(values))


def _tasks(runs: list[Run]) -> list[str]:
    """Tasks in reproduce.py's --tasks order, then in order of appearance."""
    first = {}
    for r in runs:
        first[r.task] = min(first.get(r.task, math.inf), r.task_order)
    names = _ordered(r.task for r in runs)
    return sorted(names, key=lambda t: (first[t], names.index(t)))


def _fmt_steps(steps) -> str:
    if steps is None:
        return "—"
    if steps >= 1e6:
        return f"{steps / 1e6:.3g}M"
    if steps >= 1e4:
        return f"{steps / 1e3:.4g}k"
    return f"{steps:,}"


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "nan"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def plot_set(set_name: str, runs: list[Run], out: pathlib.Path) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = _tasks(runs)
    ncols = min(len(tasks), 4)
    nrows = -(-len(tasks) // ncols)
    width = max(4.2 * ncols, 7.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 3.4 * nrows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    palette: dict[str, str] = {}
    handles: dict[str, object] = {}
    for ax, task in zip(axes.flat, tasks):
        for run in sorted((r for r in runs if r.task == task), key=lambda r: (r.order, r.variant)):
            for c in curves_of(run):
                key = c.variant if c.kind in ("best", "worst") else c.label
                color = palette.setdefault(key, colors[len(palette) % len(colors)])
                dashed = c.kind == "worst"
                marker = "o" if c.steps.size < 3 else None
                (line,) = ax.plot(c.steps, c.band.mean, color=color, marker=marker,
                                  linestyle="--" if dashed else "-", linewidth=1.5,
                                  label=c.label)
                if c.steps.size == 1:  # a band needs two points: an error bar instead
                    ax.errorbar(c.steps, c.band.mean, yerr=[c.band.mean - c.band.low,
                                                           c.band.high - c.band.mean],
                                color=color, capsize=3, linewidth=1)
                else:
                    ax.fill_between(c.steps, c.band.low, c.band.high, color=color,
                                    alpha=0.10 if dashed else 0.22, linewidth=0)
                handles.setdefault(c.label, line)
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("average return")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    title = runs[0].set_title
    seeds = sorted({r.returns.shape[0] for r in runs})
    suptitle = (f"{set_name}: {title} — mean over {'/'.join(map(str, seeds))} seed(s), "
                f"95% bootstrap CI")
    fig.suptitle(textwrap.fill(suptitle, int(width * 13)), fontsize=10)
    ncol = min(len(handles), max(2, int(width / 2.2)))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol,
               frameon=False, fontsize=9)
    # the figure grows by what the legend (bottom) and the title (top) take, in inches
    legend_in = 0.25 * -(-len(handles) // ncol) + 0.15
    title_in = 0.2 * len(textwrap.wrap(suptitle, int(width * 13))) + 0.1
    height = 3.4 * nrows + legend_in + title_in
    fig.set_size_inches(width, height)
    fig.tight_layout(rect=(0, legend_in / height, 1, 1 - title_in / height))
    path = out / f"{set_name}.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def table_set(set_name: str, runs: list[Run], out: pathlib.Path) -> pathlib.Path:
    tasks = _tasks(runs)
    members = any(r.curves == "members" for r in runs)
    lines = [f"# {set_name}: {runs[0].set_title}", ""]
    what = "each member's" if members else "the best member's"
    lines += [
        f"Final return: the mean over seeds of {what} evaluation return at the last evaluation, "
        "with its 95% percentile-bootstrap confidence interval over seeds. Steps to baseline: the "
        "first evaluation at which the seed-mean curve reaches the best baseline's final return "
        "(baselines: the non-CIKD variants of this set; — if it never does).", "",
        "| Task | Variant | Curve | Seeds | Last eval (env steps) | Final return | 95% CI | "
        "Steps to best baseline's final return |",
        "|---|---|---|---|---|---|---|---|"]
    notes = []
    for task in tasks:
        task_runs = sorted((r for r in runs if r.task == task), key=lambda r: (r.order, r.variant))
        curves = [c for r in task_runs for c in curves_of(r)]
        ref = [c for c in curves if c.baseline and c.kind in ("best", "member")]
        threshold, ref_label = None, None
        if ref:
            best = max(ref, key=lambda c: c.band.mean[-1])
            threshold, ref_label = float(best.band.mean[-1]), best.label
            notes.append(f"- {task}: best baseline {ref_label}, final return {_fmt(threshold)} "
                         f"at {_fmt_steps(int(best.steps[-1]))} steps")
        else:
            notes.append(f"- {task}: no baseline (non-CIKD variant) in this set")
        for c in curves:
            reach = "n/a" if threshold is None else _fmt_steps(
                first_reach(c.steps, c.band.mean, threshold))
            curve = {"best": "best member", "worst": "worst member"}.get(c.kind, c.label)
            lines.append(f"| {task} | {c.variant} | {curve} | {c.values.shape[0]} | "
                         f"{_fmt_steps(int(c.steps[-1]))} | {_fmt(c.band.mean[-1])} | "
                         f"[{_fmt(c.band.low[-1])}, {_fmt(c.band.high[-1])}] | {reach} |")
    lines += ["", *notes, ""]
    path = out / f"{set_name}.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", help="root directory of the run directories")
    parser.add_argument("--out", default="figs", help="where the PNGs and tables go")
    args = parser.parse_args(argv)
    root = pathlib.Path(args.runs)
    if not root.is_dir():
        print(f"error: {root} is not a directory", file=sys.stderr)
        return 2
    runs = find_runs(root)
    if not runs:
        print(f"error: no run directory with evaluations under {root}", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for set_name in _ordered(r.set for r in runs):
        group = [r for r in runs if r.set == set_name]
        png = plot_set(set_name, group, out)
        md = table_set(set_name, group, out)
        print(f"[plot] {set_name}: {len(group)} run(s) -> {png}, {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
