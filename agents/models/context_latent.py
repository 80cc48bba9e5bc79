"""The context latent predictor (``"jepa"``): V-JEPA-like, a causal transformer over the last ``k`` frames'
features and actions (registered with :func:`~tdwgym.agents.models.registry.register_world_model`)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from tdwgym.agents.models.base import (
    WorldModel,
    _conv_out_shape,
    conv_encoder,
    to_float_frames,
    variance_covariance_loss,
)
from tdwgym.agents.models.data import Clips, LossOutput, Transitions
from tdwgym.agents.models.registry import register_world_model


@register_world_model
class ContextLatentPredictor(WorldModel):
    """V-JEPA-like latent predictor over a long context.

    An online encoder embeds each frame; token ``t`` is frame ``t``'s features plus an embedding of the action
    taken after it and of its position; a causal transformer over the ``k`` tokens predicts, at every position,
    the features of the following frame under the target encoder (an EMA of the online encoder, no gradient).
    A variance-covariance (VICReg) regulariser on the online features keeps them from collapsing. Surprise is the
    squared error of the last position's prediction in target feature space.

    Args:
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Action vector length.
        context_frames: ``k``, the frames the predictor attends over (16 by default).
        discrete_actions: Whether actions are one-hot.
        width: Channels of the encoder's first conv layer.
        feature_dim: Feature size (the transformer's width).
        depth: Transformer layers.
        heads: Attention heads.
        ema_decay: EMA decay of the target encoder.
        var_cov_weight: Weight of the variance-covariance regulariser (0 disables it).
        cov_weight: Relative weight of the covariance term inside it.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    name = "jepa"
    uses_past_actions = True

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        context_frames: int = 16,
        discrete_actions: bool = True,
        width: int = 16,
        feature_dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        ema_decay: float = 0.99,
        var_cov_weight: float = 1.0,
        cov_weight: float = 0.04,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(frame_shape, action_dim, context_frames, discrete_actions, device)
        if feature_dim % heads:
            raise ValueError(f"feature_dim ({feature_dim}) must be divisible by heads ({heads})")
        self.width, self.feature_dim, self.depth, self.heads = int(width), int(feature_dim), int(depth), int(heads)
        self.ema_decay, self.var_cov_weight, self.cov_weight = (
            float(ema_decay),
            float(var_cov_weight),
            float(cov_weight),
        )
        c, h, w = self.frame_shape
        conv = conv_encoder(c, width)
        feat = math.prod(_conv_out_shape(conv, (c, h, w)))
        self.encoder = nn.Sequential(conv, nn.Flatten(), nn.Linear(feat, feature_dim))
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.action_embed = nn.Linear(action_dim, feature_dim)
        self.position = nn.Parameter(torch.zeros(1, self.context_frames, feature_dim))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            feature_dim, heads, dim_feedforward=2 * feature_dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.predictor = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(feature_dim, feature_dim)
        mask = torch.triu(torch.full((self.context_frames, self.context_frames), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)
        self._finish_init()

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Online features ``(..., D)`` of frames ``(..., C, H, W)``."""
        lead = frames.shape[:-3]
        return self.encoder(to_float_frames(frames).flatten(0, len(lead) - 1)).view(*lead, -1)

    @torch.no_grad()
    def target_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Target-space features ``(..., D)`` of frames ``(..., C, H, W)``."""
        lead = frames.shape[:-3]
        return self.target_encoder(to_float_frames(frames).flatten(0, len(lead) - 1)).view(*lead, -1)

    def _chunk_loss(self, frames: torch.Tensor, actions: torch.Tensor) -> tuple[LossOutput, torch.Tensor]:
        """Loss over clips of ``n <= k`` transitions: per-position errors ``(B, n)`` in the output's fields."""
        n = actions.shape[1]
        z = self.encode(frames[:, :n])
        tokens = z + self.action_embed(actions.float()) + self.position[:, :n]
        pred = self.head(self.predictor(tokens, mask=self.causal_mask[:n, :n], is_causal=True))
        target = self.target_features(frames[:, 1 : n + 1])
        err = (pred - target).pow(2).mean(-1)  # (B, n)
        loss = err.mean()
        metrics = {"prediction": float(loss.detach())}
        b = z.shape[0]
        if self.var_cov_weight > 0 and b * n > 1:
            var_loss, cov_loss = variance_covariance_loss(z.flatten(0, 1))
            loss = loss + self.var_cov_weight * (var_loss + self.cov_weight * cov_loss)
            metrics.update(variance=float(var_loss.detach()), covariance=float(cov_loss.detach()))
        metrics["feature_std"] = float(z.detach().flatten(0, 1).std(0).mean()) if b * n > 1 else 0.0
        return LossOutput(loss, err, err.detach(), metrics), err

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """Prediction error at every position of the ``k``-frame windows plus the regulariser; per-sample loss and
        surprise are the last position's (the transition itself)."""
        clips = batch.clip()
        out, err = self._chunk_loss(clips.frames, clips.actions)
        out.per_sample, out.surprise = err[:, -1], err[:, -1].detach()
        return out

    def clip_loss(self, clips: Clips, state: torch.Tensor | None = None) -> tuple[LossOutput, None]:
        """Loss over whole clips, cut into chunks of ``k`` transitions (the model's memory is its window)."""
        k = self.context_frames
        chunks = [
            self._chunk_loss(clips.frames[:, s : s + k + 1], clips.actions[:, s : s + k])
            for s in range(0, clips.steps, k)
        ]
        err = torch.cat([e for _, e in chunks], dim=1)
        loss = sum(out.loss * e.shape[1] for out, e in chunks) / err.shape[1]
        return LossOutput(loss, err.mean(1), err.detach().mean(1), chunks[0][0].metrics), None  # type: ignore[arg-type]

    @torch.no_grad()
    def after_update(self) -> None:
        """Move the target encoder towards the online encoder (EMA)."""
        for p_t, p in zip(self.target_encoder.parameters(), self.encoder.parameters(), strict=True):
            p_t.lerp_(p, 1.0 - self.ema_decay)

    def config(self) -> dict:  # noqa: D102
        return {
            **super().config(),
            "width": self.width,
            "feature_dim": self.feature_dim,
            "depth": self.depth,
            "heads": self.heads,
            "ema_decay": self.ema_decay,
            "var_cov_weight": self.var_cov_weight,
            "cov_weight": self.cov_weight,
        }
