"""What every world model shares: the :class:`WorldModel` interface, the next-frame output of the pixel models
(:class:`PixelOutput`), and the building blocks (frame conversion and resizing, conv encoder, MLP, the
variance-covariance regulariser).

Every model implements one interface, :class:`WorldModel`: from a batch of :class:`Transitions`
(``k`` context frames, the action taken after the last of them, the next frame) it computes a training loss
(:meth:`WorldModel.compute_loss`) and a per-transition surprise (:meth:`WorldModel.surprise`).

Frames may be ``uint8`` in ``[0, 255]`` or float in ``[0, 1]``, layout ``(C, H, W)``; actions are float vectors
(one-hot for discrete actions).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tdwgym.agents.device import resolve_device
from tdwgym.agents.models.data import Clips, LossOutput, Transitions


def to_float_frames(x: torch.Tensor) -> torch.Tensor:
    """Frames as float32 in [0, 1] (uint8 input is divided by 255)."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-downsample (or resize) frames ``(..., C, H, W)`` to ``size`` = ``(h, w)``, keeping the dtype.

    A world model may see frames smaller than the observations (``PixelPredictor`` at 32x32 costs a third of
    its 64x64 time); every caller that feeds it observations resizes them with this one function.
    """
    h, w = int(size[0]), int(size[1])
    if tuple(frames.shape[-2:]) == (h, w):
        return frames
    lead = frames.shape[:-3]
    x = frames.reshape(-1, *frames.shape[-3:]).float()
    x = F.interpolate(x, size=(h, w), mode="area")
    if frames.dtype == torch.uint8:
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x.reshape(*lead, x.shape[1], h, w)


def conv_encoder(in_channels: int, width: int) -> nn.Sequential:
    """Three stride-2 convolutions (a 64x64 input becomes ``2*width`` x 8 x 8)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
        nn.ELU(),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
        nn.ELU(),
        nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1),
        nn.ELU(),
    )


def _conv_out_shape(net: nn.Module, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    with torch.no_grad():
        out = net(torch.zeros(1, *in_shape))
    return tuple(out.shape[1:])  # type: ignore[return-value]


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """``layers`` linear layers with ELU between them."""
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(dim, hidden), nn.ELU()]
        dim = hidden
    mods.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*mods)


