"""Playback of a saved run: load a checkpoint of a run directory (`load_run`: the newest, one at a
given env step, or the best evaluation's), play every
member's deterministic policy for n episodes in each seed (`play`, the evaluation's own
`rollout`), tabulate the returns (`rows`), and film the best member's best episode through
MuJoCo's offscreen renderer into an H.264 mp4 (`film`).

MuJoCo picks its OpenGL backend (MUJOCO_GL) once, when it is first imported: a caller without a
display sets MUJOCO_GL=egl before importing this module (scripts/evaluate.py does; see
docs/evaluate.md for what was verified where).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import warnings
from typing import NamedTuple

import jax
import mujoco
import numpy as np

from mjx_cikd.agent.ensemble import Members
from mjx_cikd.agent.normalizer import Normalizer
from mjx_cikd.config import Config, ConfigError
from mjx_cikd.envs import contacts
from mjx_cikd.envs import tasks as envs
from mjx_cikd.host import checkpoint
from mjx_cikd.host.compiled import enable_compile_cache, seed_keys
from mjx_cikd.host.run_dir import read_config
from mjx_cikd.loop.evaluation import rollout
from mjx_cikd.loop.trainer import Trainer, make_train


class Loaded(NamedTuple):
    """A run restored from its directory: what its members need to act, for every seed."""

    run_dir: pathlib.Path
    config: Config
    trainer: Trainer
    members: Members  # each seed's ensemble, stacked on a leading seed axis [S]
    norm: Normalizer  # [S] the observation normalisers
    eval_key: jax.Array  # [S] the seeds' evaluation streams
    iteration: int  # vector steps taken when the checkpoint was written

    @property
    def env_steps(self) -> int:
        """Env steps per seed at the checkpoint."""
        return self.iteration * self.config.num_envs


def _pick_step(run_dir: pathlib.Path, step: int | None, best: bool) -> tuple[int, str]:
    """Which checkpoint to play and where it lies: the newest, the one at `step` (the newest
    ones' or the best's), or the best evaluation's; a ConfigError naming what there is."""
    kept = checkpoint.steps(run_dir)
    if best:
        if not kept[checkpoint.BEST]:
            raise ConfigError(f"{run_dir} keeps no best checkpoint (a run keeps one when a log "
                              f"point ends with an evaluation; runs before it did not)")
        return kept[checkpoint.BEST][-1], checkpoint.BEST
    if step is None:
        if not kept[checkpoint.DIR]:
            raise ConfigError(f"{run_dir} has no complete checkpoint yet (a run saves one at its "
                              f"end and every --checkpoint_every env steps)")
        return kept[checkpoint.DIR][-1], checkpoint.DIR
    for root in (checkpoint.DIR, checkpoint.BEST):
        if step in kept[root]:
            return step, root
    have = sorted(set(kept[checkpoint.DIR] + kept[checkpoint.BEST]))
    raise ConfigError(f"{run_dir} has no checkpoint at env step {step}; it keeps "
                      f"{', '.join(f'{s:,}' for s in have) or 'none'} (--keep_checkpoints sets "
                      f"how many; the best evaluation's is --best)")


def load_run(run_dir: str | pathlib.Path, step: int | None = None, best: bool = False,
             episodes: int = 0) -> Loaded:
    """The run in `run_dir` at its newest complete checkpoint (or the one at env step `step`, or
    the best evaluation's), or a ConfigError saying why not; its task can play `episodes` per
    member and seed (at least the run's own evaluation)."""
    run_dir = pathlib.Path(run_dir)
    config = read_config(run_dir)
    # the only calls of the checkpoint's API here: one place to follow it when it changes
    step, root = _pick_step(run_dir, step, best)
    enable_compile_cache(config.compile_cache)  # a second playback of the run compiles less
    worlds = max(contacts.worlds(config),
                 config.num_seeds * config.ensemble_size * max(episodes, config.eval_episodes))
    trainer = make_train(config, envs.make_task(config, worlds))
    # shapes suffice as the template (nothing runs init): the leaves the checkpoint may lack
    # (the replay buffer, empty Warp ones) are none that playback reads
    shapes = jax.eval_shape(jax.vmap(trainer.init), seed_keys(config))
    meta = checkpoint.describe(config, trainer.task.impl, shapes)
    saved = checkpoint.restore(run_dir, shapes, trainer.schedule(), meta, step, root)
    state = saved.state
    return Loaded(run_dir=run_dir, config=config, trainer=trainer, members=state.members,
                  norm=state.norm, eval_key=state.eval_key,
                  iteration=int(saved.schedule.iteration))


