"""Run directories written by hand for the analysis tests: a `metrics.jsonl` of eval records
(and any extra records) at three steps, with the variant record that puts the run in a set."""

import json

from mjx_cikd.experiments.plan import VariantRecord

STEPS = [100, 200, 300]


def write_run(run_dir, returns, record=None, extra=()):
    """A run directory: `returns` [S, T, K] as eval records at STEPS, a variant record, and any
    `extra` records (e.g. distill)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [dict(event="eval", seed=s, env_steps=t, returns=list(returns[s][i]),
                 best=max(returns[s][i])) for s in range(len(returns))
            for i, t in enumerate(STEPS)]
    with open(run_dir / "metrics.jsonl", "w") as f:
        for row in [*rows, *extra]:
            f.write(json.dumps(row) + "\n")
    if record is not None:
        record.write(run_dir)
    return run_dir


def variant_record(variant, order, baseline, k=1, set_name="demo", curves="best",
                   task="ProbeTarget"):
    """The record that places a run in set `set_name` as `variant` (a baseline or a CIKD arm)."""
    return VariantRecord(set=set_name, task=task, variant=variant, set_title="a demo set",
                         curves=curves, task_order=0, order=order, baseline=baseline,
                         algo="sac" if baseline else "cikd", ensemble_size=k, widths=(32,) * k,
                         member_labels=tuple(f"m{i}" for i in range(k)), seeds=2)


def demo_runs(root):
    """A baseline reaching 3 at 300 steps, and a CIKD variant whose best member reaches 2, 4, 5."""
    base = [[[1.0], [2.0], [3.0]], [[1.0], [2.0], [3.2]]]
    cikd = [[[2.0, 0.0], [4.0, 1.0], [5.0, 1.0]], [[2.0, 1.0], [3.0, 4.0], [5.4, 1.0]]]
    write_run(root / "demo" / "ProbeTarget" / "base", base, variant_record("Base", 0, True))
    write_run(root / "demo" / "ProbeTarget" / "cikd", cikd,
              variant_record("CIKD", 1, False, k=2, curves="best+worst"))


def table_rows(table, first="| ProbeTarget |"):
    """The cells of a markdown table's rows that start with `first`."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith(first)]
