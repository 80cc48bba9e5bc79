"""Random network distillation (``"rnd"``, Burda et al. 2018): the standard curiosity baseline."""

from __future__ import annotations

import math

import torch
from torch import nn

from tdwgym.agents.models.base import (
    WorldModel,
    _conv_out_shape,
    conv_encoder,
    to_float_frames,
)
from tdwgym.agents.models.data import LossOutput, Transitions


class RNDModel(WorldModel):
    """Random network distillation on the next frame.

    Frames are whitened per pixel with running statistics (updated in :meth:`observe`) and clipped to
    ``[-5, 5]``, as in Burda et al.; the context and action are ignored.

    Args:
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Action vector length (unused by the model, kept for the common interface).
        context_frames: ``k`` (unused by the model).
        discrete_actions: Whether actions are one-hot (unused).
        width: Channels of the first conv layer.
        feature_dim: Output size of both networks.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    name = "rnd"

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        context_frames: int = 2,
        discrete_actions: bool = True,
        width: int = 16,
        feature_dim: int = 64,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(frame_shape, action_dim, context_frames, discrete_actions, device)
        self.width, self.feature_dim = width, feature_dim
        c, h, w = self.frame_shape
        conv_t = conv_encoder(c, width)
        feat = math.prod(_conv_out_shape(conv_t, (c, h, w)))
        self.target_net = nn.Sequential(conv_t, nn.Flatten(), nn.Linear(feat, feature_dim))
        for m in self.target_net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2))
                nn.init.zeros_(m.bias)
        self.target_net.requires_grad_(False)
        self.predictor_net = nn.Sequential(
            conv_encoder(c, width),
            nn.Flatten(),
            nn.Linear(feat, 2 * feature_dim),
            nn.ELU(),
            nn.Linear(2 * feature_dim, feature_dim),
        )
        self.register_buffer("obs_mean", torch.zeros(c, h, w))
        self.register_buffer("obs_var", torch.ones(c, h, w))
        self.register_buffer("obs_count", torch.tensor(1e-4, dtype=torch.float64))
        self._finish_init()

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """Whitened, clipped frames."""
        x = to_float_frames(frames)
        return ((x - self.obs_mean) / torch.sqrt(self.obs_var + 1e-8)).clamp_(-5.0, 5.0)

    @torch.no_grad()
    def observe(self, batch: Transitions) -> None:
        """Update the per-pixel running mean and variance with the batch's next frames."""
        x = to_float_frames(batch.next_frame.to(self.device))
        n = x.shape[0]
        b_mean, b_var = x.mean(0), x.var(0, unbiased=False)
        total = self.obs_count + n
        delta = b_mean - self.obs_mean
        ratio = float(n / total)
        self.obs_mean += delta * ratio
        m2 = self.obs_var * float(self.obs_count) + b_var * n + delta.pow(2) * float(self.obs_count) * ratio
        self.obs_var.copy_(m2 / float(total))
        self.obs_count.copy_(total)

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """Squared error between predictor and fixed random target features."""
        x = self.normalise(batch.next_frame)
        with torch.no_grad():
            target = self.target_net(x)
        per_sample = (self.predictor_net(x) - target).pow(2).mean(1)
        return LossOutput(per_sample.mean(), per_sample, per_sample.detach(), {})

    def config(self) -> dict:  # noqa: D102
        return {**super().config(), "width": self.width, "feature_dim": self.feature_dim}
