"""``tdwgym eval``: the evaluation report of a training run or a world-model checkpoint, locally or on Ray
(:func:`tdwgym.agents.evaluate.evaluate`)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdwgym.commands.config_options import Flag, add_config_arguments, config_kwargs, env_kwargs_with
from tdwgym.commands.door import check_default_output, check_env
from tdwgym.commands.ray_option import add_ray_argument, ray_address
from tdwgym.commands.trust_option import add_trust_pickles_argument, trusting_pickles
from tdwgym.commands.values import nonnegative_int, positive_int
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_folder
from tdwgym.util.locks import run_lock

__all__ = ["EXTRA", "HELP", "EvalCommand", "add_parser", "run"]

EXTRA = "agents"
"""The pip extra the command needs."""

HELP = "evaluate a world model: prediction quality, violation of expectation, physics probes"
"""The command's line in ``tdwgym --help``."""


@dataclass
class EvalCommand:
    """What ``tdwgym eval`` evaluates, where, and on what (the sizes are :class:`EvalSettings` fields)."""

    run: str | None = None
    """A training run folder (tdwgym train's output): its latest world model, env and agent."""
    model: str | None = None
    """A world-model checkpoint file (world_model.pt), a shipped model ('pretrained': the objects model;
    'pretrained-recurrent': the pixel one; 'pretrained-playroom': the objects model fine-tuned on Playroom), or
    module:attr / file.py:attr (any model with surprise(frames), docs/world_models.md)."""
    export_sets: str | None = None
    """Write the frozen VoE pairs and probe clips here instead (no model needed; frame size from --env-kwargs
    resolution, default 64) so others can report numbers on the same clips."""
    env_id: str | None = None
    """The env to evaluate on (default: the run's env, else TDWRoom-Occlusion-v0)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env arguments over the run's own."""
    quick: bool = False
    """Tiny settings (seconds), for smoke tests; the size options given still apply."""
    out: str | None = None
    """Output folder (default: RUN/eval, or eval beside the checkpoint)."""
    device: str = "auto"
    """Torch device: auto (CUDA when available), cpu, cuda."""
    progress_bar: bool = True
    """Show progress on stderr (a bar on a terminal, plain lines in a log)."""
    workers: int | None = None
    """Processes that evaluate the episodes (default: one per idle core, i.e. cores less the load average, at most
    4; 1 on CUDA; 1 runs them in this process); the report does not depend on it. Not with --ray."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym eval`` to an argparse sub-parser collection (sets ``func``)."""
    from tdwgym.agents.evaluate import EvalSettings

    p = subparsers.add_parser(
        "eval",
        help=HELP,
        description="Write report.json, report.md and PNG plots evaluating a world model (and its agent): "
        "give one of --run, --model, --export-sets.",
    )
    names = add_config_arguments(
        p,
        EvalCommand,
        flags={
            "run": Flag(metavar="RUN_DIR"),
            "model": Flag(metavar="MODEL"),
            "out": Flag(metavar="DIR"),
            "workers": Flag(type=positive_int),
        },
        level_split=("level",),  # the evaluation draws from the held-out splits itself
    )
    add_ray_argument(p)
    add_trust_pickles_argument(p)
    group = p.add_argument_group("sizes of the evaluation (EvalSettings)")
    settings = add_config_arguments(
        group,
        EvalSettings,
        flags={
            "frames": Flag("--steps", type=positive_int),
            "seed": Flag(type=nonnegative_int),
            **{
                n: Flag(type=positive_int)
                for n in ("episodes", "horizon", "voe_pairs", "voe_post_frames", "probe_clips", "probe_frames")
            },
            **{n: Flag(type=nonnegative_int) for n in ("exploration_episodes", "exploration_steps")},
        },
    )
    p.set_defaults(func=run, config_fields=names, settings_fields=settings)
    return p


