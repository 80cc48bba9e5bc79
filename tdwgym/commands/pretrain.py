"""``tdwgym pretrain``: pretrain a world model offline on clips from the scenario curriculum
(:func:`tdwgym.agents.pretraining.pretrain`); one option per :class:`~tdwgym.agents.pretraining.PretrainConfig`
field."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from tdwgym.commands.ray_option import add_ray_argument, ray_address
from tdwgym.commands.values import json_object
from tdwgym.util.files import check_output_folder, read_json

__all__ = ["EXTRA", "HELP", "add_parser", "run"]

EXTRA = "agents"
"""The pip extra the command needs."""

HELP = "pretrain a world model offline on clips from the scenario curriculum"
"""The command's line in ``tdwgym --help``."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym pretrain`` (one option per :class:`PretrainConfig` field, with its real default)."""
    from tdwgym.agents import pretraining
    from tdwgym.agents.pretraining import PretrainConfig

    p = subparsers.add_parser(
        "pretrain",
        help=HELP,
        description=pretraining.__doc__.split("\n\n")[0],
    )
    defaults = PretrainConfig()
    for f in dataclasses.fields(PretrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        doc = " ".join(_field_doc(f.name).split()).replace("%", "%%")
        if isinstance(default, bool):
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=f"{doc} (default: {default})"
            )
        elif f.name == "workers":
            doc += " With --ray: Ray Train workers (data-parallel, each with one clip worker of its own); the global "
            doc += "--batch-size must be a multiple of it"
            p.add_argument(flag, type=int, default=default, help=f"{doc} (default: {default})")
        elif f.name in ("model_kwargs", "env_kwargs"):
            p.add_argument(flag, type=json_object, default={}, help=f"{doc} (default: {{}})")
        else:
            kind = type(default) if default is not None else str
            p.add_argument(flag, type=kind, default=default, help=f"{doc} (default: {default})")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue a pretraining run from its newest checkpoint with its own settings (only --total-steps, "
        "--workers and --device from the command line)",
    )
    add_ray_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _field_doc(name: str) -> str:
    """The docstring under a :class:`PretrainConfig` field (read from the source once)."""
    import ast
    import inspect

    from tdwgym.agents.pretraining import PretrainConfig

    docs: dict[str, str] = {}
    tree = ast.parse(inspect.getsource(PretrainConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for a, b in zip(body, body[1:], strict=False):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            docs[a.target.id] = str(b.value.value)  # type: ignore[union-attr]
    return docs.get(name, "")


def _check_env_kwargs(cfg: Any) -> None:
    """Refuse ``--env-kwargs`` that name no env of the mix, or that an env does not take, before anything runs.

    Raises:
        UsageError: One line naming the bad name or argument and the valid ones.
    """
    from tdwgym.agents.pretraining_clips import mix_env_kwargs
    from tdwgym.commands.door import check_env
    from tdwgym.util.errors import UsageError

    try:
        by_id = mix_env_kwargs(cfg.envs, cfg.env_kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for env_id, kwargs in by_id.items():
        check_env(env_id, kwargs)


def run(args: argparse.Namespace) -> int:
    """``tdwgym pretrain``: build the config from the options and train."""
    from tdwgym.agents.pretraining import PretrainConfig, pretrain

    cfg = PretrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainConfig)})
    if args.resume:
        cfg = dataclasses.replace(cfg, out=args.resume)
    check_output_folder(cfg.out)
    if args.resume:
        saved = Path(cfg.out) / "pretrain.json"
        if not saved.is_file():
            raise ValueError(f"--resume {args.resume}: {saved} not found (not a `tdwgym pretrain` run folder)")
        cfg = PretrainConfig(
            **{
                **read_json(saved, "it holds the run's settings: restore it, or start a new run in another --out"),
                "total_steps": cfg.total_steps,
                "workers": cfg.workers,
                "device": cfg.device,
            }
        )
    from tdwgym.agents.models import check_model_kwargs
    from tdwgym.util.locks import run_lock

    check_model_kwargs(cfg.model, cfg.model_kwargs)
    _check_env_kwargs(cfg)
    with run_lock(cfg.out, option="--resume" if args.resume else "--out"):
        if args.ray is not None:
            from tdwgym.agents.pretraining_ray import pretrain_on_ray  # imports ray only here

            summary = pretrain_on_ray(cfg, address=ray_address(args.ray), resume=args.resume is not None)
        else:
            summary = pretrain(cfg, resume=args.resume is not None, progress=not args.no_progress)
    last = summary["history"][-1] if summary["history"] else {}
    copy_last = last.get("test_id/copy_last", float("nan"))
    baseline = f" (copy-last {copy_last:.4g})" if copy_last == copy_last else ""  # NaN: frames are not pixels
    workers = f" with {summary['ranks']} Ray Train workers" if summary.get("ranks", 1) > 1 else ""
    print(
        f"pretrained {cfg.model}{workers} on {summary['frames']} frames in {summary['wall_time_s']:.0f} s "
        f"({summary['frames_per_s']:.0f} fr/s; compute alone {summary['compute_frames_per_s']:.0f} fr/s, "
        f"ratio {summary['loader_ratio']:.2f}); test_id loss {last.get('test_id/loss', float('nan')):.4g}"
        f"{baseline}; model: {Path(cfg.out) / 'world_model.pt'}"
    )
    return 0
