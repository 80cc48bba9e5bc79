"""Render the scenario gallery: short animated GIFs per scenario and level, and impossible/possible twins.

Usage::

    python scripts/make_gallery.py [--out docs/gallery] [--size 160] [--frames 40] [--every 3] [--seed 0]

Writes

* ``<out>/<scenario>_level<k>.gif``: ``frames`` observations of one episode, ``every`` steps apart (real time at
  the default 100 ms per frame), of the seed among ``seed .. seed + seeds - 1`` whose clip moves most. The camera
  is the scene's own and the agent does nothing (no-ops), except in Playroom, whose motion is the
  agent's: there the scripted pusher (the ``seek`` policy) walks up to the nearest object and pushes it.
* ``<out>/impossible_<kind>.gif``: each impossible kind (right) beside its possible twin (left), the same seed
  and scripted static camera, from the start to 60 frames past the event (``make_pairs``); the hidden kinds in
  Occlusion, ``pass_through`` in Collision.

Each GIF is kept under ``--max-kb`` (about 200 KB) by dropping every other frame while it is larger. Re-run it
after any change to the scenarios.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

import tdwgym
from tdwgym.envs import LEVELS
from tdwgym.envs.impossible import HIDDEN_KINDS
from tdwgym.envs.twins import make_pairs
from tdwgym.tools.policies import make_policy

PUSH_SCENARIOS = ("playroom",)
"""Scenarios whose motion is the agent's: their clips are driven by the ``seek`` policy, the others by no-ops."""
IMPOSSIBLE_ENVS = {**{kind: "TDWRoom-Occlusion-v0" for kind in HIDDEN_KINDS}, "pass_through": "TDWRoom-Collision-v0"}
"""Env of each impossible kind's twin clip."""


def motion_seed(env_id: str, level: int, frames: int, every: int, seeds: range) -> int:
    """The seed of ``seeds`` whose clip moves most (mean absolute change between frames, at 48 px): a tower that
    falls rather than one that stands, a ball that rolls within the clip."""
    scores = []
    for s in seeds:
        shots = np.stack(clip(env_id, level, 48, frames, every, s)).astype(np.float32)
        scores.append(float(np.abs(np.diff(shots, axis=0)).mean()) if len(shots) > 1 else 0.0)
    return seeds[int(np.argmax(scores))]


def clip(env_id: str, level: int, size: int, frames: int, every: int, seed: int) -> list[np.ndarray]:
    """``frames`` observations of one episode, ``every`` steps apart (fewer if the episode ends first)."""
    env = gym.make(env_id, level=level, resolution=size)
    scenario = env_id.split("-")[1].lower()
    try:
        obs, _ = env.reset(seed=seed)
        policy = make_policy("seek" if scenario in PUSH_SCENARIOS else "static", env, seed=seed)
        shots = [obs]
        done = False
        while len(shots) < frames and not done:
            for _ in range(every):
                obs, _, terminated, truncated, _ = env.step(policy(obs))
                done = terminated or truncated
                if done:
                    break
            shots.append(obs)
    finally:
        env.close()
    return shots


def twin_clip(kind: str, size: int, seed: int, after: int = 60, every: int = 2) -> list[np.ndarray]:
    """Possible (left) and impossible (right) frames side by side, every ``every``-th frame from the start (the
    object's approach) to ``after`` frames past the event (in Occlusion the hidden object re-emerges, or does not,
    about 25 frames after it)."""
    pairs = []
    for s in range(seed, seed + 20):  # a seed whose scene can stage the kind
        pairs = make_pairs(IMPOSSIBLE_ENVS[kind], s, kinds=kind, resolution=size, post_frames=after)
        if pairs:
            break
    if not pairs:
        raise RuntimeError(f"no seed in {seed}..{seed + 19} stages {kind}")
    pair = pairs[0]
    gap = np.full((size, 4, 3), 255, dtype=np.uint8)
    pairs_of_frames = zip(pair.possible[::every], pair.impossible[::every], strict=True)
    return [np.concatenate([p, gap, q], axis=1) for p, q in pairs_of_frames]


def gif_bytes(frames: list[np.ndarray], ms: int) -> bytes:
    """An endlessly looping GIF of ``frames``, ``ms`` milliseconds each, one palette for all frames."""
    images = [Image.fromarray(f) for f in frames]
    palette = Image.fromarray(np.concatenate(frames[:: max(len(frames) // 8, 1)], axis=0)).quantize(colors=128)
    quantized = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    buf = io.BytesIO()
    quantized[0].save(buf, format="GIF", save_all=True, append_images=quantized[1:], duration=ms, loop=0, optimize=True)
    return buf.getvalue()


def write_gif(path: Path, frames: list[np.ndarray], ms: int, max_kb: float) -> int:
    """Write ``frames`` to ``path``, dropping every other frame (and doubling ``ms``) while over ``max_kb``."""
    data = gif_bytes(frames, ms)
    while len(data) > max_kb * 1024 and len(frames) > 4:
        frames, ms = frames[::2], ms * 2
        data = gif_bytes(frames, ms)
    path.write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "gallery")
    parser.add_argument("--size", type=int, default=160, help="frame size in pixels")
    parser.add_argument("--frames", type=int, default=40, help="frames per scenario clip")
    parser.add_argument("--every", type=int, default=3, help="env steps between two frames of a scenario clip")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--seeds", type=int, default=6, help="scenario clips: the seed of seed..seed+seeds-1 whose clip moves most"
    )
    parser.add_argument("--ms", type=int, default=100, help="milliseconds per frame (3 steps: 0.1 s simulated)")
    parser.add_argument("--max-kb", type=float, default=200.0, help="largest GIF size in KB")
    parser.add_argument("--only", choices=["scenarios", "impossible"], help="render one part only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only != "impossible":
        for env_id in sorted(tdwgym.ENV_IDS):
            scenario = env_id.split("-")[1].lower()
            for level in LEVELS:
                path = args.out / f"{scenario}_level{level}.gif"
                seed = motion_seed(env_id, level, args.frames, args.every, range(args.seed, args.seed + args.seeds))
                frames = clip(env_id, level, args.size, args.frames, args.every, seed)
                print(path, f"seed {seed}", f"{write_gif(path, frames, args.ms, args.max_kb) / 1024:.0f} KB")
    if args.only != "scenarios":
        for kind in IMPOSSIBLE_ENVS:
            path = args.out / f"impossible_{kind}.gif"
            size = write_gif(path, twin_clip(kind, args.size, args.seed), args.ms, args.max_kb)
            print(path, f"{size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
