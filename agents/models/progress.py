"""Learning progress (``"progress"``): the decrease of a base model's error as the surprise (the noisy-TV
remedy)."""

from __future__ import annotations

import copy

import torch

from tdwgym.agents.models.base import (
    WorldModel,
)
from tdwgym.agents.models.data import LossOutput, Transitions


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

    @property
    def passes(self) -> tuple[str, ...]:  # type: ignore[override]  # noqa: D102 - the base's
        return self.base.passes

    @property
    def resolution(self) -> tuple[int, int]:  # noqa: D102 - the base's
        return self.base.resolution

    def frames_from(self, rgb, segmentation=None, depth=None) -> torch.Tensor:  # noqa: D102 - the base's
        return self.base.frames_from(rgb, segmentation, depth)

    def clip_encoder(self):  # noqa: D102 - the base's
        return self.base.clip_encoder()

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