def start_keys(loaded: Loaded, seed: int | None = None) -> jax.Array:
    """One key per run seed for the episodes' starts: from `key(seed)` when given, else the key
    of the run's evaluation at the checkpoint's last iteration (the trainer folds the iteration
    into the seed's eval stream), so that with the run's `eval_episodes` the table's means repeat
    that evaluation (docs/evaluate.md says when one fell there)."""
    if seed is not None:
        return jax.random.split(jax.random.key(seed), loaded.config.num_seeds)
    last = max(loaded.iteration - 1, 0)
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(loaded.eval_key, last)


class Pose(NamedTuple):
    """What the renderer needs of a state: positions only (drawing needs no velocities)."""

    qpos: np.ndarray
    mocap_pos: np.ndarray
    mocap_quat: np.ndarray


def pose(state: envs.EnvState) -> Pose:
    data = envs.mjx_data(state)
    return Pose(data.qpos, data.mocap_pos, data.mocap_quat)


class Played(NamedTuple):
    """Every seed's K x n deterministic episodes, on the host."""

    returns: np.ndarray  # [S, K, n]
    lengths: np.ndarray  # [S, K, n] steps each episode lasted
    poses: Pose | None  # [S, T, K * n, ...] each: the state every action was chosen in


def play(loaded: Loaded, episodes: int, keys: jax.Array, record: bool = False) -> Played:
    """`episodes` fresh episodes per member and seed, every seed's starts drawn from its key
    (`start_keys`); `record` keeps the poses that `film` renders."""
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    task, ensemble = loaded.trainer.task, loaded.trainer.ensemble

    def one_seed(members, norm, key):
        start = task.reset(jax.random.split(key, ensemble.size * episodes))
        return rollout(task, ensemble, members, norm, start, episodes, pose if record else None)

    out = jax.device_get(jax.jit(jax.vmap(one_seed))(loaded.members, loaded.norm, keys))
    return Played(returns=out.returns, lengths=out.lengths, poses=out.trace)


class Row(NamedTuple):
    """One line of the table: one member of one seed over its episodes."""

    seed: int  # the run's seed index s (its key is key(config.seed + s))
    member: int
    mean: float
    std: float
    min: float
    max: float
    length: float  # mean episode length, in steps


def rows(played: Played) -> list[Row]:
    """The table: one row per seed x member, seeds first."""
    table = []
    for s, k in np.ndindex(played.returns.shape[:2]):
        r = played.returns[s, k].astype(np.float64)
        table.append(Row(seed=s, member=k, mean=float(r.mean()), std=float(r.std()),
                         min=float(r.min()), max=float(r.max()),
                         length=float(played.lengths[s, k].mean())))
    return table


def format_table(table: list[Row]) -> str:
    """The table as text: a header line (the Row's fields), then one line per row."""
    header = " ".join(f"{name:>12}" for name in Row._fields)
    lines = [" ".join(f"{x:>12.6g}" for x in r) for r in table]
    return "\n".join([header, *lines])


class Pick(NamedTuple):
    """The episode a video shows."""

    seed: int
    member: int
    episode: int
    episode_return: float
    length: int


def best_episode(played: Played) -> Pick:
    """The best member over all seeds (highest mean return), and its highest-return episode."""
    seed, member = np.unravel_index(np.argmax(played.returns.mean(-1)), played.returns.shape[:2])
    episode = int(np.argmax(played.returns[seed, member]))
    return Pick(seed=int(seed), member=int(member), episode=episode,
                episode_return=float(played.returns[seed, member, episode]),
                length=int(played.lengths[seed, member, episode]))


