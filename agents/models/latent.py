"""The JEPA-style latent predictor (``"latent"``): the next frame's features under an EMA target encoder."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from tdwgym.agents.models.base import (
    WorldModel,
    _conv_out_shape,
    conv_encoder,
    mlp,
    to_float_frames,
    variance_covariance_loss,
)
from tdwgym.agents.models.data import LossOutput, Transitions


class LatentPredictor(WorldModel):
    """JEPA-style latent predictor.

    An online encoder embeds each context frame; a predictor maps the ``k`` embeddings and the action to the
    predicted embedding of the next frame; the target is the target encoder's embedding of the next frame
    (no gradient). The target encoder is an EMA of the online encoder (``target="ema"``) or the online encoder
    itself under stop-gradient (``target="online"``, which needs ``var_cov_weight > 0``). A variance-covariance
    regulariser on the online embeddings keeps the features from collapsing.

    Args:
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Action vector length.
        context_frames: ``k``.
        discrete_actions: Whether actions are one-hot.
        width: Channels of the first conv layer.
        feature_dim: Embedding size.
        target: ``"ema"`` or ``"online"``.
        ema_decay: EMA decay of the target encoder.
        var_cov_weight: Weight of the variance-covariance regulariser (0 disables it).
        cov_weight: Relative weight of the covariance term inside the regulariser.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    name = "latent"

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        context_frames: int = 2,
        discrete_actions: bool = True,
        width: int = 16,
        feature_dim: int = 64,
        target: str = "ema",
        ema_decay: float = 0.99,
        var_cov_weight: float = 1.0,
        cov_weight: float = 0.04,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(frame_shape, action_dim, context_frames, discrete_actions, device)
        if target not in ("ema", "online"):
            raise ValueError(f"target must be 'ema' or 'online', got {target!r}")
        if target == "online" and var_cov_weight <= 0:
            raise ValueError("target='online' collapses without the variance-covariance regulariser")
        self.width, self.feature_dim, self.target = width, feature_dim, target
        self.ema_decay, self.var_cov_weight = float(ema_decay), float(var_cov_weight)
        self.cov_weight = float(cov_weight)
        c, h, w = self.frame_shape
        conv = conv_encoder(c, width)
        feat = math.prod(_conv_out_shape(conv, (c, h, w)))
        self.encoder = nn.Sequential(conv, nn.Flatten(), nn.Linear(feat, feature_dim))
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.predictor = mlp(context_frames * feature_dim + action_dim, 4 * feature_dim, feature_dim, layers=3)
        self._finish_init()

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Online features ``(N, D)`` of frames ``(N, C, H, W)``."""
        return self.encoder(to_float_frames(frames))

    @torch.no_grad()
    def target_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Target-space features ``(N, D)`` of frames ``(N, C, H, W)``."""
        enc = self.target_encoder if self.target == "ema" else self.encoder
        return enc(to_float_frames(frames))

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """Prediction error in target space plus the variance-covariance regulariser."""
        b, k = batch.context.shape[:2]
        z_ctx = self.encode(batch.context.flatten(0, 1)).view(b, k, -1)
        pred = self.predictor(torch.cat([z_ctx.flatten(1), batch.action.float()], dim=1))
        target = self.target_features(batch.next_frame)
        per_sample = (pred - target).pow(2).mean(1)
        loss = per_sample.mean()
        metrics = {"prediction": float(loss.detach())}
        if self.var_cov_weight > 0 and b > 1:
            var_loss, cov_loss = variance_covariance_loss(z_ctx[:, -1])
            loss = loss + self.var_cov_weight * (var_loss + self.cov_weight * cov_loss)
            metrics.update(variance=float(var_loss.detach()), covariance=float(cov_loss.detach()))
        metrics["feature_std"] = float(z_ctx[:, -1].detach().std(0).mean()) if b > 1 else 0.0
        return LossOutput(loss, per_sample, per_sample.detach(), metrics)

    @torch.no_grad()
    def after_update(self) -> None:
        """Move the target encoder towards the online encoder (EMA)."""
        if self.target != "ema":
            return
        for p_t, p in zip(self.target_encoder.parameters(), self.encoder.parameters(), strict=True):
            p_t.lerp_(p, 1.0 - self.ema_decay)

    def config(self) -> dict:  # noqa: D102
        return {
            **super().config(),
            "width": self.width,
            "feature_dim": self.feature_dim,
            "target": self.target,
            "ema_decay": self.ema_decay,
            "var_cov_weight": self.var_cov_weight,
            "cov_weight": self.cov_weight,
        }
