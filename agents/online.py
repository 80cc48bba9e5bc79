"""Online learning of a world model from a stream of transitions (torch and numpy only).

:class:`LossPrioritisedBuffer` is the fixed-size memory of a real-time video learner: while it has room every
transition goes in; once full, a new transition replaces the stored entry with the lowest loss if, and only if,
its own loss is higher. Stored losses are refreshed whenever an entry is trained on, so entries the model has
learned make room for new ones.

:class:`OnlineLearner` trains continuously: every observed batch is scored (surprise and loss), offered to the
buffer, and earns ``updates_per_transition`` optimiser steps. Each step trains on a batch that mixes the freshest
transitions (``fresh_fraction``) with entries drawn uniformly from the buffer. Model, optimiser, buffer and
counters checkpoint and restore together.

With ``background=True`` the optimiser steps run in a worker thread on a training copy of the model, while the
caller's thread keeps scoring with :attr:`OnlineLearner.model` (torch releases the GIL inside its kernels, so
training overlaps the simulation and the agent's own work). The caller decides everything (which transitions
are stored, which batch each step trains on) and the worker only executes, in order; every ``sync_every`` steps
the worker records a hand-over, the scorer takes the weights of the hand-over ``max_lag`` before the newest, and the
refreshed losses reach the buffer at that moment. The run is therefore as deterministic as the foreground one; it
differs only in that the scorer lags the training copy by ``max_lag`` to ``max_lag + 1`` hand-overs (PPO-style
curiosity implementations score a
whole rollout with the weights of the last one).
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import queue
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tdwgym.agents.models import Transitions, WorldModel, safe_load, world_model_from_config
from tdwgym.util.files import atomic_path

__all__ = ["LossPrioritisedBuffer", "OnlineLearner", "atomic_torch_save"]

WORKER_NICE = 10
"""Niceness of the background trainer thread (where the OS supports per-thread niceness): it takes the CPU time
the simulation and the agent leave idle, rather than competing with them for it."""


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`tdwgym.util.files.atomic_path` (whole or not at all, safe against kill -9
    mid-write; mode ``0o666`` less the umask, as every output)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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
        self.arrays: dict[str, np.ndarray] = {}
        """Storage per :class:`Transitions` field (``context``, ``action``, ``next_frame``, ``past_actions``)."""
        self.loss = np.full(self.capacity, -np.inf, dtype=np.float64)
        self.generation = np.zeros(self.capacity, dtype=np.int64)
        """How many times each slot has been written: a loss computed for an older occupant is not applied."""
        self.size = 0
        self.replacements = 0

    def __len__(self) -> int:
        return self.size

    @property
    def context(self) -> np.ndarray | None:
        """Stored context frames ``(capacity, k, C, H, W)`` (None before the first transition)."""
        return self.arrays.get("context")

    def _allocate(self, batch: Transitions) -> None:
        self.arrays = {
            k: np.zeros((self.capacity, *t.shape[1:]), dtype=t.cpu().numpy().dtype) for k, t in batch.fields().items()
        }

    def add(self, batch: Transitions, losses: np.ndarray | torch.Tensor) -> np.ndarray:
        """Offer transitions with their losses.

        Args:
            batch: Transitions (any device).
            losses: ``(B,)`` loss of each transition under the current model.

        Returns:
            ``(B,)`` slot each transition went to, or -1 when it was not admitted.
        """
        losses = torch.as_tensor(losses).detach().cpu().numpy().astype(np.float64).reshape(-1)
        if not self.arrays:
            self._allocate(batch)
        fields = batch.fields()
        if fields.keys() != self.arrays.keys():
            raise ValueError(f"transitions with fields {sorted(fields)} offered to a buffer of {sorted(self.arrays)}")
        values = {k: t.cpu().numpy() for k, t in fields.items()}
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
            for k, arr in self.arrays.items():
                arr[slot] = values[k][i]
            self.loss[slot] = loss
            self.generation[slot] += 1
            slots[i] = slot
        return slots

    def sample_indices(self, n: int) -> np.ndarray:
        """``n`` slots drawn uniformly (with replacement only when the buffer holds fewer than ``n``)."""
        return self.rng.choice(self.size, size=n, replace=self.size < n)

    def get(self, idx: np.ndarray) -> Transitions:
        """The transitions in slots ``idx`` as CPU tensors."""
        return Transitions(**{k: torch.from_numpy(arr[idx]) for k, arr in self.arrays.items()})

    def update_losses(self, idx: np.ndarray, losses: np.ndarray, generation: np.ndarray | None = None) -> None:
        """Refresh the stored losses of slots ``idx`` (only of slots still at ``generation``, when given)."""
        idx, losses = np.asarray(idx, dtype=np.int64), np.asarray(losses, dtype=np.float64)
        if generation is not None:
            keep = self.generation[idx] == np.asarray(generation)
            idx, losses = idx[keep], losses[keep]
        self.loss[idx] = losses

    def state_dict(self) -> dict:
        """Contents and generator state (arrays cut to the filled size)."""
        n = self.size
        return {
            "capacity": self.capacity,
            "size": n,
            "replacements": self.replacements,
            "context": None,  # no transition yet (else every stored field, cut to the filled size)
            # tensors, not numpy arrays: a checkpoint loads with torch.load(weights_only=True)
            **{k: torch.from_numpy(arr[:n].copy()) for k, arr in self.arrays.items()},
            "loss": torch.from_numpy(self.loss[:n].copy()),
            "generation": torch.from_numpy(self.generation[:n].copy()),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (capacity must match)."""
        if state["capacity"] != self.capacity:
            raise ValueError(f"buffer capacity {self.capacity} != saved {state['capacity']}")
        n = self.size = int(state["size"])
        self.replacements = int(state["replacements"])
        self.loss[:] = -np.inf
        self.loss[:n] = np.asarray(state["loss"])
        self.generation[:] = 0
        self.generation[:n] = np.asarray(state.get("generation", 1))
        self.arrays = {}
        if state["context"] is not None:
            for k in ("context", "action", "next_frame", "past_actions"):
                if state.get(k) is not None:
                    values = np.asarray(state[k])
                    self.arrays[k] = np.zeros((self.capacity, *values.shape[1:]), dtype=values.dtype)
                    self.arrays[k][:n] = values
        self.rng.bit_generator.state = state["rng"]


