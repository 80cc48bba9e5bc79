"""A model outside tdwgym, evaluated by tdwgym's benchmark through the two-method protocol.

    tdwgym eval --model examples/external_model.py:CopyLastModel --env occlusion

Replace the bodies with your own video model (a V-JEPA checkpoint, a diffusion model, any PyTorch module): tdwgym
gives it clips as uint8 RGB arrays and reads back per-frame surprise and, optionally, predicted frames. See
docs/world_models.md for the protocol.
"""

from __future__ import annotations

import numpy as np


class CopyLastModel:
    """Predicts that nothing changes: surprise is each frame's mean squared difference from the one before."""

    resolution = 32
    """Square frame size the model wants (the evaluation renders its clips at this size)."""
    context_frames = 4
    """True frames the probes give before asking for predictions."""

    def surprise(self, frames: np.ndarray) -> np.ndarray:
        """Per-frame scores of a ``(T, H, W, 3)`` uint8 clip: ``T - 1`` values (frame 1 on)."""
        x = frames.astype(np.float32) / 255.0
        return ((x[1:] - x[:-1]) ** 2).mean(axis=(1, 2, 3))

    def predict(self, context: np.ndarray, horizon: int) -> np.ndarray:
        """``horizon`` frames after ``context`` ``(k, H, W, 3)`` uint8, floats in [0, 1]."""
        last = context[-1].astype(np.float32) / 255.0
        return np.repeat(last[None], horizon, axis=0)