def run(args: argparse.Namespace) -> int:
    """``tdwgym eval``: the evaluation report of a run or world-model checkpoint (locally or on Ray)."""
    with trusting_pickles(args):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from tdwgym.agents.device import check_device
    from tdwgym.agents.evaluate import EvalConfig, EvalSettings, evaluate, export_eval_sets
    from tdwgym.agents.rundir import RunDir

    cmd = EvalCommand(**config_kwargs(args, args.config_fields))
    sources = [f"--{n.replace('_', '-')}" for n in ("run", "model", "export_sets") if getattr(cmd, n) is not None]
    if len(sources) != 1:
        raise UsageError(f"give exactly one of --run, --model, --export-sets (got {', '.join(sources) or 'none'})")
    if cmd.workers is not None and getattr(args, "ray", None) is not None:
        raise UsageError("--workers: not with --ray (Ray runs as many episodes at once as the cluster has CPUs)")
    settings = EvalSettings.quick() if cmd.quick else EvalSettings()
    settings = dataclasses.replace(settings, **config_kwargs(args, args.settings_fields))
    env_kwargs = env_kwargs_with(cmd.env_kwargs, args)
    if cmd.export_sets is not None:
        check_output_folder(cmd.export_sets, "--export-sets")
        env_kwargs = dict(env_kwargs)
        resolution = int(env_kwargs.pop("resolution", 64))
        env = cmd.env_id or "TDWRoom-Occlusion-v0"
        check_env(env, env_kwargs)
        index = export_eval_sets(cmd.export_sets, env, env_kwargs, resolution, settings, progress=cmd.progress_bar)
        print(f"evaluation sets: {index}")
        return 0
    if cmd.run is not None:
        run_dir = RunDir(cmd.run).require()
        if run_dir.world_model_path() is None:
            raise UsageError(f"--run {cmd.run}: the run holds no world model (world_model.pt in its checkpoints)")
        env = cmd.env_id or run_dir.env_id or "TDWRoom-Occlusion-v0"
        check_env(env, {**(run_dir.env_kwargs if env == run_dir.env_id else {}), **env_kwargs})
    else:
        from tdwgym.agents.external import is_external_spec
        from tdwgym.agents.models import SHIPPED, resolve_model_path

        if not is_external_spec(cmd.model) and not resolve_model_path(cmd.model).exists():
            raise UsageError(
                f"--model {cmd.model}: no such file; give a world_model.pt, a shipped model "
                f"({', '.join(SHIPPED)}) or module:attr"
            )
        if cmd.env_id is not None or env_kwargs:
            check_env(cmd.env_id or "TDWRoom-Occlusion-v0", env_kwargs)
    out = check_output_folder(cmd.out) if cmd.out is not None else _default_out(cmd)
    check_device(cmd.device, "tdwgym eval")
    config = EvalConfig(
        run_dir=cmd.run,
        model_path=cmd.model,
        env_id=cmd.env_id,
        env_kwargs=env_kwargs,
        out=str(out),
        settings=settings,
        device=cmd.device,
        progress=cmd.progress_bar,
        workers=cmd.workers,
    )
    with run_lock(out):
        if args.ray is not None:
            from tdwgym.agents.evaluation.on_ray import evaluate_on_ray

            evaluate_on_ray(config, address=ray_address(args.ray), progress=cmd.progress_bar)
        else:
            evaluate(config)
    return 0


def _default_out(cmd: EvalCommand) -> Path:
    """The report's folder without ``--out`` (beside the run or checkpoint), checked to be writable and not a link
    out of the run: else one line saying to pass ``--out`` (a run or model on a read-only mount)."""
    from tdwgym.agents.evaluation.plan import default_out_dir

    source = f"--run {cmd.run}" if cmd.run is not None else f"--model {cmd.model}"
    return check_default_output(
        default_out_dir(cmd.run, cmd.model),
        cmd.run,
        f"{source}: its report",
        "pass --out DIR to write it elsewhere",
        "pass --out DIR to write elsewhere",
    )
