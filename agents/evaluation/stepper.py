"""Stepping a world model along an episode as it is recorded: its surprise and what it predicted at every step
(:class:`ModelStepper`; ``tdwgym record`` draws its panels from it), and the picture of an object model's
expectations (:func:`draw_object_boxes`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.models import Stream, WorldModel

__all__ = ["ModelStepper", "draw_object_boxes"]


def _chw(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(frame, dtype=np.uint8).transpose(2, 0, 1))


class ModelStepper:
    """Steps a world model along an episode: surprise and (pixel models) the predicted frame at every step.

    A :class:`~tdwgym.agents.models.Stream` carries the model's context and memory, as in the curiosity wrapper:
    the first frame fills the ``k``-frame context, and a model with memory keeps it for the whole episode.
    Observations of another size than the model's frames are area-resized to them
    (:func:`~tdwgym.agents.models.resize_frames`), as in training; :attr:`seen` is the latest observation as the
    model saw it.
    """

    def __init__(self, model: WorldModel) -> None:
        self.model = model.eval()
        self.stream: Stream | None = None
        self._seen: np.ndarray | None = None
        self._rgb: np.ndarray | None = None
        self.passes: tuple[str, ...] = tuple(getattr(model, "passes", ("rgb",)))
        """The render passes the model reads (a recorder hands them over as a dict)."""
        self.draws_boxes = callable(getattr(model, "predicted_objects", None))
        """Whether :meth:`step` returns a picture of the object boxes seen and expected (object models)."""

    def _frame(self, obs: Any) -> np.ndarray:
        """The model's frame of one observation: ``(H, W, 3)`` uint8, or a dict of passes (``rgb``,
        ``segmentation``, ``depth``) for models that read more than RGB."""
        if isinstance(obs, dict):
            extra = {k: np.asarray(obs[k])[None] for k in ("segmentation", "depth") if k in obs}
            return self.model.frames_from(np.asarray(obs["rgb"])[None], **extra)[0].numpy()
        return self.model.frames_from(np.asarray(obs)[None])[0].numpy()

    @property
    def seen(self) -> np.ndarray:
        """The latest observation (of :meth:`reset` or :meth:`step`) as the model saw it, ``(h, w, 3)`` uint8 (its
        RGB for models of other passes)."""
        assert self._seen is not None, "reset() first"
        if self.draws_boxes:
            return self._rgb  # type: ignore[return-value]
        return self._seen.transpose(1, 2, 0)

    def reset(self, obs: Any) -> None:
        """Start an episode at ``obs`` (``(H, W, 3)`` uint8, or a dict of passes)."""
        self._seen = self._frame(obs)
        self._rgb = np.asarray(obs["rgb"] if isinstance(obs, dict) else obs)
        self.stream = Stream(self.model, torch.from_numpy(self._seen)[None])

    @torch.no_grad()
    def step(self, action: Any, obs: Any, action_space: gym.Space) -> tuple[float, np.ndarray | None]:
        """Score the transition to ``obs`` after ``action``.

        Returns:
            The surprise and the predicted frame (``(H, W, 3)`` floats in [0, 1], or None for feature models).
        """
        if self.stream is None:
            raise RuntimeError("ModelStepper.step() before reset()")
        act = torch.from_numpy(actions_to_vectors(np.asarray([action]), action_space))
        frame = self._frame(obs)
        self._rgb = np.asarray(obs["rgb"] if isinstance(obs, dict) else obs)
        if self.draws_boxes:
            prepared = self.stream.prepare(act)
            nxt = torch.from_numpy(frame)[None]
            surprise, _ = self.model.evaluate_prepared(prepared, nxt.to(self.model.device))
            expected = self.model.predicted_objects(prepared)  # type: ignore[attr-defined]
            self.stream.advance(prepared, act, nxt)
            self._seen = frame
            return float(surprise[0]), draw_object_boxes(self._rgb, frame, expected)
        # one forward pass gives both the surprise and the frame
        surprise, _, predicted = self.stream.step(act, torch.from_numpy(frame)[None])
        self._seen = frame
        pred = None if predicted is None else predicted.clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        return float(surprise[0]), pred


def draw_object_boxes(rgb: np.ndarray, table: np.ndarray, expected: dict[str, torch.Tensor]) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` with the boxes of the objects seen (green, from the slot ``table``) and of those the
    model expected to see (red: slots seen before whose predicted probability of being seen is over 1/2)."""
    from tdwgym.agents.models.slots import BOX_X, BOX_Y, VISIBLE, H, W

    out = np.array(rgb, dtype=np.uint8, copy=True)
    hgt, wid = out.shape[:2]

    def box(cx: float, cy: float, bw: float, bh: float, color: tuple[int, int, int]) -> None:
        x0, x1 = int(round((cx - bw / 2 + 1) * wid / 2)), int(round((cx + bw / 2 + 1) * wid / 2)) - 1
        y0, y1 = int(round((cy - bh / 2 + 1) * hgt / 2)), int(round((cy + bh / 2 + 1) * hgt / 2)) - 1
        x0, x1, y0, y1 = max(x0, 0), min(x1, wid - 1), max(y0, 0), min(y1, hgt - 1)
        if x0 > x1 or y0 > y1:
            return
        out[y0, x0 : x1 + 1] = out[y1, x0 : x1 + 1] = color
        out[y0 : y1 + 1, x0] = out[y0 : y1 + 1, x1] = color

    for row in np.asarray(table):
        if row[VISIBLE] > 0:
            box(row[BOX_X], row[BOX_Y], row[W], row[H], (0, 220, 0))
    vis, boxes, seen = (expected[k][0].detach().cpu().numpy() for k in ("visible", "box", "seen"))
    for p, b, s in zip(vis, boxes, seen, strict=True):
        if s > 0 and p > 0.5:
            box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), (230, 30, 30))
    return out
