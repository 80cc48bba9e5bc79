"""Switch a world-model file's settings that need no weights, in place or into a new file.

    python scripts/switch_settings.py agents/pretrained/objects-64.pt \\
        --settings '{"surprise_terms": "sightings", "pixel_spread": 1}'

How the shipped ``pretrained`` model came to score violation of expectation as it does: the file's weights are kept
bit for bit; its ``model_config`` takes the settings (checked as
:func:`~tdwgym.agents.models.registry.load_world_model` checks them: a setting that would change the weights, or one
the model does not have, is refused), and its ``meta`` records them under ``switched`` with this command, beside what
was there. The file is written whole to a temporary name and then renamed over the target, so a failure leaves the
old file as it was.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from tdwgym.agents.models.registry import load_world_model, safe_load


def switch(path: Path, settings: dict, out: Path, command: str) -> dict:
    """Write ``path``'s checkpoint with ``settings`` switched to ``out``; returns the new ``model_config``.

    Raises:
        ValueError: ``settings`` are not the model's settings without weights, or ``path`` is not a checkpoint.
    """
    model = load_world_model(path, device="cpu", settings=settings)  # refuses what is not a weightless setting
    state = safe_load(path)
    config = {**state["model_config"], **{k: model.config()[k] for k in settings}}
    meta = dict(state.get("meta") or {})
    meta["switched"] = [*meta.get("switched", []), {"settings": settings, "command": command}]
    new = {**state, "model_config": config, "meta": meta}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(new, tmp)
    tmp.replace(out)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="a world_model.pt (or a shipped model's file)")
    parser.add_argument("--settings", type=json.loads, required=True, help="settings without weights (JSON object)")
    parser.add_argument("--out", type=Path, default=None, help="write here instead of over PATH")
    args = parser.parse_args(argv)
    if not isinstance(args.settings, dict) or not args.settings:
        parser.error(f"--settings must be a non-empty JSON object, got {args.settings!r}")
    command = "python scripts/switch_settings.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        config = switch(args.path, args.settings, args.out or args.path, command)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    print(json.dumps({k: config[k] for k in args.settings}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
