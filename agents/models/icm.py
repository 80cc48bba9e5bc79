"""The intrinsic curiosity module (``"icm"``, Pathak et al. 2017): a forward model in inverse-model features."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tdwgym.agents.models.base import (
    WorldModel,
    _conv_out_shape,
    conv_encoder,
    mlp,
    to_float_frames,
)
from tdwgym.agents.models.data import LossOutput, Transitions


class ICMModel(WorldModel):
    """Intrinsic curiosity module: inverse and forward models in learned features.

    The feature encoder ``phi`` sees ``k`` stacked frames: state ``s`` is the context, state ``s'`` is the
    context shifted by one with the next frame appended. Features are trained by the inverse model only; the
    forward model predicts ``phi(s')`` from ``phi(s)`` and the action, and its error is the surprise.

    Args:
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Action vector length.
        context_frames: ``k``.
        discrete_actions: Cross-entropy inverse loss when True, else mean squared error.
        width: Channels of the first conv layer.
        feature_dim: Size of ``phi``.
        forward_weight: ``beta``: loss = (1 - beta) * inverse + beta * forward.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    name = "icm"

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        context_frames: int = 2,
        discrete_actions: bool = True,
        width: int = 16,
        feature_dim: int = 128,
        forward_weight: float = 0.2,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(frame_shape, action_dim, context_frames, discrete_actions, device)
        self.width, self.feature_dim, self.forward_weight = width, feature_dim, float(forward_weight)
        c, h, w = self.frame_shape
        conv = conv_encoder(c * context_frames, width)
        feat = math.prod(_conv_out_shape(conv, (c * context_frames, h, w)))
        self.phi = nn.Sequential(conv, nn.Flatten(), nn.Linear(feat, feature_dim))
        self.inverse = mlp(2 * feature_dim, 256, action_dim)
        self.forward_model = mlp(feature_dim + action_dim, 256, feature_dim)
        self._finish_init()

    def features(self, stacked: torch.Tensor) -> torch.Tensor:
        """``phi`` of ``(B, k, C, H, W)`` frames."""
        x = to_float_frames(stacked)
        return self.phi(x.flatten(1, 2))

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """(1 - beta) * inverse loss + beta * forward loss."""
        nxt = torch.cat([batch.context[:, 1:], batch.next_frame.unsqueeze(1)], dim=1)
        f_s, f_next = self.features(batch.context), self.features(nxt)
        logits = self.inverse(torch.cat([f_s, f_next], dim=1))
        if self.discrete_actions:
            inv = F.cross_entropy(logits, batch.action.argmax(1), reduction="none")
        else:
            inv = (logits - batch.action.float()).pow(2).mean(1)
        pred = self.forward_model(torch.cat([f_s.detach(), batch.action.float()], dim=1))
        fwd = 0.5 * (pred - f_next.detach()).pow(2).mean(1)
        per_sample = (1 - self.forward_weight) * inv + self.forward_weight * fwd
        metrics = {"inverse": float(inv.detach().mean()), "forward": float(fwd.detach().mean())}
        return LossOutput(per_sample.mean(), per_sample, fwd.detach(), metrics)

    def config(self) -> dict:  # noqa: D102
        return {
            **super().config(),
            "width": self.width,
            "feature_dim": self.feature_dim,
            "forward_weight": self.forward_weight,
        }
