#!/usr/bin/env python
"""Play a trained run's members with their deterministic policies; film the best one.

    python scripts/evaluate.py RUN_DIR                      # table: one row per seed x member
    python scripts/evaluate.py RUN_DIR --episodes 10 --seed 1
    python scripts/evaluate.py RUN_DIR --video best.mp4     # + the best member's best episode
    python scripts/evaluate.py RUN_DIR --best               # the best evaluation's checkpoint
    python scripts/evaluate.py RUN_DIR --step 400000        # the checkpoint at that env step

Loads the run's newest checkpoint, unless --step or --best says which. Without a display,
rendering goes through EGL (MUJOCO_GL=egl, set here unless already set); see docs/evaluate.md.
"""

import argparse
import os
import sys

from mjx_cikd.config import ConfigError


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--step", type=int, default=None, metavar="N",
                       help="the checkpoint at env step N per seed (default: the newest)")
    which.add_argument("--best", action="store_true",
                       help="the checkpoint of the run's best evaluation (the best member's "
                            "return, averaged over the seeds), which the run keeps in RUN_DIR/best")
    p.add_argument("--episodes", type=int, default=0,
                   help="episodes per member and seed (default: the run's eval_episodes)")
    p.add_argument("--seed", type=int, default=None,
                   help="draw the starts from key(SEED) (default: the run's last evaluation's)")
    p.add_argument("--video", help="write the best member's best episode to this .mp4")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--camera", default="-1", help="camera name or index (-1: the free camera)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    # MuJoCo picks its OpenGL backend once, when first imported: with no display, EGL
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")
    camera = int(args.camera) if args.camera.lstrip("-").isdigit() else args.camera
    try:
        from mjx_cikd.host import playback  # imports MuJoCo: only after MUJOCO_GL is settled

        loaded = playback.load_run(args.run_dir, args.step, args.best, args.episodes)
        if args.video:
            playback.check_video(loaded.trainer.task, args.video, args.height, args.width,
                                  camera)
        episodes = args.episodes or loaded.config.eval_episodes
        played = playback.play(loaded, episodes, playback.start_keys(loaded, args.seed),
                               record=bool(args.video))
        c = loaded.config
        print(f"{c.env} ({loaded.trainer.task.impl}), {c.algo}, K={c.ensemble_size}, "
              f"{'best evaluation, ' if args.best else ''}checkpoint at {loaded.env_steps:,} "
              f"env steps per seed; {episodes} "
              f"deterministic episode(s) per member; return per episode:")
        print(playback.format_table(playback.rows(played)))
        if args.video:
            shot = playback.film(loaded, played, args.video, args.height, args.width, camera)
            p = shot.pick
            print(f"video: {args.video}: seed {p.seed}, member {p.member}, episode {p.episode} "
                  f"(return {p.episode_return:.6g}), {shot.frames} frames at {shot.fps:g} fps")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
