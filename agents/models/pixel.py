"""The pixel predictor (``"pixel"``): the next frame from ``k`` context frames and the action."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tdwgym.agents.models.base import (
    PixelOutput,
    WorldModel,
    _conv_out_shape,
    conv_encoder,
    mlp,
    to_float_frames,
)
from tdwgym.agents.models.data import LossOutput, Transitions


class PixelPredictor(PixelOutput, WorldModel):
    """Predicts the next frame from ``k`` context frames and the action.

    Conv encoder over the stacked context -> latent; the latent and an action embedding go through an MLP
    transition; a conv decoder maps the result to a residual that is added to the last context frame.

    Args:
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Action vector length.
        context_frames: ``k`` (2..4 is typical).
        discrete_actions: Whether actions are one-hot.
        width: Channels of the first conv layer (the others scale with it).
        latent_dim: Size of the latent state.
        l1_weight: Weight of the mean absolute error in the loss.
        l2_weight: Weight of the mean squared error in the loss.
        warp: Predict the next frame as the last context frame warped by an affine transform learned per action
            (the camera's own motion: a turn shifts the image, a step forward zooms it), plus the decoder's
            residual. The agent's ego-motion then becomes predictable within a few hundred updates, and what stays
            surprising is motion the agent does not make with the camera, such as an object it pushed.
        fovea: The surprise counts only the central ``fovea`` fraction of the frame's height and width (``None``:
            the whole frame); the loss still covers every pixel. A push lands at the centre, while the border holds
            most of the error the camera's own motion leaves (perspective and parallax that one affine warp per
            action cannot express).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    name = "pixel"

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        context_frames: int = 2,
        discrete_actions: bool = True,
        width: int = 16,
        latent_dim: int = 256,
        l1_weight: float = 0.5,
        l2_weight: float = 0.5,
        warp: bool = False,
        fovea: float | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(frame_shape, action_dim, context_frames, discrete_actions, device)
        self.width, self.latent_dim = width, latent_dim
        c, h, w = self.frame_shape
        self.encoder = conv_encoder(c * context_frames, width)
        self.feat_shape = _conv_out_shape(self.encoder, (c * context_frames, h, w))
        feat = math.prod(self.feat_shape)
        self.to_latent = nn.Sequential(nn.Flatten(), nn.Linear(feat, latent_dim), nn.ELU())
        self.action_embed = nn.Linear(action_dim, latent_dim)
        self.transition = mlp(2 * latent_dim, latent_dim, latent_dim)
        self.from_latent = nn.Linear(latent_dim, feat)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, 2 * width, 4, stride=2, padding=1),
            nn.ELU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.ELU(),
            nn.ConvTranspose2d(width, c, 4, stride=2, padding=1),
        )
        # last: the warp's layer draws from the RNG, and the layers above keep the initial weights they had
        self._setup_pixel_output(l1_weight, l2_weight, warp, fovea)
        self._finish_init()

    def predict(self, context: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Predicted next frame (float, [0, 1] scale, not clamped) from context ``(B,k,C,H,W)`` and actions."""
        return self._predict(context, action)[0]

    def _predict(self, context: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The prediction and, with ``warp``, the sampling grid of the warp (else None)."""
        ctx = to_float_frames(context)
        b, k, c, h, w = ctx.shape
        z = self.to_latent(self.encoder(ctx.reshape(b, k * c, h, w)))
        z = z + self.transition(torch.cat([z, self.action_embed(action.float())], dim=1))
        delta = self.decoder(self.from_latent(z).view(b, *self.feat_shape))
        if delta.shape[-2:] != (h, w):
            delta = F.interpolate(delta, size=(h, w), mode="bilinear", align_corners=False)
        base, grid = self._warped(ctx[:, -1], action)
        return base + delta, grid

    @torch.no_grad()
    def prepare(self, context, action, past_actions=None, state=None) -> object:  # noqa: D102 - the prediction itself
        return self._predict(context.to(self.device), action.to(self.device))

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """L1/L2 mix between the predicted and the true next frame.

        With ``warp`` the surprise averages the same error over the pixels the warp brings in from inside the last
        frame only: what a turn newly reveals at the border could not have been predicted from what was seen.
        """
        pred, grid = self._predict(batch.context, batch.action)
        return self._loss(pred, grid, batch.next_frame)

    def config(self) -> dict:  # noqa: D102
        return {
            **super().config(),
            "width": self.width,
            "latent_dim": self.latent_dim,
            **self._pixel_output_config(),
        }
