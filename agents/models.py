"""World models whose prediction error is a curiosity signal (torch only: no env or SB3 imports).

Every model implements one interface, :class:`WorldModel`: from a batch of :class:`Transitions`
(``k`` context frames, the action taken after the last of them, the next frame) it computes a training loss
(:meth:`WorldModel.compute_loss`) and a per-transition surprise (:meth:`WorldModel.surprise`).

Models:

* :class:`PixelPredictor`: conv encoder over the ``k`` stacked context frames, an action-conditioned latent
  transition and a conv decoder that predicts the next frame (as a residual on the last context frame); the loss
  is a configurable mix of L1 and L2.
* :class:`LatentPredictor`: JEPA-style. An online encoder and a predictor are trained to match a target encoder's
  features of the next frame. The target is an EMA of the online encoder; a variance-covariance (VICReg)
  regulariser on the online features additionally keeps them from collapsing. Surprise is the distance in target
  feature space.
* :class:`RNDModel`: random network distillation (Burda et al. 2018), the standard baseline: surprise is the error
  of a trained predictor against a fixed random network on the (normalised) next frame.
* :class:`ICMModel`: intrinsic curiosity module (Pathak et al. 2017): features learned by an inverse model, and a
  forward model in that feature space whose error is the surprise.
* :class:`LearningProgress`: wraps any of the above; surprise is the decrease of the model's error over time
  (error of a lagged copy minus error of the current model, clipped at 0), which stays near zero on transitions
  that can never be predicted (the noisy TV).

Frames may be ``uint8`` in ``[0, 255]`` or float in ``[0, 1]``, layout ``(C, H, W)``; actions are float vectors
(one-hot for discrete actions).
"""

from __future__ import annotations

import copy
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tdwgym.agents.device import resolve_device

__all__ = [
    "Clips",
    "ICMModel",
    "LatentPredictor",
    "LearningProgress",
    "LossOutput",
    "PixelPredictor",
    "RNDModel",
    "Stream",
    "Transitions",
    "WorldModel",
    "PRETRAINED",
    "load_world_model",
    "make_world_model",
    "resolve_model_path",
    "safe_load",
    "register_world_model",
    "resize_frames",
]


@dataclass
class Transitions:
    """A batch of transitions.

    Attributes:
        context: ``(B, k, C, H, W)`` context frames, oldest first (uint8 or float in [0, 1]).
        action: ``(B, A)`` float actions taken after the last context frame (one-hot when discrete).
        next_frame: ``(B, C, H, W)`` the frame that followed.
        past_actions: ``(B, k - 1, A)`` the actions taken between the context frames (action ``i`` led from
            context frame ``i`` to ``i + 1``), or None when unknown (models that need them then assume no-ops:
            zero vectors). Models with memory (:attr:`WorldModel.uses_past_actions`) train on them.
    """

    context: torch.Tensor
    action: torch.Tensor
    next_frame: torch.Tensor
    past_actions: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.context.shape[0])

    def to(self, device: torch.device | str) -> Transitions:
        """Return the batch on ``device`` (actions as float32)."""
        past = self.past_actions
        return Transitions(
            self.context.to(device, non_blocking=True),
            self.action.to(device, dtype=torch.float32, non_blocking=True),
            self.next_frame.to(device, non_blocking=True),
            None if past is None else past.to(device, dtype=torch.float32, non_blocking=True),
        )

    def fields(self) -> dict[str, torch.Tensor]:
        """The tensors by field name (``past_actions`` only when known)."""
        out = {"context": self.context, "action": self.action, "next_frame": self.next_frame}
        if self.past_actions is not None:
            out["past_actions"] = self.past_actions
        return out

    def slice(self, index: slice | torch.Tensor | np.ndarray) -> Transitions:
        """The transitions at ``index`` (a slice or index array)."""
        past = self.past_actions
        return Transitions(
            self.context[index], self.action[index], self.next_frame[index], None if past is None else past[index]
        )

    def clip(self) -> Clips:
        """The ``B`` clips of ``k + 1`` frames these transitions are (unknown past actions as zero vectors)."""
        past = self.past_actions
        if past is None:
            b, k = self.context.shape[:2]
            past = self.action.new_zeros(b, k - 1, self.action.shape[-1], dtype=torch.float32)
        frames = torch.cat([self.context, self.next_frame[:, None].to(self.context.dtype)], dim=1)
        return Clips(frames, torch.cat([past.float(), self.action[:, None].float()], dim=1))

    @staticmethod
    def cat(parts: list[Transitions]) -> Transitions:
        """Concatenate batches (on the CPU); ``past_actions`` stays only if every part has it."""
        past = [p.past_actions for p in parts]
        return Transitions(
            torch.cat([p.context.cpu() for p in parts]),
            torch.cat([p.action.cpu().float() for p in parts]),
            torch.cat([p.next_frame.cpu() for p in parts]),
            None if any(a is None for a in past) else torch.cat([a.cpu().float() for a in past]),  # type: ignore[union-attr]
        )


