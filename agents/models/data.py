"""What world models take and give: batches of :class:`Transitions` and :class:`Clips`, the :class:`LossOutput`
of a training step, and the :class:`Stream` that drives a model along parallel episodes with its memory."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


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
        model: The world model (a :class:`~tdwgym.agents.models.base.WorldModel`).
        first_frames: ``(N, C, H, W)`` the episodes' first frames, at the model's frame size (uint8, or floats in
            [0, 1] for open-loop rollouts that feed predictions back); the context starts as ``k`` copies.
    """

    def __init__(self, model: Any, first_frames: torch.Tensor) -> None:
        self.model = model
        k = model.context_frames
        first = torch.as_tensor(first_frames).cpu()
        self.context = first[:, None].repeat(1, k, *([1] * (first.dim() - 1)))
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