class WorldModel(nn.Module, ABC):
    """The interface every world model implements.

    Args:
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Length of the action vector (number of actions for one-hot discrete actions).
        context_frames: ``k``, the number of context frames each transition carries.
        discrete_actions: Whether actions are one-hot vectors of a discrete action space.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
    """

    name: str = "base"

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        context_frames: int = 2,
        discrete_actions: bool = True,
        device: str | torch.device = "auto",
    ) -> None:
        super().__init__()
        if context_frames < 1:
            raise ValueError(f"context_frames must be >= 1, got {context_frames}")
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.action_dim = int(action_dim)
        self.context_frames = int(context_frames)
        self.discrete_actions = bool(discrete_actions)
        self._device = resolve_device(device)

    @property
    def device(self) -> torch.device:
        """The device the model lives on."""
        return self._device

    def _finish_init(self) -> None:
        self.to(self._device)

    def to(self, *args, **kwargs):  # noqa: D102 - keeps ``device`` in sync with nn.Module.to
        out = super().to(*args, **kwargs)
        try:
            self._device = next(self.parameters()).device
        except StopIteration:
            pass
        return out

    @abstractmethod
    def compute_loss(self, batch: Transitions) -> LossOutput:
        """Training loss, per-sample loss and surprise of a batch (with gradients)."""

    @torch.no_grad()
    def evaluate(self, batch: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """Surprise and per-sample loss of a batch, without gradients.

        Returns:
            ``(surprise, per_sample_loss)``, both ``(B,)`` on the model's device.
        """
        out = self.compute_loss(batch.to(self.device))
        return out.surprise.detach(), out.per_sample.detach()

    def surprise(self, batch: Transitions) -> torch.Tensor:
        """Per-transition surprise (prediction error), ``(B,)``, no gradients."""
        return self.evaluate(batch)[0]

    passes: tuple[str, ...] = ("rgb",)
    """The render passes the model reads: an env that feeds it renders them (``"rgb"``, ``"segmentation"``,
    ``"depth"``), and :meth:`frames_from` turns them into its frames."""

    def frames_from(self, rgb: Any, segmentation: Any = None, depth: Any = None) -> torch.Tensor:
        """The model's frames ``(N, *frame_shape)`` of ``N`` observations: ``rgb`` ``(N, H, W, 3)`` uint8 (numpy or
        torch), and the ``segmentation`` and ``depth`` passes ``(N, H, W[, 1])`` for models whose :attr:`passes`
        name them. Pixel models take RGB as ``(C, H, W)`` frames resized to their frame size with
        :func:`resize_frames`, as in training."""
        x = torch.as_tensor(np.ascontiguousarray(rgb))
        return resize_frames(x.permute(0, 3, 1, 2).contiguous(), self.frame_shape[1:])

    def clip_encoder(self) -> Callable[..., Any] | None:
        """A picklable function ``(rgb (T, H, W, 3), segmentation (T, H, W), depth (T, H, W)) -> frames (T,
        *frame_shape)`` that data workers run to make this model's clips from the render passes, or None for
        models whose frames are RGB (pretraining's clips then come as ``(T, C, H, W)`` uint8)."""
        return None

    @property
    def resolution(self) -> tuple[int, int]:
        """``(height, width)`` of the observations the model is fed at (pixel models: their frame size)."""
        return int(self.frame_shape[-2]), int(self.frame_shape[-1])

    uses_past_actions: bool = False
    """Whether the model reads :attr:`Transitions.past_actions` (the curiosity wrapper then keeps them)."""

    def initial_state(self, n: int) -> torch.Tensor | None:
        """The memory of ``n`` fresh streams (a tensor whose first axis is the stream), or None for models that
        carry no memory between steps (their memory is the ``k``-frame context alone)."""
        return None

    @torch.no_grad()
    def prepare(
        self,
        context: torch.Tensor,
        action: torch.Tensor,
        past_actions: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> object:
        """The part of :meth:`evaluate` that needs no next frame, computed ahead (the curiosity wrapper calls it
        while the environments step). The default computes nothing; models whose prediction is known before the
        frame arrives (``pixel``, ``recurrent``) override it together with :meth:`evaluate_prepared`.

        Args:
            context: ``(B, k, C, H, W)`` context frames.
            action: ``(B, A)`` the action after the last of them.
            past_actions: ``(B, k - 1, A)`` the actions between the context frames, or None.
            state: The streams' memory (:meth:`initial_state`, then :meth:`next_state`), or None: models with
                memory then rebuild it from the context alone.
        """
        return (context, action, past_actions)

    @torch.no_grad()
    def evaluate_prepared(self, prepared: object, next_frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`evaluate` of the transitions :meth:`prepare` began, now that ``next_frame`` is known: the same
        numbers as ``evaluate(Transitions(context, action, next_frame))`` (for models with memory: given the
        memory passed to :meth:`prepare`)."""
        context, action, past = prepared  # type: ignore[misc]
        return self.evaluate(Transitions(context, action, next_frame, past))

    def next_state(self, prepared: object) -> torch.Tensor | None:
        """The streams' memory once the step :meth:`prepare` began is taken (None for models without memory)."""
        return None

    def predicted_frame(self, prepared: object) -> torch.Tensor | None:
        """The next frame predicted in a :meth:`prepare` result (``(B, C, H, W)`` floats, [0, 1] scale, not
        clamped), or None for models that predict no frame."""
        return None

    def clip_loss(self, clips: Clips, state: torch.Tensor | None = None) -> tuple[LossOutput, torch.Tensor | None]:
        """Training loss over whole clips (pretraining). Models with memory unroll it through the clip from
        ``state`` (truncated backpropagation through time: pass the returned, detached state with the clips'
        continuation); the default scores every transition with its ``k``-frame context.

        Returns:
            The loss (``per_sample`` and ``surprise`` per clip) and the memory after the clip (None without).
        """
        out = self.compute_loss(clips.windows(self.context_frames))
        b = len(clips)
        return (
            LossOutput(out.loss, out.per_sample.view(b, -1).mean(1), out.surprise.view(b, -1).mean(1), out.metrics),
            None,
        )

    def observe(self, batch: Transitions) -> None:
        """Hook called on every newly observed batch while training (e.g. running input statistics)."""

    @property
    def observes(self) -> bool:
        """Whether :meth:`observe` does anything (the background trainer is sent the batches only then)."""
        return type(self).observe is not WorldModel.observe

    def after_update(self) -> None:
        """Hook called after every optimiser step (e.g. the EMA of a target encoder)."""

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the model with :func:`make_world_model`."""
        return {
            "name": self.name,
            "frame_shape": list(self.frame_shape),
            "action_dim": self.action_dim,
            "context_frames": self.context_frames,
            "discrete_actions": self.discrete_actions,
        }


class PixelOutput:
    """What the models that predict the next frame share: an optional per-action affine warp of the last frame
    (the camera's own motion), the L1/L2 loss, and a surprise over the pixels that could have been predicted.

    A mixin of :class:`WorldModel` subclasses; :meth:`_setup_pixel_output` runs in their ``__init__``, and their
    :meth:`~WorldModel.prepare` returns ``(prediction, warp grid or None, ...)``.
    """

    frame_shape: tuple[int, ...]
    action_dim: int
    device: torch.device
    register_buffer: Callable[..., None]

    def _setup_pixel_output(self, l1_weight: float, l2_weight: float, warp: bool, fovea: float | None) -> None:
        if fovea is not None and not 0.0 < fovea <= 1.0:
            raise ValueError(f"fovea must be a fraction of the frame in (0, 1] or None, got {fovea!r}")
        self.warp = bool(warp)
        self.fovea = None if fovea is None else float(fovea)
        self.l1_weight, self.l2_weight = float(l1_weight), float(l2_weight)
        _, h, w = self.frame_shape
        region = torch.ones(1, 1, h, w)
        if self.fovea is not None:
            fh, fw = max(1, round(h * self.fovea)), max(1, round(w * self.fovea))
            region.zero_()
            region[..., (h - fh) // 2 : (h - fh) // 2 + fh, (w - fw) // 2 : (w - fw) // 2 + fw] = 1.0
        self.register_buffer("region", region, persistent=False)
        if self.warp:
            # affine parameters = identity + a learned offset per action (zero at the start: copy the last frame)
            self.action_warp = nn.Linear(self.action_dim, 6, bias=False)
            nn.init.zeros_(self.action_warp.weight)
            self.register_buffer("identity", torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def _pixel_output_config(self) -> dict:
        return {"l1_weight": self.l1_weight, "l2_weight": self.l2_weight, "warp": self.warp, "fovea": self.fovea}

    def _warped(self, last: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The base of the prediction: ``last`` itself, or with ``warp`` the last frame warped, and the grid."""
        if not self.warp:
            return last, None
        grid = self.warp_grid(action, tuple(last.shape))
        return F.grid_sample(last, grid, mode="bilinear", padding_mode="border", align_corners=False), grid

    def warp_grid(self, action: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """Sampling grid ``(B, H, W, 2)`` (in [-1, 1] inside the frame) of each action's affine transform."""
        # the offsets are scaled up so that Adam moves them WARP_SCALE times faster than the other weights: the
        # camera's motion is learned within a few hundred updates
        theta = (self.identity + WARP_SCALE * self.action_warp(action.float())).view(-1, 2, 3)
        return F.affine_grid(theta, list(shape), align_corners=False)

    def warped_last_frame(self, last: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The last context frame ``(B, C, H, W)`` warped by the affine transform of each action."""
        return self._warped(last, action)[0]

    @torch.no_grad()
    def evaluate_prepared(self, prepared: object, next_frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102
        pred, grid = prepared[:2]  # type: ignore[index]
        out = self._loss(pred, grid, next_frame.to(self.device))
        return out.surprise.detach(), out.per_sample.detach()

    def predicted_frame(self, prepared: object) -> torch.Tensor | None:  # noqa: D102
        return prepared[0]  # type: ignore[index]

    def _loss(self, pred: torch.Tensor, grid: torch.Tensor | None, next_frame: torch.Tensor) -> LossOutput:
        target = to_float_frames(next_frame)
        diff = pred - target
        abs_diff, sq_diff = diff.abs(), diff.pow(2)
        err = self.l1_weight * abs_diff + self.l2_weight * sq_diff
        per_sample = err.flatten(1).mean(1)
        surprise = per_sample.detach()
        if grid is not None or self.fovea is not None:
            with torch.no_grad():
                seen = self.region.expand(err.shape[0], 1, *err.shape[2:])
                if grid is not None:
                    seen = seen * (grid.detach().abs() <= 1.0).all(-1).unsqueeze(1).float()  # (B, 1, H, W)
                surprise = (err.detach() * seen).flatten(1).sum(1) / (seen.flatten(1).sum(1) * err.shape[1] + 1e-6)
        metrics = {}
        if torch.is_grad_enabled():  # training: log the two terms (scoring, every step, skips them)
            metrics = {"l1": float(abs_diff.detach().mean()), "l2": float(sq_diff.detach().mean())}
        return LossOutput(per_sample.mean(), per_sample, surprise, metrics)


WARP_SCALE = 5.0
"""Output scale of :class:`PixelPredictor`'s per-action warp offsets (a learning-rate multiplier under Adam)."""


def variance_covariance_loss(z: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg's variance hinge (std of each dim >= 1) and off-diagonal covariance penalty of ``z`` ``(B, D)``."""
    z = z - z.mean(dim=0)
    std = torch.sqrt(z.var(dim=0) + eps)
    var_loss = F.relu(1.0 - std).mean()
    cov = (z.T @ z) / max(z.shape[0] - 1, 1)
    off_diag = cov - torch.diag(torch.diag(cov))
    cov_loss = off_diag.pow(2).sum() / z.shape[1]
    return var_loss, cov_loss
