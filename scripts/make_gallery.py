"""Render the scenario gallery: one strip of frames per scenario and level, for docs/scenarios.md.

Usage::

    python scripts/make_gallery.py [--out docs/gallery] [--size 96] [--frames 4] [--every 12] [--seed 0]

Writes ``<out>/<scenario>_level<k>.png``: ``frames`` frames of one episode (seed ``seed``, no-op actions, the
scene's own camera), ``every`` steps apart, side by side. Re-run it after any change to the scenarios.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from tdwgym.envs import LEVELS

import tdwgym


def strip(env_id: str, level: int, size: int, frames: int, every: int, seed: int) -> np.ndarray:
    """``frames`` observations of one episode, ``every`` steps apart, concatenated left to right."""
    env = gym.make(env_id, level=level, resolution=size)
    try:
        obs, _ = env.reset(seed=seed)
        shots = [obs]
        while len(shots) < frames:
            for _ in range(every):
                obs, *_ = env.step(0)
            shots.append(obs)
    finally:
        env.close()
    gap = np.full((size, 2, 3), 255, dtype=np.uint8)
    return np.concatenate([x for shot in shots for x in (shot, gap)][:-1], axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "gallery")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--every", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for env_id in sorted(tdwgym.ENV_IDS):
        scenario = env_id.split("-")[1].lower()
        for level in LEVELS:
            path = args.out / f"{scenario}_level{level}.png"
            imageio.imwrite(path, strip(env_id, level, args.size, args.frames, args.every, args.seed))
            print(path)


if __name__ == "__main__":
    main()
