"""Online learning of a world model from a stream of transitions (torch and numpy only).

:class:`LossPrioritisedBuffer` is the fixed-size memory of a real-time video learner: while it has room every
transition goes in; once full, a new transition replaces the stored entry with the lowest loss if, and only if,
its own loss is higher. Stored losses are refreshed whenever an entry is trained on, so entries the model has
learned make room for new ones.

:class:`OnlineLearner` trains continuously: every observed batch is scored (surprise and loss), offered to the
buffer, and earns ``updates_per_transition`` optimiser steps. Each step trains on a batch that mixes the freshest
transitions (``fresh_fraction``) with entries drawn uniformly from the buffer. Model, optimiser, buffer and
counters checkpoint and restore together.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tdwgym.agents.models import Transitions, WorldModel, world_model_from_config

__all__ = ["LossPrioritisedBuffer", "OnlineLearner", "atomic_torch_save"]


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename it over ``path`` (safe against kill -9 mid-write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class LossPrioritisedBuffer:
    """Fixed-capacity transition store that keeps the highest-loss transitions.

    Args:
        capacity: Maximum number of transitions.
        seed: Seed of the sampling generator.
    """

    def __init__(self, capacity: int, seed: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.rng = np.random.default_rng(seed)
        self.context: np.ndarray | None = None
        self.action: np.ndarray | None = None
        self.next_frame: np.ndarray | None = None
        self.loss = np.full(self.capacity, -np.inf, dtype=np.float64)
        self.size = 0
        self.replacements = 0

    def __len__(self) -> int:
        return self.size

    def _allocate(self, batch: Transitions) -> None:
        def alloc(t: torch.Tensor) -> np.ndarray:
            return np.zeros((self.capacity, *t.shape[1:]), dtype=t.cpu().numpy().dtype)

        self.context, self.action, self.next_frame = alloc(batch.context), alloc(batch.action), alloc(batch.next_frame)

    def add(self, batch: Transitions, losses: np.ndarray | torch.Tensor) -> np.ndarray:
        """Offer transitions with their losses.

        Args:
            batch: Transitions (any device).
            losses: ``(B,)`` loss of each transition under the current model.

        Returns:
            ``(B,)`` slot each transition went to, or -1 when it was not admitted.
        """
        losses = torch.as_tensor(losses).detach().cpu().numpy().astype(np.float64).reshape(-1)
        if self.context is None:
            self._allocate(batch)
        ctx, act, nxt = batch.context.cpu().numpy(), batch.action.cpu().numpy(), batch.next_frame.cpu().numpy()
        slots = np.full(len(losses), -1, dtype=np.int64)
        for i, loss in enumerate(losses):
            if self.size < self.capacity:
                slot = self.size
                self.size += 1
            else:
                slot = int(np.argmin(self.loss))
                if not loss > self.loss[slot]:
                    continue
                self.replacements += 1
            self.context[slot], self.action[slot], self.next_frame[slot] = ctx[i], act[i], nxt[i]
            self.loss[slot] = loss
            slots[i] = slot
        return slots

    def sample_indices(self, n: int) -> np.ndarray:
        """``n`` slots drawn uniformly (with replacement only when the buffer holds fewer than ``n``)."""
        return self.rng.choice(self.size, size=n, replace=self.size < n)

    def get(self, idx: np.ndarray) -> Transitions:
        """The transitions in slots ``idx`` as CPU tensors."""
        return Transitions(
            torch.from_numpy(self.context[idx]),
            torch.from_numpy(self.action[idx]),
            torch.from_numpy(self.next_frame[idx]),
        )

    def update_losses(self, idx: np.ndarray, losses: np.ndarray) -> None:
        """Refresh the stored losses of slots ``idx``."""
        self.loss[idx] = losses

    def state_dict(self) -> dict:
        """Contents and generator state (arrays cut to the filled size)."""
        n = self.size
        return {
            "capacity": self.capacity,
            "size": n,
            "replacements": self.replacements,
            "context": None if self.context is None else self.context[:n].copy(),
            "action": None if self.action is None else self.action[:n].copy(),
            "next_frame": None if self.next_frame is None else self.next_frame[:n].copy(),
            "loss": self.loss[:n].copy(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (capacity must match)."""
        if state["capacity"] != self.capacity:
            raise ValueError(f"buffer capacity {self.capacity} != saved {state['capacity']}")
        n = self.size = int(state["size"])
        self.replacements = int(state["replacements"])
        self.loss[:] = -np.inf
        self.loss[:n] = state["loss"]
        if state["context"] is not None:
            self.context, self.action, self.next_frame = (
                np.zeros((self.capacity, *state[k].shape[1:]), dtype=state[k].dtype)
                for k in ("context", "action", "next_frame")
            )
            self.context[:n], self.action[:n], self.next_frame[:n] = (
                state["context"],
                state["action"],
                state["next_frame"],
            )
        self.rng.bit_generator.state = state["rng"]