def _close_learner(ref: weakref.ref) -> None:
    learner = ref()
    if learner is not None:
        try:
            learner.close()
        except Exception:  # noqa: BLE001 - at exit, a failed flush must not hide the real error
            pass


@dataclass
class _Mark:
    """A hand-over point in the background worker's queue."""

    done: threading.Event = field(default_factory=threading.Event)
    state: dict[str, torch.Tensor] | None = None
    results: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]] = field(default_factory=list)


class OnlineLearner:
    """Trains a world model continuously from a stream of transitions.

    Args:
        model: The world model (the scorer: :meth:`observe` and :meth:`evaluate` use it).
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
        background: Run the optimiser steps in a worker thread on a training copy of the model (module
            docstring). The scorer takes the trained weights every ``sync_every`` steps.
        sync_every: Optimiser steps between hand-overs of the weights to the scorer (``background`` only).
        max_lag: Hand-overs the worker may have pending (``background`` only): the scorer takes the weights of
            the hand-over ``max_lag`` before the newest, and the caller waits only when the worker is that far
            behind. A lag lets the worker, which runs at a low priority, catch up whenever the CPU is idle (during
            PPO's own gradient steps, one core is).
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
        background: bool = False,
        sync_every: int = 8,
        max_lag: int = 4,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if updates_per_transition < 0:
            raise ValueError(f"updates_per_transition must be >= 0, got {updates_per_transition}")
        if sync_every < 1:
            raise ValueError(f"sync_every must be >= 1, got {sync_every}")
        if max_lag < 1:
            raise ValueError(f"max_lag must be >= 1, got {max_lag}")
        self.model = model
        self.batch_size = int(batch_size)
        self.updates_per_transition = float(updates_per_transition)
        self.fresh_fraction = float(fresh_fraction)
        self.learning_rate = float(learning_rate)
        self.max_grad_norm = max_grad_norm
        self.min_buffer = int(batch_size if min_buffer is None else min_buffer)
        self.background, self.sync_every, self.max_lag = bool(background), int(sync_every), int(max_lag)
        self.buffer = LossPrioritisedBuffer(capacity, seed=seed)
        # the copy the optimiser trains: the model itself in the foreground, a private copy in the background
        self.trainee: WorldModel = copy.deepcopy(model) if self.background else model
        params = [p for p in self.trainee.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=learning_rate)
        self.transitions_seen = 0
        self.updates = 0
        self._credit = 0.0
        self._fresh: Transitions | None = None
        self._fresh_slots: np.ndarray | None = None
        self.train_time_s = 0.0
        self.last_metrics: dict[str, float] = {}
        # background worker
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._marks: deque[_Mark] = deque()
        self._results: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]] = []
        self._since_mark = 0

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return self.model.device

    def evaluate(self, batch: Transitions) -> tuple[np.ndarray, np.ndarray]:
        """Surprise and per-sample loss (numpy, ``(B,)``) without training."""
        surprise, loss = self.model.evaluate(batch.to(self.device))
        return surprise.cpu().numpy(), loss.cpu().numpy()

    def prepare(
        self,
        context: torch.Tensor,
        action: torch.Tensor,
        past_actions: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> object:
        """Begin scoring transitions whose next frames are not known yet (:meth:`WorldModel.prepare`); pass the
        result to :meth:`observe` as ``prepared`` with the finished batch. The curiosity wrapper does this between
        sending the actions to the environments and receiving the frames, so the prediction overlaps simulation."""
        dev = self.device
        past = None if past_actions is None else past_actions.to(dev, dtype=torch.float32)
        return self.model.prepare(context.to(dev), action.to(dev, dtype=torch.float32), past, state)

    def observe(
        self, batch: Transitions, train: bool = True, update: bool = True, prepared: object | None = None
    ) -> np.ndarray:
        """Score new transitions, then (when ``train``) store them and run the optimiser steps they earn.

        The surprise is computed before any update on these transitions, so it is the model's prediction error
        on data it has not trained on.

        Args:
            batch: The new transitions.
            train: Whether to store and train; False only scores.
            update: Whether to run the earned optimiser steps now. False leaves them due, to be run by
                :meth:`run_due_updates` at a better moment (the curiosity wrapper starts them while the
                environments step).
            prepared: :meth:`prepare`'s result for ``batch.context`` and ``batch.action`` with the current
                weights; scoring then only compares it with ``batch.next_frame`` (same numbers as without it).

        Returns:
            ``(B,)`` surprise of each transition.
        """
        self._raise_worker_error()
        if train and self.model.observes:
            on_device = batch.to(self.device)
            if self.background:  # the worker gets its own copy: callers may reuse their arrays
                copy = Transitions(**{k: t.clone() for k, t in on_device.fields().items()})
                self._submit(("observe", copy))
            else:
                self.model.observe(on_device)
        if prepared is not None:
            s_t, l_t = self.model.evaluate_prepared(prepared, batch.next_frame.to(self.device))
            surprise, loss = s_t.cpu().numpy(), l_t.cpu().numpy()
        else:
            surprise, loss = self.evaluate(batch)
        if not train:
            return surprise
        self._fresh = batch
        self._fresh_slots = self.buffer.add(batch, loss)
        self.transitions_seen += len(batch)
        self._credit += len(batch) * self.updates_per_transition
        if len(self.buffer) < self.min_buffer:
            self._credit = 0.0
        if update:
            self.run_due_updates()
        return surprise

    def run_due_updates(self) -> int:
        """Run (in the background: hand to the worker) every optimiser step earned so far; returns how many."""
        n = 0
        while self._credit >= 1.0 and len(self.buffer) >= self.min_buffer:
            self._credit -= 1.0
            if self.background:
                self._schedule_update()
            else:
                self.update()
            n += 1
        return n

    def _training_batch(self) -> tuple[Transitions, np.ndarray]:
        n_fresh = 0
        parts: list[Transitions] = []
        slots: list[np.ndarray] = []
        if self._fresh is not None and self.fresh_fraction > 0:
            n_fresh = min(len(self._fresh), int(round(self.batch_size * self.fresh_fraction)))
            if n_fresh:
                parts.append(self._fresh.slice(slice(0, n_fresh)))
                slots.append(self._fresh_slots[:n_fresh])
        idx = self.buffer.sample_indices(self.batch_size - n_fresh)
        parts.append(self.buffer.get(idx))
        slots.append(idx)
        return Transitions.cat(parts), np.concatenate(slots)

    def _step(self, batch: Transitions) -> tuple[np.ndarray, dict[str, float]]:
        """One optimiser step of the trainee; per-sample losses and metrics."""
        start = time.perf_counter()
        self.trainee.train()
        out = self.trainee.compute_loss(batch.to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.trainee.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.trainee.after_update()
        per_sample = out.per_sample.detach().cpu().numpy().astype(np.float64)
        metrics = {"loss": float(out.loss.detach()), **out.metrics}
        self.train_time_s += time.perf_counter() - start
        return per_sample, metrics

    def update(self) -> dict[str, float]:
        """One optimiser step on a mixed fresh/uniform batch, now, in this thread; refreshes the stored losses of
        its entries. (In the background mode the queued steps finish first and the scorer takes the result.)"""
        self.flush()
        batch, slots = self._training_batch()
        per_sample, metrics = self._step(batch)
        stored = slots >= 0
        self.buffer.update_losses(slots[stored], per_sample[stored])
        self.updates += 1
        self.last_metrics = metrics
        if self.background:
            self.model.load_state_dict(self.trainee.state_dict())
        return self.last_metrics

    # ---------------------------------------------------------------------------------------- background worker

    def _submit(self, item: tuple[Any, ...]) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="world-model-trainer", daemon=True)
            self._thread.start()
            # a worker still inside a torch kernel when the interpreter exits aborts the process: stop it first
            atexit.register(_close_learner, weakref.ref(self))
        self._queue.put(item)

    def _work(self) -> None:
        if WORKER_NICE and hasattr(os, "setpriority"):
            try:  # Linux: niceness is per thread, and the worker's torch threads inherit it
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
            except OSError:
                pass
        while True:
            item = self._queue.get()
            kind = item[0]
            if kind == "stop":
                return
            try:
                if self._error is not None:
                    continue  # after a failure only the hand-over events are still set
                if kind == "observe":
                    self.trainee.observe(item[1])
                elif kind == "update":
                    _, batch, stored, slots, generation = item
                    per_sample, metrics = self._step(batch)
                    self._results.append((slots, generation, per_sample[stored], metrics))
                elif kind == "idle":
                    pass
                elif kind == "mark":
                    mark: _Mark = item[1]
                    mark.state = {k: v.detach().clone() for k, v in self.trainee.state_dict().items()}
                    mark.results, self._results = self._results, []
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                self._error = e
            finally:
                if kind in ("mark", "idle"):
                    item[1].done.set()

    def _schedule_update(self) -> None:
        batch, slots = self._training_batch()
        stored = slots >= 0
        generation = self.buffer.generation[slots[stored]].copy()
        self._submit(("update", batch, stored, slots[stored], generation))
        self.updates += 1
        self._since_mark += 1
        if self._since_mark >= self.sync_every:
            self._since_mark = 0
            mark = _Mark()
            self._submit(("mark", mark))
            self._marks.append(mark)
            if len(self._marks) > self.max_lag:  # pipelined: take over an earlier hand-over's weights, go on
                self._apply(self._marks.popleft())

    def _apply(self, mark: _Mark) -> None:
        mark.done.wait()
        self._raise_worker_error()
        assert mark.state is not None
        self.model.load_state_dict(mark.state)
        for slots, generation, per_sample, metrics in mark.results:
            self.buffer.update_losses(slots, per_sample, generation)
            self.last_metrics = metrics

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            err = self._error
            # drain the work queued before the failure (the worker skips it while the error is set), then go on
            # training from the scorer's last good weights
            drain = _Mark()
            self._queue.put(("mark", drain))
            drain.done.wait()
            self._error, self._results, self._since_mark = None, [], 0
            self._marks.clear()
            self.trainee.load_state_dict(self.model.state_dict())
            raise RuntimeError(f"world-model training failed in the background thread: {err!r}") from err

    def wait_idle(self) -> None:
        """Wait until the background worker has run everything queued, without handing anything to the scorer:
        the trainee's state can then be read (a checkpoint does this, so saving never changes the run)."""
        if not self.background or self._thread is None:
            return
        idle = _Mark()
        self._submit(("idle", idle))
        idle.done.wait()
        self._raise_worker_error()

    def flush(self) -> None:
        """Finish every queued optimiser step and give the scorer the newest weights (background only)."""
        if not self.background or self._thread is None:
            return
        self._since_mark = 0
        mark = _Mark()
        self._submit(("mark", mark))
        self._marks.append(mark)
        while self._marks:
            self._apply(self._marks.popleft())

    def close(self) -> None:
        """Finish queued work and stop the background worker (a later :meth:`observe` starts a new one)."""
        if self._thread is not None and self._thread.is_alive():
            try:
                self.flush()
            finally:
                self._queue.put(("stop",))
                self._thread.join(timeout=60)
        self._thread = None

    # ----------------------------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        """Model config and weights (the trainee's, with every queued step done), optimiser, buffer and counters.

        Reading it leaves the run unchanged: the scorer keeps its lag and the pending hand-overs stay pending. A
        learner restored from it starts with scorer and trainee equal."""
        self.wait_idle()
        return {
            "model_config": self.trainee.config(),
            "model": self.trainee.state_dict(),
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
                "background": self.background,
                "sync_every": self.sync_every,
                "max_lag": self.max_lag,
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output into this learner (same model architecture)."""
        self.flush()
        self.trainee.load_state_dict(state["model"])
        if self.trainee is not self.model:
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
        """Restore a checkpoint written by :meth:`save`.

        Raises:
            ValueError: The checkpoint holds another kind of world model (variant or shape) than this learner's.
        """
        state = safe_load(path, map_location=self.device)
        saved, mine = state.get("model_config") or {}, self.trainee.config()
        differ = [k for k in mine if k in saved and json.dumps(saved[k]) != json.dumps(mine[k])]
        if differ:
            detail = ", ".join(f"{k} {saved[k]!r} (this run: {mine[k]!r})" for k in differ)
            raise ValueError(
                f"{path} holds a different world model: {detail}; resume with the settings it was trained with, "
                "or start a new run"
            )
        self.load_state_dict(state)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "auto", background: bool | None = None
    ) -> OnlineLearner:
        """Build model and learner from a checkpoint alone (``background`` overrides the saved setting)."""
        state = safe_load(path)
        model = world_model_from_config(state["model_config"], device=device)
        hparams = dict(state["hparams"])
        if background is not None:
            hparams["background"] = background
        learner = cls(model, **hparams)
        learner.load_state_dict(state)
        return learner
