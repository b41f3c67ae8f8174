"""Brax's own SAC trainer in MuJoCo Playground's tuned config, one task and seed, for comparison.

    python scripts/brax_sac.py --env CartpoleSwingup --seed 0 --total_steps 200000 --out DIR

Writes DIR/metrics.jsonl in mjx_cikd's format (`eval` records with the deterministic return of
`--eval_episodes` episodes, `wall_s` from before the environment is built, compile included) and
DIR/config.json (Playground's config as run). Kept outside the package: the trainer never imports
Brax's training code. What differs from `--profile playground`: mjx_cikd/bench/baseline.py.
"""

import argparse
import json
import pathlib
import time

import jax

if not hasattr(jax, "device_put_replicated"):  # removed from JAX; Brax 0.14.2 still calls it
    # a leading axis of one per device is what its pmapped functions take
    jax.device_put_replicated = lambda tree, devices: jax.tree.map(
        lambda x: jax.numpy.stack([x] * len(devices)), tree)

from brax.training.agents.sac import networks as sac_networks  # noqa: E402
from brax.training.agents.sac import train as sac_train  # noqa: E402
from mujoco_playground import registry, wrapper  # noqa: E402
from mujoco_playground.config import dm_control_suite_params  # noqa: E402

from mjx_cikd.config import Config, budget  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartpoleSwingup", help="a Playground DM Control task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--total_steps", type=int, default=200_000, help="env steps")
    parser.add_argument("--eval_every", type=int, default=10_000, help="env steps")
    parser.add_argument("--eval_episodes", type=int, default=10, help="deterministic episodes")
    parser.add_argument("--num_envs", type=int, default=128,
                        help="N; away from Playground's 128 the batch and the updates per vector "
                             "step keep its replay ratio by mjx_cikd's own rule "
                             "(mjx_cikd/config/budget.py), so both systems scale alike")
    parser.add_argument("--batch_size", type=int,
                        help="B at --num_envs (default: mjx_cikd's derivation); U follows it to "
                             "keep the replay ratio, as `scripts/train.py --batch_size` does")
    parser.add_argument("--out", required=True, help="the run directory to write")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=False)
    start = time.perf_counter()
    env = registry.load(args.env, config_overrides={"impl": "jax"})
    params = dm_control_suite_params.brax_sac_config(args.env).to_dict()
    params.update(num_timesteps=args.total_steps,
                  num_evals=args.total_steps // args.eval_every + 1,
                  **scaled(args.num_envs, args.batch_size))
    net = dict(params.pop("network_factory"))
    params.pop("num_resets_per_eval", None)  # Playground's train script's, not Brax's train
    (out / "config.json").write_text(json.dumps(dict(
        system="brax", env=args.env, seed=args.seed, total_steps=args.total_steps,
        eval_episodes=args.eval_episodes, deterministic_eval=True, network_factory=net,
        **params), indent=2))
    with open(out / "metrics.jsonl", "w") as log:
        _train(args, env, params, net, log, start)


def scaled(num_envs: int, batch_size: int | None = None) -> dict:
    """Playground's N, batch, updates per vector step and warm-up at `num_envs` envs (and
    `batch_size`, if given), derived as `scripts/train.py --num_envs N [--batch_size B]` derives
    its own (the shipped config is Playground's)."""
    values = dict(num_envs=num_envs)
    if batch_size is not None:
        values["batch_size"] = batch_size
    budget.follow_envs(values)
    return dict(num_envs=num_envs, batch_size=values.get("batch_size", Config.batch_size),
                grad_updates_per_step=values.get("updates_per_step", Config.updates_per_step),
                min_replay_size=values.get("learning_starts", Config.learning_starts))


def _train(args, env, params: dict, net: dict, log, start: float) -> None:
    def progress(steps, metrics):
        ret = float(metrics["eval/episode_reward"])
        log.write(json.dumps(dict(event="eval", seed=0, env_steps=int(steps), returns=[ret],
                                  best=ret, worst=ret, mean=ret,
                                  wall_s=time.perf_counter() - start)) + "\n")
        log.flush()
        print(f"[brax_sac] {args.env} seed {args.seed}: {int(steps):,} env steps, "
              f"eval {ret:.1f}, {time.perf_counter() - start:.0f}s", flush=True)

    sac_train.train(
        environment=env, eval_env=registry.load(args.env, config_overrides={"impl": "jax"}),
        wrap_env_fn=wrapper.wrap_for_brax_training, seed=args.seed, progress_fn=progress,
        num_eval_envs=args.eval_episodes, deterministic_eval=True,
        network_factory=lambda *a, **k: sac_networks.make_sac_networks(*a, **k, **net),
        **params)
    log.write(json.dumps({"event": "run", "phase": "end",
                          "wall_s": time.perf_counter() - start}) + "\n")


if __name__ == "__main__":
    main()
