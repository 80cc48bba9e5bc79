"""The recurrent pixel predictor (``"recurrent"``): a convolutional GRU whose state is carried through the whole
episode, the world model with memory that object permanence needs (registered with
:func:`~tdwgym.agents.models.registry.register_world_model`)."""

from __future__ import annotations

import torch
from torch import nn

from tdwgym.agents.models.base import (
    PixelOutput,
    WorldModel,
    to_float_frames,
)
from tdwgym.agents.models.data import Clips, LossOutput, Transitions
from tdwgym.agents.models.registry import register_world_model


class ConvGRUCell(nn.Module):
    """A gated recurrent unit whose gates are convolutions (state and input are feature maps).

    Args:
        in_channels: Channels of the input map.
        hidden: Channels of the state.
        kernel: Kernel size of the gate convolutions.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.gates = nn.Conv2d(in_channels + hidden, 2 * hidden, kernel, padding=kernel // 2)
        self.candidate = nn.Conv2d(in_channels + hidden, hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The next state from input ``x`` ``(B, in, H, W)`` and state ``h`` ``(B, hidden, H, W)``."""
        update, reset = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        cand = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        return (1.0 - update) * h + update * cand


@register_world_model
class RecurrentPixelPredictor(PixelOutput, WorldModel):
    """A pixel predictor with a convolutional GRU memory carried through the episode.

    Step ``t``: ``h_t = GRU(h_{t-1}, enc(x_t) + embed(a_t))``; the prediction of ``x_{t+1}`` is the (warped)
    ``x_t`` plus ``dec(h_t, skip(x_t))``. The state is a ``hidden`` x ``H/4`` x ``W/4`` map, so it remembers
    *where* things are, such as an object behind an occluder.

    Args:
        frame_shape: ``(C, H, W)`` of one frame (``H`` and ``W`` divisible by 4).
        action_dim: Action vector length.
        context_frames: ``k``, the window length of online training (truncated backpropagation through time over
            the buffer's windows); scoring along an episode carries the state through all of it.
        discrete_actions: Whether actions are one-hot.
        width: Channels of the encoder's first layers and of the decoder.
        hidden: Channels of the recurrent state.
        l1_weight: Weight of the mean absolute error in the loss.
        l2_weight: Weight of the mean squared error in the loss.
        warp: Predict from the newest frame warped by a learned per-action affine transform (the camera's own
            motion), as :class:`~tdwgym.agents.models.PixelPredictor` does.
        fovea: The surprise counts only the central fraction of the frame (``None``: all of it).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    name = "recurrent"
    uses_past_actions = True

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        context_frames: int = 16,
        discrete_actions: bool = True,
        width: int = 32,
        hidden: int = 64,
        l1_weight: float = 0.5,
        l2_weight: float = 0.5,
        warp: bool = True,
        fovea: float | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__(frame_shape, action_dim, context_frames, discrete_actions, device)
        c, h, w = self.frame_shape
        if h % 4 or w % 4:
            raise ValueError(f"the recurrent model needs frame sides divisible by 4, got {h}x{w}")
        self.width, self.hidden = int(width), int(hidden)
        self._setup_pixel_output(l1_weight, l2_weight, warp, fovea)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1),
            nn.ELU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1),
            nn.ELU(),
            nn.Conv2d(width, hidden, 4, stride=2, padding=1),
            nn.ELU(),
        )
        self.action_embed = nn.Linear(action_dim, hidden)
        self.cell = ConvGRUCell(hidden, hidden)
        self.skip = nn.Sequential(
            nn.Conv2d(c, width, 3, stride=2, padding=1),
            nn.ELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ELU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(hidden + width, width, 4, stride=2, padding=1),
            nn.ELU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1),
            nn.ELU(),
            nn.Conv2d(width, c, 3, padding=1),
        )
        self._finish_init()

    def initial_state(self, n: int) -> torch.Tensor:
        """Zero state ``(n, hidden, H/4, W/4)`` on the model's device."""
        _, h, w = self.frame_shape
        return torch.zeros(n, self.hidden, h // 4, w // 4, device=self.device)

    def _step(
        self, h: torch.Tensor, x: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One step from state ``h`` and frame ``x`` (float) under ``action``: (prediction, warp grid, new state)."""
        h = self.cell(self.encoder(x) + self.action_embed(action.float())[:, :, None, None], h)
        base, grid = self._warped(x, action)
        return base + self.decoder(torch.cat([h, self.skip(x)], dim=1)), grid, h

    def _unroll(
        self, frames: torch.Tensor, actions: torch.Tensor, h: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Teacher-forced predictions of frames ``1 .. T`` from frames ``0 .. T-1``: ``(B, T, C, H, W)``, the warp
        grids ``(B, T, H, W, 2)`` or None, and the final state."""
        x = to_float_frames(frames)
        h = self.initial_state(x.shape[0]) if h is None else h
        preds, grids = [], []
        for t in range(actions.shape[1]):
            pred, grid, h = self._step(h, x[:, t], actions[:, t])
            preds.append(pred)
            grids.append(grid)
        grid_t = None if grids[0] is None else torch.stack(grids, dim=1)  # type: ignore[arg-type]
        return torch.stack(preds, dim=1), grid_t, h

    def _clip_loss(self, clips: Clips, h: torch.Tensor | None) -> tuple[LossOutput, torch.Tensor, int]:
        preds, grids, h = self._unroll(clips.frames, clips.actions, h)
        b, t = preds.shape[:2]
        flat_grid = None if grids is None else grids.flatten(0, 1)
        out = self._loss(preds.flatten(0, 1), flat_grid, clips.frames[:, 1:].flatten(0, 1))
        out.per_sample = out.per_sample.view(b, t)
        out.surprise = out.surprise.view(b, t)
        return out, h, t

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """The L1/L2 loss of every step of the ``k + 1``-frame windows, unrolled from a zero state; the per-sample
        loss and the surprise are the last step's (the transition itself)."""
        out, _, _ = self._clip_loss(batch.clip(), None)
        out.per_sample, out.surprise = out.per_sample[:, -1], out.surprise[:, -1]
        return out

    def clip_loss(self, clips: Clips, state: torch.Tensor | None = None) -> tuple[LossOutput, torch.Tensor]:
        """Loss over whole clips unrolled from ``state``; returns the detached final state (TBPTT)."""
        out, h, _ = self._clip_loss(clips, state)
        out.per_sample, out.surprise = out.per_sample.mean(1), out.surprise.mean(1)
        return out, h.detach()

    @torch.no_grad()
    def prepare(self, context, action, past_actions=None, state=None) -> object:
        """The prediction of the next frame: from ``state`` and the newest context frame, or (``state`` None)
        from a zero state unrolled over the whole context window first."""
        ctx = to_float_frames(context.to(self.device))
        action = action.to(self.device, dtype=torch.float32)
        if state is None:
            b, k = ctx.shape[:2]
            if past_actions is None:
                past_actions = action.new_zeros(b, k - 1, action.shape[-1])
            state = self.initial_state(b)
            for j in range(k - 1):
                state = self.cell(
                    self.encoder(ctx[:, j]) + self.action_embed(past_actions[:, j].to(action))[:, :, None, None], state
                )
        return self._step(state, ctx[:, -1], action)

    def next_state(self, prepared: object) -> torch.Tensor:  # noqa: D102 - the state after the prepared step
        return prepared[2]  # type: ignore[index]

    def config(self) -> dict:  # noqa: D102
        return {**super().config(), "width": self.width, "hidden": self.hidden, **self._pixel_output_config()}
