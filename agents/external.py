"""Anyone's video model through tdwgym's benchmark: ``tdwgym eval --model module:attr`` (or ``path/file.py:attr``).

The protocol is two methods on any Python object (a V-JEPA checkpoint behind a wrapper, a video diffusion model, a
plain PyTorch module); nothing of tdwgym's :class:`~tdwgym.agents.models.WorldModel` is needed:

``surprise(frames) -> scores``
    ``frames``: one clip, ``(T, H, W, 3)`` uint8 RGB from its first frame on. Returns ``T`` or ``T - 1`` per-frame
    scores (higher = more surprising); with ``T`` the first is dropped. The violation-of-expectation section
    compares the twins of each pair on these scores from the event frame on.
``predict(context, horizon) -> frames`` (optional)
    ``context``: ``(k, H, W, 3)`` uint8, the true frames so far; returns ``(horizon, H, W, 3)`` floats in [0, 1],
    the model's next frames. The prediction-quality and physical-law-probe sections use it; without it they report
    the baselines only.

Optional attributes: ``resolution`` (int, the square frame size it wants; default 64), ``context_frames``
(frames of context it is given in the probes; default 4) and ``passes`` (the render passes it reads, of ``"rgb"``,
``"segmentation"``, ``"depth"``; default RGB only): a model that names ``"segmentation"`` or ``"depth"`` gets them as
keyword arguments, ``surprise(frames, segmentation=(T, H, W) int32 object ids, depth=(T, H, W) float32 metres)``, so
object-centric models can be scored on the same pairs. RGB-only models are called as before.
``attr`` may name the object or a class / factory
called with no arguments. See ``examples/external_model.py`` for a complete one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tdwgym.agents.models import Transitions, WorldModel
from tdwgym.sim.backends.base import PASSES

__all__ = ["ExternalModel", "is_external_spec", "load_external"]


def is_external_spec(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names an object (``module:attr``, ``file.py:attr``) rather than a checkpoint file."""
    text = str(spec)
    return ":" in text and not Path(text).exists() and text.rsplit(":", 1)[1].isidentifier()


class ExternalModel(WorldModel):
    """A model outside tdwgym, behind the protocol of this module, wearing the ``WorldModel`` interface the
    evaluation reads (frame size, name). It is scored on whole clips (:meth:`clip_scores`) and rolled out with
    its own ``predict``; it has no training loss.

    Args:
        obj: The object with ``surprise`` (and optionally ``predict``).
        spec: Where it came from (shown in reports).
    """

    name = "external"

    def __init__(self, obj: Any, spec: str = "") -> None:
        res = int(getattr(obj, "resolution", 64))
        super().__init__((3, res, res), 1, int(getattr(obj, "context_frames", 4)), True, "cpu")
        self.obj, self.spec = obj, spec
        passes = tuple(getattr(obj, "passes", ("rgb",)))
        unknown = [p for p in passes if p not in PASSES]
        if unknown:
            raise ValueError(f"{spec}.passes names {unknown[0]!r}; valid passes are {list(PASSES)}")
        self.passes = ("rgb", *(p for p in passes if p != "rgb"))

    @property
    def predicts(self) -> bool:
        """Whether the object has ``predict``."""
        return callable(getattr(self.obj, "predict", None))

    def clip_scores(self, frames: np.ndarray, **passes: np.ndarray) -> np.ndarray:
        """``T - 1`` per-transition scores of a ``(T, H, W, 3)`` clip (entry ``t`` scores frame ``t + 1``); of the
        other ``passes`` given, those the object asks for (:attr:`passes`) reach it as keyword arguments.

        Raises:
            ValueError: The object returned the wrong number of scores or non-finite ones, or a pass it asks for
                was not given.
        """
        wanted = [p for p in self.passes if p != "rgb"]
        missing = [p for p in wanted if p not in passes]
        if missing:
            raise ValueError(f"{self.spec} reads the {missing[0]} pass, which these clips do not carry")
        extra = {p: np.ascontiguousarray(passes[p]) for p in wanted}
        scores = np.asarray(self.obj.surprise(np.ascontiguousarray(frames), **extra), dtype=np.float64).reshape(-1)
        t = len(frames)
        if len(scores) == t:
            scores = scores[1:]
        if len(scores) != t - 1 or not np.all(np.isfinite(scores)):
            raise ValueError(
                f"{self.spec}.surprise() must return {t} or {t - 1} finite scores for a {t}-frame clip, got "
                f"{len(scores)}"
            )
        return scores

    def rollout(self, context: np.ndarray, horizon: int) -> np.ndarray:
        """``(horizon, H, W, 3)`` floats in [0, 1] predicted after ``context`` ``(k, H, W, 3)`` uint8."""
        out = np.asarray(self.obj.predict(np.ascontiguousarray(context), int(horizon)), dtype=np.float32)
        if out.shape != (horizon, *context.shape[1:]):
            raise ValueError(
                f"{self.spec}.predict() must return shape {(horizon, *context.shape[1:])}, got {out.shape}"
            )
        return np.clip(out, 0.0, 1.0)

    def compute_loss(self, batch: Transitions):  # noqa: D102
        raise TypeError(f"{self.spec} is an external model: it is evaluated, not trained by tdwgym")

    def prepare(self, context, action, past_actions=None, state=None) -> object:  # noqa: D102
        raise TypeError(f"{self.spec} is an external model: it is scored on whole clips, not step by step")

    def config(self) -> dict:  # noqa: D102
        return {"name": self.name, "spec": self.spec, "frame_shape": list(self.frame_shape)}


def load_external(spec: str) -> ExternalModel:
    """Import ``module:attr`` or ``path/file.py:attr`` and wrap the object.

    Raises:
        ValueError: The module or attribute does not exist, or the object has no ``surprise`` method.
    """
    where, attr = spec.rsplit(":", 1)
    if where.endswith(".py") and not Path(where).is_file():
        raise ValueError(f"--model {spec!r}: no file {where}")
    try:
        if where.endswith(".py"):
            path = Path(where)
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(where)
    except ImportError as exc:
        raise ValueError(f"--model {spec!r}: cannot import {where!r} ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - the user's module raised while it was imported
        import traceback

        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(Path(where).name)]
        line = f" (line {frames[-1].lineno})" if frames and where.endswith(".py") else ""
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"--model {spec!r}: importing {where}{line} raised {type(exc).__name__}: {reason}; fix that module"
        ) from None
    if not hasattr(module, attr):
        raise ValueError(f"--model {spec!r}: {where} has no attribute {attr!r}")
    obj = getattr(module, attr)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "surprise")):
        obj = obj()
    if not callable(getattr(obj, "surprise", None)):
        raise ValueError(
            f"--model {spec!r}: the object has no surprise(frames) method (the protocol: docs/world_models.md)"
        )
    with torch.no_grad():
        return ExternalModel(obj, spec)
