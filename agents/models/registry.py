"""World models by name: :data:`MODELS`, :func:`register_world_model`, :func:`make_world_model`, and loading
checkpoints (:func:`load_world_model`, :func:`safe_load`, the shipped :data:`PRETRAINED` model)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tdwgym.agents.models.base import WorldModel
from tdwgym.agents.models.icm import ICMModel
from tdwgym.agents.models.latent import LatentPredictor
from tdwgym.agents.models.pixel import PixelPredictor
from tdwgym.agents.models.progress import LearningProgress
from tdwgym.agents.models.rnd import RNDModel

MODELS: dict[str, Callable[..., WorldModel]] = {
    "pixel": PixelPredictor,
    "latent": LatentPredictor,
    "rnd": RNDModel,
    "icm": ICMModel,
}
"""World model classes by variant name (``"progress"`` wraps one of these). Other modules add theirs with
:func:`register_world_model` (:mod:`.recurrent` and :mod:`.context_latent` add the models with memory)."""


def register_world_model(cls: type[WorldModel]) -> type[WorldModel]:
    """Add a :class:`WorldModel` subclass to :data:`MODELS` under its ``name`` (usable as a class decorator)."""
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"world model name {cls.name!r} is taken by {MODELS[cls.name]!r}")
    MODELS[cls.name] = cls
    return cls


def make_world_model(
    name: str,
    frame_shape: tuple[int, int, int],
    action_dim: int,
    context_frames: int | None = None,
    discrete_actions: bool = True,
    device: str | torch.device = "auto",
    progress_base: str = "pixel",
    lag_updates: int = 100,
    **kwargs: Any,
) -> WorldModel:
    """Build a world model by variant name.

    Args:
        name: ``"pixel"``, ``"latent"``, ``"rnd"``, ``"icm"`` or ``"progress"``.
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Action vector length.
        context_frames: ``k``; None takes the model's default (2 for the frame-pair models, 16 for the models
            with memory).
        discrete_actions: Whether actions are one-hot.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ...
        progress_base: Base model of ``"progress"``.
        lag_updates: Snapshot interval of ``"progress"``.
        **kwargs: Model-specific arguments (``width``, ``feature_dim``, ...).

    Returns:
        The model, on its device.
    """
    if name == "progress":
        base = make_world_model(
            progress_base, frame_shape, action_dim, context_frames, discrete_actions, device, **kwargs
        )
        return LearningProgress(base, lag_updates=lag_updates)
    if name not in MODELS:
        raise ValueError(f"unknown world model {name!r}; choose from {[*MODELS, 'progress']}")
    if context_frames is not None:
        kwargs["context_frames"] = context_frames
    return MODELS[name](frame_shape, action_dim, discrete_actions=discrete_actions, device=device, **kwargs)


def world_model_from_config(config: dict, device: str | torch.device = "auto") -> WorldModel:
    """Rebuild a model from :meth:`WorldModel.config`."""
    cfg = dict(config)
    name = cfg.pop("name")
    if name == "progress":
        base = world_model_from_config(cfg["base"], device)
        return LearningProgress(base, lag_updates=cfg["lag_updates"])
    cfg["frame_shape"] = tuple(cfg["frame_shape"])
    return MODELS[name](**cfg, device=device)


SHIPPED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
SHIPPED: dict[str, Path] = {
    "pretrained": SHIPPED_DIR / "objects-64.pt",
    "pretrained-recurrent": SHIPPED_DIR / "recurrent-32.pt",
}
"""The world models shipped with tdwgym, by the name that loads them wherever a model file is taken (``eval
--model``, ``train --world-model``, ``record --world-model``, :func:`load_world_model`): ``pretrained`` is the best
of them on violation of expectation, the ``objects`` model at 64x64; ``pretrained-recurrent`` the pixel
``recurrent`` model at 32x32. Each was made by the command in docs/world_models.md (stored in its ``meta``)."""

PRETRAINED = SHIPPED["pretrained"]
"""The file ``"pretrained"`` names."""


def resolve_model_path(spec: str | os.PathLike) -> Path:
    """A shipped model's name (:data:`SHIPPED`) -> its file; anything else is a path."""
    return SHIPPED.get(str(spec), Path(spec))


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain data, never code."""
    return torch.load(path, map_location=map_location, weights_only=True)


def load_world_model(path: str | os.PathLike, device: str | torch.device = "auto") -> WorldModel:
    """Rebuild a world model from a file, in eval mode: ``"pretrained"`` (the shipped model), a checkpoint of
    ``OnlineLearner.save`` / ``tdwgym train``, or ``tdwgym pretrain``'s ``world_model.pt`` (any dict with
    ``model_config`` and ``model``). Loads with ``torch.load(weights_only=True)``: tensors and plain data only, no
    code runs.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not a world-model checkpoint.
    """
    path = resolve_model_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"world-model checkpoint {path} does not exist")
    try:
        state = safe_load(path)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is "not a checkpoint"
        raise ValueError(f"{path} is not a world-model checkpoint: {exc}") from exc
    if not isinstance(state, dict) or "model_config" not in state or "model" not in state:
        raise ValueError(
            f"{path} is not a world-model checkpoint (expected a dict with 'model_config' and 'model', "
            "as OnlineLearner.save, `tdwgym train` and `tdwgym pretrain` write)"
        )
    model = world_model_from_config(state["model_config"], device=device)
    model.load_state_dict(state["model"])
    return model.eval()