class OnlineLearner:
    """Trains a world model continuously from a stream of transitions.

    Args:
        model: The world model.
        capacity: Buffer capacity (transitions).
        batch_size: Transitions per optimiser step.
        updates_per_transition: Optimiser steps earned per observed transition (fractions accumulate; 0.25 is
            one step every 4 transitions).
        fresh_fraction: Share of each training batch taken from the newest observed transitions; the rest is
            drawn uniformly from the buffer.
        learning_rate: Adam learning rate.
        max_grad_norm: Gradient clipping norm (``None`` disables it).
        min_buffer: No training until the buffer holds this many transitions.
        seed: Seed of the buffer's sampler.
    """

    def __init__(
        self,
        model: WorldModel,
        capacity: int = 1000,
        batch_size: int = 32,
        updates_per_transition: float = 0.25,
        fresh_fraction: float = 0.25,
        learning_rate: float = 3e-4,
        max_grad_norm: float | None = 1.0,
        min_buffer: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.model = model
        self.batch_size = int(batch_size)
        self.updates_per_transition = float(updates_per_transition)
        self.fresh_fraction = float(fresh_fraction)
        self.learning_rate = float(learning_rate)
        self.max_grad_norm = max_grad_norm
        self.min_buffer = int(batch_size if min_buffer is None else min_buffer)
        self.buffer = LossPrioritisedBuffer(capacity, seed=seed)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=learning_rate)
        self.transitions_seen = 0
        self.updates = 0
        self._credit = 0.0
        self._fresh: Transitions | None = None
        self._fresh_slots: np.ndarray | None = None
        self.train_time_s = 0.0
        self.last_metrics: dict[str, float] = {}

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return self.model.device

    def evaluate(self, batch: Transitions) -> tuple[np.ndarray, np.ndarray]:
        """Surprise and per-sample loss (numpy, ``(B,)``) without training."""
        surprise, loss = self.model.evaluate(batch.to(self.device))
        return surprise.cpu().numpy(), loss.cpu().numpy()

    def observe(self, batch: Transitions, train: bool = True) -> np.ndarray:
        """Score new transitions, then (when ``train``) store them and run the optimiser steps they earn.

        The surprise is computed before any update on these transitions, so it is the model's prediction error
        on data it has not trained on.

        Args:
            batch: The new transitions.
            train: Whether to store and train; False only scores.

        Returns:
            ``(B,)`` surprise of each transition.
        """
        if train:
            self.model.observe(batch.to(self.device))
        surprise, loss = self.evaluate(batch)
        if not train:
            return surprise
        self._fresh = batch
        self._fresh_slots = self.buffer.add(batch, loss)
        self.transitions_seen += len(batch)
        self._credit += len(batch) * self.updates_per_transition
        while self._credit >= 1.0 and len(self.buffer) >= self.min_buffer:
            self._credit -= 1.0
            self.update()
        if len(self.buffer) < self.min_buffer:
            self._credit = 0.0
        return surprise

    def _training_batch(self) -> tuple[Transitions, np.ndarray]:
        n_fresh = 0
        parts: list[Transitions] = []
        slots: list[np.ndarray] = []
        if self._fresh is not None and self.fresh_fraction > 0:
            n_fresh = min(len(self._fresh), int(round(self.batch_size * self.fresh_fraction)))
            if n_fresh:
                parts.append(
                    Transitions(
                        self._fresh.context[:n_fresh], self._fresh.action[:n_fresh], self._fresh.next_frame[:n_fresh]
                    )
                )
                slots.append(self._fresh_slots[:n_fresh])
        idx = self.buffer.sample_indices(self.batch_size - n_fresh)
        parts.append(self.buffer.get(idx))
        slots.append(idx)
        batch = Transitions(
            torch.cat([p.context.cpu() for p in parts]),
            torch.cat([p.action.cpu().float() for p in parts]),
            torch.cat([p.next_frame.cpu() for p in parts]),
        )
        return batch, np.concatenate(slots)

    def update(self) -> dict[str, float]:
        """One optimiser step on a mixed fresh/uniform batch; refreshes the stored losses of its entries."""
        start = time.perf_counter()
        batch, slots = self._training_batch()
        self.model.train()
        out = self.model.compute_loss(batch.to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.model.after_update()
        per_sample = out.per_sample.detach().cpu().numpy().astype(np.float64)
        stored = slots >= 0
        self.buffer.update_losses(slots[stored], per_sample[stored])
        self.updates += 1
        self.last_metrics = {"loss": float(out.loss.detach()), **out.metrics}
        self.train_time_s += time.perf_counter() - start
        return self.last_metrics

    # ----------------------------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        """Model config and weights, optimiser, buffer and counters."""
        return {
            "model_config": self.model.config(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": self.buffer.state_dict(),
            "counters": {
                "transitions_seen": self.transitions_seen,
                "updates": self.updates,
                "credit": self._credit,
                "train_time_s": self.train_time_s,
            },
            "hparams": {
                "batch_size": self.batch_size,
                "updates_per_transition": self.updates_per_transition,
                "fresh_fraction": self.fresh_fraction,
                "learning_rate": self.learning_rate,
                "max_grad_norm": self.max_grad_norm,
                "min_buffer": self.min_buffer,
                "capacity": self.buffer.capacity,
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output into this learner (same model architecture)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        c = state["counters"]
        self.transitions_seen, self.updates = int(c["transitions_seen"]), int(c["updates"])
        self._credit, self.train_time_s = float(c["credit"]), float(c["train_time_s"])
        self._fresh = self._fresh_slots = None

    def save(self, path: str | os.PathLike) -> None:
        """Checkpoint to ``path`` (atomic)."""
        atomic_torch_save(self.state_dict(), path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by :meth:`save`."""
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=False))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "auto") -> OnlineLearner:
        """Build model and learner from a checkpoint alone."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = world_model_from_config(state["model_config"], device=device)
        learner = cls(model, **state["hparams"])
        learner.load_state_dict(state)
        return learner
