"""``tdwgym dataset``: write a labeled HDF5 video dataset with :mod:`tdwgym.tools.dataset` (locally, or on Ray with
``--ray``).

Its options are :class:`~tdwgym.tools.dataset.DatasetConfig`'s fields (one each, with the real default), in the
shared vocabulary: ``--env`` takes an id or a short name.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tdwgym.commands.config_options import Flag, add_config_arguments, config_kwargs
from tdwgym.commands.door import check_env
from tdwgym.commands.ray_option import add_ray_argument, ray_address
from tdwgym.commands.trust_option import add_trust_pickles_argument, trusting_pickles
from tdwgym.commands.values import nonnegative_int, positive_int
from tdwgym.registration import resolve_env_id, short_names
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_folder

__all__ = ["EXTRA", "HELP", "add_parser", "config_from_args", "dataset_flags", "run", "scenario_name"]

EXTRA = None
"""The pip extra the command needs (``--ray`` needs ``tdwgym[ray]``; it says so when it is missing)."""

HELP = "write a labeled HDF5 video dataset"
"""The command's line in ``tdwgym --help``."""


def scenario_name(text: str) -> str:
    """argparse type: an env id or short name -> the dataset's scenario name (``occlusion``)."""
    from tdwgym.tools.dataset.config import scenarios

    try:
        env = resolve_env_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    names = {v: k for k, v in short_names().items()}
    if env not in names or names[env] not in scenarios():
        raise argparse.ArgumentTypeError(f"{text!r} is not a tdwgym scenario; valid are {', '.join(scenarios())}")
    return names[env]


def _compression(text: str) -> str | None:
    return None if text == "none" else text


def dataset_flags() -> dict[str, Flag]:
    """How :class:`~tdwgym.tools.dataset.DatasetConfig`'s fields appear on the command line beyond their names and
    types."""
    from tdwgym.sim.backends import BACKENDS
    from tdwgym.tools.dataset.config import COMPRESSIONS, LEVELS, SPLITS

    return {
        "scenario": Flag(
            "--env",
            type=scenario_name,
            metavar="ENV",
            help="The scenario: a short name (occlusion, collision, gravity, stability, playroom) or its env id.",
        ),
        "out": Flag(metavar="DIR"),
        "split": Flag(choices=SPLITS),
        "level": Flag(choices=LEVELS),
        "episodes": Flag(type=positive_int),
        "frames": Flag("--steps", type=positive_int),
        "resolution": Flag(type=positive_int),
        "workers": Flag(type=positive_int),
        "seed": Flag(type=nonnegative_int),
        "backend": Flag(choices=list(BACKENDS)),
        "action_type": Flag(choices=("discrete", "continuous")),
        "compression": Flag(type=_compression, choices=COMPRESSIONS, metavar="{gzip,lzf,none}"),
        "depth_compression": Flag(type=_compression, choices=COMPRESSIONS, metavar="{gzip,lzf,none}"),
    }


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dataset`` sub-command to an argparse ``subparsers``; its handler is :func:`run`."""
    from tdwgym.tools.dataset.config import DatasetConfig

    flags = dataset_flags()
    parser = subparsers.add_parser(
        "dataset",
        help=HELP,
        description="Write one HDF5 file per episode (RGB, depth, segmentation, boxes, object states, camera, "
        "collisions, labels). Rerunning the same command resumes; see docs/dataset.md.",
    )
    names = add_config_arguments(parser, DatasetConfig, flags=flags, level_split=())
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_ray_argument(parser)
    add_trust_pickles_argument(parser)
    parser.set_defaults(func=run, config_fields=names)
    return parser


def config_from_args(args: argparse.Namespace) -> Any:
    """A :class:`~tdwgym.tools.dataset.DatasetConfig` from parsed ``dataset`` arguments.

    Raises:
        UsageError: A bad value (one line naming it and the valid ones).
    """
    from tdwgym.tools.dataset.config import DatasetConfig, _env_kwargs

    given = config_kwargs(args, args.config_fields)
    check_output_folder(given["out"])
    try:
        config = DatasetConfig(**given)
        kwargs = _env_kwargs(config)  # the env arguments of every episode, with a stored policy's
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    check_env(config.env_id, kwargs)
    return config


def run(args: argparse.Namespace) -> int:
    """Handler of ``tdwgym dataset``: generate, then print a one-line summary. Returns the exit status."""
    with trusting_pickles(args):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from tdwgym.util.locks import run_lock

    config = config_from_args(args)
    with run_lock(config.out):
        return _generate(args, config)


def _generate(args: argparse.Namespace, config: Any) -> int:
    from tdwgym.tools.dataset.writer import generate

    start = time.perf_counter()
    if getattr(args, "ray", None) is not None:
        from tdwgym.tools.cluster import generate_on_ray  # imports ray only when called

        paths = generate_on_ray(config, address=ray_address(args.ray), progress=not args.no_progress)
    else:
        paths = generate(config, progress=not args.no_progress)
    print(f"{len(paths)} episodes of {config.frames} frames in {config.out} ({time.perf_counter() - start:.1f} s)")
    return 0