def check_video(task: envs.Task, path: str | pathlib.Path, height: int, width: int,
                camera: int | str = -1) -> None:
    """A ConfigError, before anything is played, for a video that could not be made."""
    if task.mj_model is None:
        raise ConfigError(f"task {task.name!r} has no MuJoCo model to render (a probe task)")
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ConfigError("--video needs imageio-ffmpeg: pip install -e '.[video]'")
    if pathlib.Path(path).suffix.lower() != ".mp4":
        raise ConfigError(f"--video writes an .mp4 file, got {str(path)!r}")
    if not pathlib.Path(path).resolve().parent.is_dir():
        raise ConfigError(f"--video: the folder of {str(path)!r} does not exist")
    limit = task.mj_model.vis.global_
    if not (0 < width <= limit.offwidth and 0 < height <= limit.offheight):
        raise ConfigError(f"--width {width} --height {height}: the model's offscreen buffer is "
                          f"{limit.offwidth}x{limit.offheight}")
    model = task.mj_model
    cameras = [-1, *range(model.ncam), *(model.camera(i).name for i in range(model.ncam))]
    if camera not in cameras:
        raise ConfigError(f"--camera {camera!r}: {task.name} has {cameras} (-1: free camera)")


def render(task: envs.Task, poses: Pose, height: int, width: int,
           camera: int | str = -1) -> np.ndarray:
    """[T, height, width, 3] uint8 frames of one env's poses [T, ...] (camera -1: MuJoCo's free
    camera)."""
    model = task.mj_model
    data = mujoco.MjData(model)
    frames = []
    try:
        with mujoco.Renderer(model, height=height, width=width) as renderer:
            for t in range(poses.qpos.shape[0]):
                data.qpos, data.mocap_pos, data.mocap_quat = (x[t] for x in poses)
                mujoco.mj_forward(model, data)  # positions -> the bodies' frames
                renderer.update_scene(data, camera=camera)
                frames.append(renderer.render())
    except (mujoco.FatalError, ImportError) as err:  # no OpenGL context could be made
        raise ConfigError(f"MuJoCo's renderer found no OpenGL (MUJOCO_GL="
                          f"{os.environ.get('MUJOCO_GL', '')!r}); without a display use "
                          f"MUJOCO_GL=egl (docs/evaluate.md): {err}") from None
    return np.stack(frames)


def write_video(path: str | pathlib.Path, frames: np.ndarray, fps: float) -> None:
    """H.264 mp4 through the ffmpeg that imageio-ffmpeg ships (no system ffmpeg needed)."""
    # imported here: the optional `video` extra (its wheel carries a whole ffmpeg)
    import imageio_ffmpeg

    _, height, width, _ = frames.shape
    even = height % 2 == 0 and width % 2 == 0  # yuv420p, the widely playable one, needs it
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", macro_block_size=1,
        pix_fmt_out="yuv420p" if even else "yuv444p")
    with warnings.catch_warnings():
        # JAX warns at every fork; subprocess's fork is straight followed by exec (ffmpeg)
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        writer.send(None)  # starts ffmpeg
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


class Film(NamedTuple):
    pick: Pick
    frames: int
    fps: float


def film(loaded: Loaded, played: Played, path: str | pathlib.Path, height: int = 240,
         width: int = 320, camera: int | str = -1) -> Film:
    """The best member's best episode (`best_episode`), rendered and written to `path`; one
    frame per step of the episode, at the task's control rate."""
    task = loaded.trainer.task
    check_video(task, path, height, width, camera)
    if played.poses is None:
        raise ConfigError("film needs the poses: play(..., record=True)")
    pick = best_episode(played)
    env = pick.member * played.returns.shape[-1] + pick.episode
    poses = Pose(*(x[pick.seed, :pick.length, env] for x in played.poses))
    frames = render(task, poses, height, width, camera)
    fps = round(1.0 / task.dt, 3)  # dt may come from a float32 (Brax): 125, not 124.99999
    write_video(path, frames, fps)
    return Film(pick=pick, frames=len(frames), fps=fps)
