"""The SB3 callback that logs what the curiosity reward is doing, in any stable-baselines3 training loop.

:class:`CuriosityCallback` records, once per rollout, the :class:`~tdwgym.agents.curiosity.CuriosityVecEnv`'s
statistics under ``curiosity/`` (raw, excess and normalised intrinsic reward, intrinsic-return std, what each action
is paid) and ``world_model/`` (loss, updates, buffer size, training time), and what the agent did under
``rollout/`` (pushes that hit or moved an object per 1,000 steps, the share of frames with an object in view, env
steps per second). They go to SB3's logger: TensorBoard, CSV, stdout, whatever it is configured with::

    venv = CuriosityVecEnv(VecMonitor(DummyVecEnv([make_env] * 4)))
    model = PPO("CnnPolicy", venv, tensorboard_log="runs/tb")
    model.learn(20_000, callback=CuriosityCallback())

``tdwgym train``'s own callback is this one plus checkpoints and ``metrics.jsonl``.
"""

from __future__ import annotations

import time

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from tdwgym.agents.curiosity import CuriosityVecEnv
from tdwgym.util.progress_bar import Progress, progress_bar

__all__ = ["CuriosityCallback", "ProgressCallback", "find_curiosity"]


def find_curiosity(venv: VecEnv | None) -> CuriosityVecEnv | None:
    """The :class:`CuriosityVecEnv` in a stack of VecEnv wrappers (``VecFrameStack``, ``VecTransposeImage``, ...
    above or below it), or None."""
    while venv is not None:
        if isinstance(venv, CuriosityVecEnv):
            return venv
        venv = venv.venv if isinstance(venv, VecEnvWrapper) else None
    return None


class CuriosityCallback(BaseCallback):
    """Logs ``curiosity/``, ``world_model/`` and ``rollout/`` scalars at the end of every rollout.

    Args:
        curiosity: The curiosity wrapper; None finds it in the model's env stack when training starts (and logs
            only ``rollout/`` when there is none: plain PPO).
        verbose: SB3 verbosity.
    """

    def __init__(self, curiosity: CuriosityVecEnv | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.curiosity = curiosity
        self.last_row: dict[str, float] = {}
        """The scalars of the latest rollout, with ``step`` (the model's step count)."""
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.steps = self.pushes_moved = self.pushes_hit = self.in_view = 0
        self.t0 = time.perf_counter()

    def _on_training_start(self) -> None:
        if self.curiosity is None:
            self.curiosity = find_curiosity(self.training_env)
        self._reset_counts()

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            self.steps += 1
            push = info.get("push") or {}
            self.pushes_moved += bool(push.get("moved", False))
            self.pushes_hit += bool(push.get("hit", False))
            self.in_view += int(info.get("objects_in_view", 0) or 0) > 0
        return True

    def rollout_scalars(self) -> dict[str, float]:
        """The scalars since the last call (empties the counters and the wrapper's accumulators)."""
        row: dict[str, float] = {"step": float(self.num_timesteps)}
        if self.steps:
            row["rollout/pushes_moved_per_1k"] = 1000.0 * self.pushes_moved / self.steps
            row["rollout/pushes_hit_per_1k"] = 1000.0 * self.pushes_hit / self.steps
            row["rollout/object_in_view_frac"] = self.in_view / self.steps
            row["rollout/steps_per_s"] = self.steps / max(time.perf_counter() - self.t0, 1e-9)
        if self.curiosity is not None:
            row.update(self.curiosity.pop_stats())
        self._reset_counts()
        return row

    def _on_rollout_end(self) -> None:
        self.last_row = self.rollout_scalars()
        for k, v in self.last_row.items():
            if k != "step":
                self.logger.record(k, v)


class ProgressCallback(BaseCallback):
    """Training progress in env steps, in tdwgym's one progress style (:func:`tdwgym.util.progress_bar.progress_bar`:
    a bar on a terminal, plain lines in a log); ``tdwgym train`` passes it instead of SB3's ``progress_bar=True``.

    Args:
        desc: The lines' prefix.
    """

    def __init__(self, desc: str = "train") -> None:
        super().__init__()
        self.desc = desc
        self.bar: Progress | None = None

    def _on_training_start(self) -> None:
        total = int(self.locals["total_timesteps"])  # SB3 counts the steps of a resumed run in it
        self.bar = progress_bar(total=total, initial=self.model.num_timesteps, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        if self.bar is not None:
            self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