@dataclass
class Clips:
    """A batch of clips: what pretraining feeds a model.

    Attributes:
        frames: ``(B, T + 1, C, H, W)`` frames (uint8 or float in [0, 1]).
        actions: ``(B, T, A)`` float action vectors; action ``t`` led from frame ``t`` to ``t + 1``.
    """

    frames: torch.Tensor
    actions: torch.Tensor

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def steps(self) -> int:
        """``T``, the transitions per clip."""
        return int(self.actions.shape[1])

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Clips:
        """The batch on ``device`` (actions as float32)."""
        return Clips(
            self.frames.to(device, non_blocking=non_blocking),
            self.actions.to(device, dtype=torch.float32, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Clips:
        """Page-locked copies (a DataLoader with ``pin_memory=True`` calls this; CUDA copies then overlap)."""
        return Clips(self.frames.pin_memory(), self.actions.pin_memory())

    def windows(self, k: int, start: int = 0) -> Transitions:
        """Every transition from frame ``start`` on, with its ``k``-frame context (frames before the clip's
        first repeat it, with no-op past actions): ``B * (T - start)`` transitions, clip-major."""
        b, t1 = self.frames.shape[:2]
        a = self.actions.shape[-1]
        pad = max(k - 1, 0)
        frames = torch.cat([self.frames[:, :1].expand(b, pad, *self.frames.shape[2:]), self.frames], dim=1)
        actions = torch.cat([self.actions.new_zeros(b, pad, a), self.actions.float()], dim=1)
        steps = range(start, t1 - 1)
        ctx = torch.stack([frames[:, t : t + k] for t in steps], dim=1).flatten(0, 1)
        past = torch.stack([actions[:, t : t + k - 1] for t in steps], dim=1).flatten(0, 1)
        act = self.actions[:, start:].float().flatten(0, 1)
        nxt = self.frames[:, start + 1 :].flatten(0, 1)
        return Transitions(ctx, act, nxt, past)


@dataclass
class LossOutput:
    """What :meth:`WorldModel.compute_loss` returns.

    Attributes:
        loss: Scalar training loss (with any batch-level regularisers).
        per_sample: ``(B,)`` per-transition loss, used as the replay priority (no batch-level terms).
        surprise: ``(B,)`` per-transition surprise (the curiosity signal before normalisation).
        metrics: Scalars to log (floats).
    """

    loss: torch.Tensor
    per_sample: torch.Tensor
    surprise: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class Stream:
    """Drives a world model along ``N`` parallel episodes, one step at a time, with everything it remembers: the
    ``k``-frame context, the actions between its frames (models with memory) and the model's own memory
    (:meth:`WorldModel.initial_state`). The curiosity wrapper, ``record``'s stepper and ``eval``'s scoring all
    step models through it, so a model with memory keeps it for the whole episode and starts afresh at a reset.

    Args:
        model: The world model.
        first_frames: ``(N, C, H, W)`` the episodes' first frames, at the model's frame size (uint8, or floats in
            [0, 1] for open-loop rollouts that feed predictions back); the context starts as ``k`` copies.
    """

    def __init__(self, model: WorldModel, first_frames: torch.Tensor) -> None:
        self.model = model
        k = model.context_frames
        first = torch.as_tensor(first_frames).cpu()
        self.context = first[:, None].repeat(1, k, 1, 1, 1)
        n = first.shape[0]
        self.past_actions = torch.zeros(n, k - 1, model.action_dim) if model.uses_past_actions else None
        self.state = model.initial_state(n)

    def __len__(self) -> int:
        return int(self.context.shape[0])

    def prepare(self, actions: torch.Tensor) -> object:
        """:meth:`WorldModel.prepare` of the next step under ``actions`` ``(N, A)``, before its frames exist."""
        dev = self.model.device
        past = None if self.past_actions is None else self.past_actions.to(dev)
        return self.model.prepare(self.context.to(dev), actions.to(dev, dtype=torch.float32), past, self.state)

    def transitions(self, actions: torch.Tensor, next_frames: torch.Tensor) -> Transitions:
        """The step's transitions (CPU), for a learner's buffer."""
        return Transitions(self.context, actions.cpu().float(), next_frames.cpu(), self.past_actions)

    def advance(self, prepared: object, actions: torch.Tensor, next_frames: torch.Tensor) -> None:
        """Take the step :meth:`prepare` began: the new frames join the context and the model updates its memory."""
        self.state = self.model.next_state(prepared)
        nxt = next_frames.cpu().to(self.context.dtype)
        self.context = torch.cat([self.context[:, 1:], nxt[:, None]], dim=1)
        if self.past_actions is not None:
            self.past_actions = torch.cat([self.past_actions[:, 1:], actions.cpu().float()[:, None]], dim=1)

    @torch.no_grad()
    def step(
        self, actions: torch.Tensor, next_frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Score and take one step: ``(surprise, per-sample loss, predicted frame or None)``, ``(N,)`` each."""
        prepared = self.prepare(actions)
        surprise, loss = self.model.evaluate_prepared(prepared, next_frames.to(self.model.device))
        predicted = self.model.predicted_frame(prepared)
        self.advance(prepared, actions, next_frames)
        return surprise, loss, predicted

    def restart(self, idx: np.ndarray | list[int], first_frames: torch.Tensor) -> None:
        """Start episodes ``idx`` afresh at ``first_frames`` ``(len(idx), C, H, W)`` (the others keep theirs)."""
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        if len(idx) == 0:
            return
        # fresh tensors: transitions handed out earlier keep the values they had
        self.context = self.context.clone()
        self.context[idx] = torch.as_tensor(first_frames).cpu().to(self.context.dtype)[:, None]
        if self.past_actions is not None:
            self.past_actions = self.past_actions.clone()
            self.past_actions[idx] = 0.0
        if self.state is not None:
            self.state = self.state.clone()
            self.state[idx.to(self.state.device)] = self.model.initial_state(len(idx)).to(self.state.dtype)

    @staticmethod
    def stack(streams: list[Stream]) -> Stream:
        """One stream of the episodes of ``streams`` (of one model), in order."""
        out = copy.copy(streams[0])
        out.context = torch.cat([s.context for s in streams])
        out.past_actions = None if out.past_actions is None else torch.cat([s.past_actions for s in streams])
        out.state = None if out.state is None else torch.cat([s.state for s in streams])
        return out

    def select(self, idx: np.ndarray | list[int]) -> Stream:
        """A new stream of episodes ``idx`` (copies), e.g. to roll some of them on open-loop."""
        idx_t = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        out = copy.copy(self)
        out.context = self.context[idx_t].clone()
        out.past_actions = None if self.past_actions is None else self.past_actions[idx_t].clone()
        out.state = None if self.state is None else self.state[idx_t.to(self.state.device)].clone()
        return out


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


class LearningProgress(WorldModel):
    """Learning progress of a base world model as the surprise.

    Surprise of a transition = ``max(0, error_old - error_now)``, where ``error_old`` comes from a frozen copy
    of the base model taken between ``lag_updates`` and ``2 * lag_updates`` optimiser steps ago. Transitions the
    model is learning to predict score high; ones it already predicts, or can never predict (noise, chaotic
    pushes), score near zero. Training is the base model's.

    Args:
        base: The world model whose progress is measured.
        lag_updates: Optimiser steps between snapshots of the lagged copy.
    """

    name = "progress"

    def __init__(self, base: WorldModel, lag_updates: int = 100) -> None:
        super().__init__(base.frame_shape, base.action_dim, base.context_frames, base.discrete_actions, base.device)
        self.base = base
        self.lag_updates = int(lag_updates)
        # Lagged copies are not submodules: they are neither optimised nor part of parameters().
        self._old = [copy.deepcopy(base).requires_grad_(False), copy.deepcopy(base).requires_grad_(False)]
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @property
    def lagged(self) -> WorldModel:
        """The frozen copy the current model is compared with."""
        return self._old[0]

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """The base loss; surprise replaced by the progress."""
        out = self.base.compute_loss(batch)
        old, _ = self.lagged.evaluate(batch)
        out.surprise = (old - out.surprise).clamp_min(0.0)
        return out

    @torch.no_grad()
    def evaluate(self, batch: Transitions) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102
        now, per_sample = self.base.evaluate(batch)
        old, _ = self.lagged.evaluate(batch)
        return (old - now).clamp_min(0.0), per_sample

    @property
    def uses_past_actions(self) -> bool:  # type: ignore[override]  # noqa: D102 - the base's
        return self.base.uses_past_actions

    @torch.no_grad()
    def prepare(self, context, action, past_actions=None, state=None) -> object:  # noqa: D102
        # both copies score from the context window alone: a memory built by one set of weights would not be the
        # lagged copy's, so progress over a model with memory compares the two on the same k frames
        return self.base.prepare(context, action, past_actions), self.lagged.prepare(context, action, past_actions)

    @torch.no_grad()
    def evaluate_prepared(self, prepared: object, next_frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102
        now_p, old_p = prepared  # type: ignore[misc]
        now, per_sample = self.base.evaluate_prepared(now_p, next_frame)
        old, _ = self.lagged.evaluate_prepared(old_p, next_frame)
        return (old - now).clamp_min(0.0), per_sample

    def predicted_frame(self, prepared: object) -> torch.Tensor | None:  # noqa: D102 - the current base model's
        return self.base.predicted_frame(prepared[0])  # type: ignore[index]

    def observe(self, batch: Transitions) -> None:  # noqa: D102
        self.base.observe(batch)

    @property
    def observes(self) -> bool:  # noqa: D102
        return self.base.observes

    @torch.no_grad()
    def after_update(self) -> None:
        """Forward the hook; every ``lag_updates`` steps shift the snapshots (old <- newer <- current)."""
        self.base.after_update()
        self.updates += 1
        if int(self.updates) % self.lag_updates == 0:
            self._old[0].load_state_dict(self._old[1].state_dict())
            self._old[1].load_state_dict(self.base.state_dict())

    def to(self, *args, **kwargs):  # noqa: D102
        out = super().to(*args, **kwargs)
        for m in getattr(self, "_old", []):
            m.to(*args, **kwargs)
        return out

    def state_dict(self, *args, **kwargs):  # noqa: D102 - include the lagged copies
        sd = super().state_dict(*args, **kwargs)
        for i, m in enumerate(getattr(self, "_old", [])):
            for key, val in m.state_dict().items():
                sd[f"_old{i}.{key}"] = val
        return sd

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # noqa: D102
        state_dict = dict(state_dict)
        for i, m in enumerate(self._old):
            prefix = f"_old{i}."
            sub = {k[len(prefix) :]: state_dict.pop(k) for k in list(state_dict) if k.startswith(prefix)}
            if sub:
                m.load_state_dict(sub)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def config(self) -> dict:  # noqa: D102
        return {"name": self.name, "base": self.base.config(), "lag_updates": self.lag_updates}


MODELS: dict[str, Callable[..., WorldModel]] = {
    "pixel": PixelPredictor,
    "latent": LatentPredictor,
    "rnd": RNDModel,
    "icm": ICMModel,
}
"""World model classes by variant name (``"progress"`` wraps one of these). Other modules add theirs with
:func:`register_world_model` (:mod:`tdwgym.agents.memory` adds the models with memory)."""


def register_world_model(cls: type[WorldModel]) -> type[WorldModel]:
    """Add a :class:`WorldModel` subclass to :data:`MODELS` under its ``name`` (usable as a class decorator)."""
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"world model name {cls.name!r} is taken by {MODELS[cls.name]!r}")
    MODELS[cls.name] = cls
    return cls


def make_world_model(
    name: str,
    frame_shape: tuple[int, int, int],
    action_dim: int,
    context_frames: int | None = None,
    discrete_actions: bool = True,
    device: str | torch.device = "auto",
    progress_base: str = "pixel",
    lag_updates: int = 100,
    **kwargs,
) -> WorldModel:
    """Build a world model by variant name.

    Args:
        name: ``"pixel"``, ``"latent"``, ``"rnd"``, ``"icm"`` or ``"progress"``.
        frame_shape: ``(C, H, W)`` of one frame.
        action_dim: Action vector length.
        context_frames: ``k``; None takes the model's default (2 for the frame-pair models, 16 for the models
            with memory).
        discrete_actions: Whether actions are one-hot.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ...
        progress_base: Base model of ``"progress"``.
        lag_updates: Snapshot interval of ``"progress"``.
        **kwargs: Model-specific arguments (``width``, ``feature_dim``, ...).

    Returns:
        The model, on its device.
    """
    if name == "progress":
        base = make_world_model(
            progress_base, frame_shape, action_dim, context_frames, discrete_actions, device, **kwargs
        )
        return LearningProgress(base, lag_updates=lag_updates)
    if name not in MODELS:
        raise ValueError(f"unknown world model {name!r}; choose from {[*MODELS, 'progress']}")
    if context_frames is not None:
        kwargs["context_frames"] = context_frames
    return MODELS[name](frame_shape, action_dim, discrete_actions=discrete_actions, device=device, **kwargs)


def world_model_from_config(config: dict, device: str | torch.device = "auto") -> WorldModel:
    """Rebuild a model from :meth:`WorldModel.config`."""
    cfg = dict(config)
    name = cfg.pop("name")
    if name == "progress":
        base = world_model_from_config(cfg["base"], device)
        return LearningProgress(base, lag_updates=cfg["lag_updates"])
    cfg["frame_shape"] = tuple(cfg["frame_shape"])
    return MODELS[name](**cfg, device=device)


PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "recurrent-32.pt"
"""The world model shipped with tdwgym (``--model pretrained``, ``--world-model pretrained``): the ``recurrent``
model at 32x32 pretrained by the command in docs/world_models.md."""


def resolve_model_path(spec: str | os.PathLike) -> Path:
    """``"pretrained"`` -> :data:`PRETRAINED`; anything else is a path."""
    return PRETRAINED if str(spec) == "pretrained" else Path(spec)


def _numpy_globals() -> list:
    """The numpy names an array in a checkpoint pickles to: data constructors only, no code."""
    import numpy.dtypes as dtypes

    return [np._core.multiarray._reconstruct, np.ndarray, np.dtype] + [
        getattr(dtypes, name) for name in dir(dtypes) if name.endswith("DType")
    ]


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain data, never code. Numpy arrays (in checkpoints of
    earlier releases) are allowed too: their constructors build data only."""
    with torch.serialization.safe_globals(_numpy_globals()):
        return torch.load(path, map_location=map_location, weights_only=True)


def load_world_model(path: str | os.PathLike, device: str | torch.device = "auto") -> WorldModel:
    """Rebuild a world model from a file, in eval mode: ``"pretrained"`` (the shipped model), a checkpoint of
    ``OnlineLearner.save`` / ``tdwgym train``, or ``tdwgym pretrain``'s ``world_model.pt`` (any dict with
    ``model_config`` and ``model``). Loads with ``torch.load(weights_only=True)``: tensors and plain data only, no
    code runs.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not a world-model checkpoint.
    """
    path = resolve_model_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"world-model checkpoint {path} does not exist")
    try:
        state = safe_load(path)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is "not a checkpoint"
        raise ValueError(f"{path} is not a world-model checkpoint: {exc}") from exc
    if not isinstance(state, dict) or "model_config" not in state or "model" not in state:
        raise ValueError(
            f"{path} is not a world-model checkpoint (expected a dict with 'model_config' and 'model', "
            "as OnlineLearner.save, `tdwgym train` and `tdwgym pretrain` write)"
        )
    model = world_model_from_config(state["model_config"], device=device)
    model.load_state_dict(state["model"])
    return model.eval()
