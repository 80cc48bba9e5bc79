"""World models by name: :data:`MODELS`, :func:`register_world_model`, :func:`make_world_model`, and loading
checkpoints (:func:`load_world_model`, :func:`safe_load`, the shipped :data:`PRETRAINED` model)."""

from __future__ import annotations

import inspect
import math
import os
import typing
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
from tdwgym.util.arguments import type_mismatch

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


MAX_MODEL_SIZE = 4096
"""The largest integer a world model's argument may take (widths, feature sizes, layers, frames): beyond it a model
does not fit in memory, and no setting of tdwgym comes near it."""
_RESERVED = ("self", "frame_shape", "action_dim", "discrete_actions", "device")


def check_model_kwargs(name: str, kwargs: dict[str, Any], option: str = "--model-kwargs") -> None:
    """Check a world model's arguments against the signature they feed, before the model is built: known names,
    their types, integers within 1 .. :data:`MAX_MODEL_SIZE` and numbers finite and not negative.

    Raises:
        ValueError: One line naming the argument, what it should be and the valid names.
    """
    if not isinstance(kwargs, dict):
        raise ValueError(f"{option}: expected a JSON object of {name}'s arguments, got {kwargs!r:.80}")
    if name == "progress":
        base = kwargs.get("progress_base", "pixel")
        if base not in MODELS:
            raise ValueError(f"{option}: progress_base {base!r} is not one of {list(MODELS)}")
        rest = {k: v for k, v in kwargs.items() if k not in ("progress_base", "lag_updates")}
        check_model_kwargs(base, rest, option)
        if "lag_updates" in kwargs:
            _check_value(name, "lag_updates", int, kwargs["lag_updates"], option)
        return
    if name not in MODELS:
        return  # an unknown name is the caller's to refuse, in its own words
    init = getattr(MODELS[name], "__init__", MODELS[name])
    params = {k: p for k, p in inspect.signature(init).parameters.items() if k not in _RESERVED}
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate: names are still checked
        hints = {}
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValueError(
            f"{option}: the {name} model takes no {', '.join(map(repr, unknown))}; its arguments are "
            f"{', '.join(params)}"
        )
    for key, value in kwargs.items():
        _check_value(name, key, hints.get(key), value, option)


def _check_value(name: str, key: str, hint: Any, value: Any, option: str) -> None:
    shown = f"{value!r:.40}"
    wants = type_mismatch(hint, value)
    if wants is not None:
        raise ValueError(f"{option}: {key} of the {name} model must be {wants}, got {shown}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    allowed = (hint, *typing.get_args(hint))
    measure = float in allowed and int not in allowed  # a float setting given as an integer (0 pixels) is a number
    if isinstance(value, int) and not measure and not 1 <= value <= MAX_MODEL_SIZE:
        raise ValueError(f"{option}: {key} of the {name} model must be 1 .. {MAX_MODEL_SIZE}, got {shown}")
    if (isinstance(value, float) or measure) and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{option}: {key} of the {name} model must be a finite number >= 0, got {shown}")


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
    check_model_kwargs(name, {**kwargs, **({} if name != "progress" else {"progress_base": progress_base})})
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
    "pretrained-playroom": SHIPPED_DIR / "objects-playroom-64.pt",
}
"""The world models shipped with tdwgym, by the name that loads them wherever a model file is taken (``eval
--model``, ``train --world-model``, ``record --world-model``, :func:`load_world_model`): ``pretrained`` is the best
of them on violation of expectation, the ``objects`` model at 64x64; ``pretrained-recurrent`` the pixel
``recurrent`` model at 32x32; ``pretrained-playroom`` the ``objects`` model fine-tuned on Playroom's moving camera
(``tdwgym pretrain --init pretrained``), the one to start an ``objects`` curiosity reward from. Each was made by
the command in docs/world_models.md (stored in its ``meta``)."""

PRETRAINED = SHIPPED["pretrained"]
"""The file ``"pretrained"`` names."""


def resolve_model_path(spec: str | os.PathLike) -> Path:
    """A shipped model's name (:data:`SHIPPED`) -> its file; anything else is a path."""
    return SHIPPED.get(str(spec), Path(spec))


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain data, never code."""
    return torch.load(path, map_location=map_location, weights_only=True)


def load_world_model(
    path: str | os.PathLike, device: str | torch.device = "auto", settings: dict[str, Any] | None = None
) -> WorldModel:
    """Rebuild a world model from a file, in eval mode: ``"pretrained"`` (the shipped model), a checkpoint of
    ``OnlineLearner.save`` / ``tdwgym train``, or ``tdwgym pretrain``'s ``world_model.pt`` (any dict with
    ``model_config`` and ``model``). Loads with ``torch.load(weights_only=True)``: tensors and plain data only, no
    code runs. ``settings``: model settings over the file's that need no weights of their own (e.g. the ``objects``
    model's ``{"ego_tracked": true}``), switched at load on the file's weights.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not a world-model checkpoint, or ``settings`` are not the model's or would change
            its weights.
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
    if not settings:
        model = world_model_from_config(state["model_config"], device=device)
        model.load_state_dict(state["model"])
        return model.eval()
    try:
        model = world_model_from_config({**state["model_config"], **settings}, device=device)
        model.load_state_dict(state["model"])
    except (TypeError, RuntimeError) as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise ValueError(f"{settings} are not settings of {path.name} without weights: {first}") from None
    return model.eval()
