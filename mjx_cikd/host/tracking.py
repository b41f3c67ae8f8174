"""Weights & Biases (`--wandb PROJECT`, with `--wandb_entity` and `--wandb_group`): the run's
config, every `log`, `eval` and `distill` record, and at the end the `run` end record (as the W&B
run's summary) and a figure of the evaluations. `wandb` (the `wandb` extra) is imported only here
and only when the flag is given; `WANDB_MODE=offline` keeps the run on disk (`RUN_DIR/wandb/`,
for `wandb sync`).

The W&B run's id is kept in `RUN_DIR/wandb.json`: `--resume` continues the same W&B run. Each
record becomes one `wandb.log` call keyed `seed<s>/<event>/<field>` (a per-member list as
`<field>/<k>`), plotted against `env_steps` (`define_metric`), since several records share an env
step and W&B's own step must only grow. W&B cannot take back what it was sent: after a kill, the
stretch between the checkpoint and the kill, run again on resume, is in the W&B run twice
(`metrics.jsonl` and TensorBoard hold it once).
"""

from __future__ import annotations

import json
import pathlib

from mjx_cikd.config import Config, ConfigError

EVENTS = ("log", "eval", "distill")
SKIP = ("event", "seed", "env_steps", "metric", "rule", "wall_s")


def flatten(record: dict) -> dict[str, float]:
    """A record's numbers as W&B keys (`seed0/eval/best`, `seed0/log/R/2`); strings, None (NaN)
    and nested lists are left out."""
    prefix = f"seed{record.get('seed', 0)}/{record['event']}"
    out = {}
    for key, value in record.items():
        if key in SKIP:
            continue
        values = value if isinstance(value, list) else [value]
        for i, v in enumerate(values):
            if isinstance(v, (bool, int, float)):
                name = f"{prefix}/{key}" if not isinstance(value, list) else f"{prefix}/{key}/{i}"
                out[name] = float(v)
    return out


class WandbSink:
    """One W&B run per run directory, continued on resume."""

    def __init__(self, run_dir: pathlib.Path, config: Config):
        try:
            import wandb
        except ImportError:
            raise ConfigError("--wandb needs Weights & Biases: pip install 'mjx_cikd[wandb]' "
                              "(or pip install wandb)") from None
        self.wandb = wandb
        kept = pathlib.Path(run_dir) / "wandb.json"
        run_id = json.loads(kept.read_text())["id"] if kept.is_file() else None  # None: new
        try:
            self.run = wandb.init(project=config.wandb, entity=config.wandb_entity or None,
                                  group=config.wandb_group or None, id=run_id, resume="allow",
                                  name=pathlib.Path(run_dir).name, dir=str(run_dir),
                                  config=config.to_dict(),
                                  settings=wandb.Settings(console="off", quiet=True))
        except Exception as err:  # not logged in, no network, a project it may not write
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(f"--wandb {config.wandb}: W&B refused the run ({first[:200]}); "
                              f"`wandb login`, or WANDB_MODE=offline to keep it on disk") from None
        kept.write_text(json.dumps(dict(id=self.run.id, project=config.wandb,
                                        entity=config.wandb_entity, group=config.wandb_group))
                        + "\n")
        self.run.define_metric("env_steps")
        self.run.define_metric("*", step_metric="env_steps")

    def log(self, record: dict) -> None:
        if record.get("event") not in EVENTS:
            return
        self.run.log({**flatten(record), "env_steps": record["env_steps"]})

    def finish(self, summary: dict | None, rows: list[dict]) -> None:
        """The end record as the run's summary, the figure of the evaluations among `rows` (the
        whole run's records, a resumed one's too), and the run closed."""
        if summary is not None:
            for key, value in summary.items():
                if key not in ("event", "phase"):
                    self.run.summary[key] = value
        evals = [r for r in rows if r.get("event") == "eval"]
        if evals:  # as a PNG in the W&B run's files (wandb.Image of a figure needs pyplot)
            png = pathlib.Path(self.run.dir) / "eval.png"
            eval_figure(evals).savefig(png, dpi=120)
            self.run.log({"figures/eval": self.wandb.Image(str(png))})
        self.run.finish()


def eval_figure(evals: list[dict]):
    """The best and worst member's deterministic evaluation return of each seed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), layout="constrained")
    ax = figure.add_subplot()
    for seed in sorted({r["seed"] for r in evals}):
        rows = [r for r in evals if r["seed"] == seed]
        steps = [r["env_steps"] for r in rows]
        line, = ax.plot(steps, [r["best"] for r in rows], label=f"seed {seed}: best member")
        ax.plot(steps, [r["worst"] for r in rows], ls="--", color=line.get_color(),
                label=f"seed {seed}: worst member")
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel("deterministic evaluation return")
    ax.legend(fontsize="small")
    return figure
