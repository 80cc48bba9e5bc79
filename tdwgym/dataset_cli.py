"""``tdwgym dataset``: the command line of :mod:`tdwgym.dataset` (locally, or on Ray with ``--ray``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdwgym.dataset import SPLITS, DatasetConfig, generate
from tdwgym.options import add_ray_argument, ray_address

__all__ = ["add_dataset_parser", "config_from_args", "dataset_command", "main"]


def add_dataset_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dataset`` sub-command to an argparse ``subparsers``; its handler is :func:`dataset_command`."""
    parser = subparsers.add_parser(
        "dataset",
        help="write a labeled HDF5 video dataset",
        description="Write one HDF5 file per episode (RGB, depth, segmentation, boxes, object states, camera, "
        "collisions, labels). Rerunning the same command resumes; see docs/dataset.md.",
    )
    parser.add_argument("--scenario", default="occlusion", help="scenario name, e.g. occlusion (default)")
    parser.add_argument("--split", default="train", help=f"one of {', '.join(SPLITS)} (default train)")
    parser.add_argument("--level", type=int, default=0, help="difficulty level 0-3 (default 0)")
    parser.add_argument("--impossible", default=None, help="impossible-event kind (default: possible events)")
    parser.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    parser.add_argument("--frames", type=int, default=32, help="frames per episode (default 32)")
    parser.add_argument("--resolution", type=int, default=64, help="frame size in pixels (default 64)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--policy",
        default="random",
        help="random (default), orbit, static, seek, or the path of a stable-baselines3 PPO .zip",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--backend", default=None, help="bullet or tdw (default $TDWGYM_BACKEND or bullet)")
    parser.add_argument("--action-type", default="discrete", help="discrete (default) or continuous")
    parser.add_argument(
        "--compression",
        default="gzip",
        type=lambda s: None if s == "none" else s,
        help="RGB and segmentation compression: gzip (default), lzf (bytes vary between runs) or none",
    )
    parser.add_argument(
        "--depth-compression",
        default=None,
        type=lambda s: None if s == "none" else s,
        help="depth compression: none (default), gzip or lzf (bytes vary between runs)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_ray_argument(parser)
    parser.set_defaults(func=dataset_command)
    return parser


def config_from_args(args: argparse.Namespace) -> DatasetConfig:
    """A :class:`DatasetConfig` from parsed ``dataset`` arguments."""
    return DatasetConfig(
        out=args.out,
        scenario=args.scenario,
        split=args.split,
        level=args.level,
        impossible=args.impossible,
        episodes=args.episodes,
        frames=args.frames,
        resolution=args.resolution,
        policy=args.policy,
        seed=args.seed,
        backend=args.backend,
        action_type=args.action_type,
        compression=args.compression,
        depth_compression=args.depth_compression,
        workers=args.workers,
    )


def dataset_command(args: argparse.Namespace) -> int:
    """Handler of ``tdwgym dataset``: generate, then print a one-line summary. Returns the exit status."""
    config = config_from_args(args)
    start = time.perf_counter()
    if getattr(args, "ray", None) is not None:
        from tdwgym.distributed import generate_on_ray  # imports ray only when called

        paths = generate_on_ray(config, address=ray_address(args.ray), progress=not args.no_progress)
    else:
        paths = generate(config, progress=not args.no_progress)
    print(f"{len(paths)} episodes of {config.frames} frames in {config.out} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tdwgym.dataset_cli ...``: the ``dataset`` sub-command on its own."""
    parser = argparse.ArgumentParser(prog="python -m tdwgym.dataset_cli")
    sub = parser.add_subparsers(dest="command", required=True)
    add_dataset_parser(sub)
    args = parser.parse_args(["dataset", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except ValueError as exc:
        parser.error(str(exc))
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
