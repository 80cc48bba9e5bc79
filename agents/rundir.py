"""The training run folder: the one type that knows its layout, reads it and writes it.

``tdwgym train`` writes, and ``record``, ``eval``, ``compare`` and the SB3 policy loader read::

    RUN/
      config.json                     TrainConfig as JSON (env id, env kwargs, frame stack, ...)
      metrics.jsonl                   one row of scalars per PPO rollout
      tb/                             TensorBoard logs
      checkpoints/
        latest.json                   {"dir": "step_0000020000", "num_timesteps": ..., "time": ...}
        step_0000020000/              agent.zip, world_model.pt, curiosity.json (each checkpoint in its own folder)
      training.png                    intrinsic reward, world-model loss and pushes over training
      rollout.mp4                     the final rollout
      eval/                           `tdwgym eval --run RUN`'s report (default)
      videos/                         `tdwgym record --run RUN`'s videos (default)

A checkpoint is never rewritten in place (:meth:`RunDir.checkpoint`), and ``latest.json`` is replaced atomically
last, so a kill at any moment leaves a complete checkpoint to resume from. An ``agent.zip`` or ``world_model.pt``
directly in the folder is read too (a folder put together by hand).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tdwgym.util.errors import UsageError
from tdwgym.util.files import link_leading_out, read_json, write_atomic

__all__ = ["RunDir", "RunDirExistsError"]


class RunDirExistsError(FileExistsError):
    """A fresh training run was pointed at a folder that holds another run's checkpoints."""


class RunDir:
    """A ``tdwgym train`` run folder (it need not exist yet).

    Args:
        path: The folder.
    """

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    TENSORBOARD = "tb"
    CHECKPOINTS = "checkpoints"
    LATEST = "latest.json"
    AGENT = "agent.zip"
    WORLD_MODEL = "world_model.pt"
    STATISTICS = "curiosity.json"
    PLOT = "training.png"
    VIDEO = "rollout.mp4"
    EVAL = "eval"
    VIDEOS = "videos"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # ------------------------------------------------------------------------------------------------ layout

    @property
    def config_path(self) -> Path:
        """``config.json``."""
        return self.path / self.CONFIG

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl``."""
        return self.path / self.METRICS

    @property
    def tensorboard_dir(self) -> Path:
        """TensorBoard's log folder."""
        return self.path / self.TENSORBOARD

    @property
    def checkpoints_dir(self) -> Path:
        """The folder of checkpoint folders."""
        return self.path / self.CHECKPOINTS

    @property
    def plot_path(self) -> Path:
        """The training plot."""
        return self.path / self.PLOT

    @property
    def video_path(self) -> Path:
        """The final rollout video."""
        return self.path / self.VIDEO

    @property
    def eval_dir(self) -> Path:
        """Default folder of ``tdwgym eval``'s report."""
        return self.path / self.EVAL

    @property
    def videos_dir(self) -> Path:
        """Default folder of ``tdwgym record``'s videos."""
        return self.path / self.VIDEOS

    # --------------------------------------------------------------------------------------------- the folder

    def holds_run(self) -> bool:
        """Whether the folder holds a run's checkpoints."""
        return self.checkpoints_dir.exists()

    def require(self) -> RunDir:
        """This run folder, checked to exist.

        Raises:
            FileNotFoundError: It does not exist, or is a file.
        """
        if not self.path.exists():
            raise FileNotFoundError(f"run folder {self.path} does not exist")
        if not self.path.is_dir():
            raise FileNotFoundError(f"run folder {self.path} is not a folder")
        return self

    def prepare_fresh(self, overwrite: bool = False) -> None:
        """Make the folder ready for a fresh run: refuse one that holds a run, or with ``overwrite`` delete that
        run's checkpoints, metrics, logs, plot and video; then create it.

        Raises:
            RunDirExistsError: The folder holds a run and ``overwrite`` is False.
        """
        if self.holds_run() and not overwrite:
            raise RunDirExistsError(
                f"{self.path} already holds a training run (checkpoints/). Continue it with `tdwgym train --resume "
                f"{self.path}` (train(resume=...)), or start over and delete it with `--overwrite` "
                "(TrainConfig(overwrite=True)), or pick another --out."
            )
        for folder in (self.checkpoints_dir, self.tensorboard_dir):
            if folder.is_symlink():  # the link goes, never what it points at
                folder.unlink()
            shutil.rmtree(folder, ignore_errors=True)
        for file in (self.metrics_path, self.plot_path, self.video_path):
            file.unlink(missing_ok=True)
        self.check_writes_inside(option="--out")
        self.path.mkdir(parents=True, exist_ok=True)

    def check_writes_inside(self, *entries: Path, option: str = "--resume", instead: str | None = None) -> None:
        """Refuse a run folder where tdwgym would write through a symbolic link leading out of it, at any level: an
        entry it writes (``entries``; default: those a training run writes, ``checkpoints/``, ``tb/``,
        ``metrics.jsonl``, the plot and the video), a folder on the way to one, or anything inside one
        (``checkpoints/step_N``, ``videos/clip.mp4``): writes never follow a link out of the run folder
        (:func:`~tdwgym.util.files.link_leading_out`).

        Raises:
            UsageError: One line naming the link, where it leads and what to do.
        """
        found = link_leading_out(
            self.path,
            *(
                entries
                or (self.checkpoints_dir, self.tensorboard_dir, self.metrics_path, self.plot_path, self.video_path)
            ),
        )
        if found is not None:
            link, target = found
            instead = instead or f"give another {option}"
            raise UsageError(
                f"{option} {self.path}: {link} is a symbolic link to {target}, outside the run folder, and tdwgym "
                f"writes only inside it; replace the link with a folder or a file, or {instead}"
            )

    # ------------------------------------------------------------------------------------------------- config

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict (empty when the folder has none).

        Raises:
            DamagedFileError: (a ValueError) one line naming the file, when it does not read back.
        """
        if not self.config_path.exists():
            return {}
        return read_json(
            self.config_path,
            "it holds the run's settings (TrainConfig as JSON): restore it, or start a new run with --overwrite",
        )

    def write_config(self, config: dict[str, Any]) -> Path:
        """Write ``config.json`` (atomically)."""
        write_atomic(self.config_path, json.dumps(config, indent=2) + "\n")
        return self.config_path

    @property
    def env_id(self) -> str | None:
        """The env the run trained on, or None when its config names none."""
        return self.read_config().get("env_id") or None

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The env's ``gym.make`` arguments of the run."""
        return dict(self.read_config().get("env_kwargs") or {})

    @property
    def frame_stack(self) -> int:
        """Frames the run's agent stacks."""
        return int(self.read_config().get("frame_stack", 1) or 1)

    # -------------------------------------------------------------------------------------------- checkpoints

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint folder ``latest.json`` names (None without one). If the pointer is damaged or names a
        missing folder: the newest complete checkpoint folder, with a warning (a folder only gets its ``step_*``
        name once every file in it is written).

        Raises:
            ValueError: The pointer is damaged and no complete checkpoint is left.
        """
        root = self.checkpoints_dir
        pointer = root / self.LATEST
        if not pointer.exists():
            return None
        try:
            named = root / json.loads(pointer.read_text())["dir"]
            if named.is_dir():
                return named
            problem = f"names {named.name}, which does not exist"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"is damaged ({exc})"
        folders = sorted(p for p in root.glob("step_*") if p.is_dir())
        if not folders:
            raise ValueError(f"{pointer} {problem}, and {root} holds no complete checkpoint to resume from")
        warnings.warn(
            f"{pointer} {problem}; resuming from the newest complete checkpoint, {folders[-1].name}", stacklevel=2
        )
        return folders[-1]

    def _latest_or_top(self, name: str) -> Path | None:
        """``name`` in the latest checkpoint, else directly in the folder, else None."""
        with contextlib.suppress(ValueError):
            ckpt = self.latest_checkpoint()
            if ckpt is not None and (ckpt / name).is_file():
                return ckpt / name
        direct = self.path / name
        return direct if direct.is_file() else None

    def agent_path(self) -> Path | None:
        """The newest ``agent.zip`` (the latest checkpoint's, else one in the folder), or None."""
        return self._latest_or_top(self.AGENT)

    def world_model_path(self) -> Path | None:
        """The newest ``world_model.pt`` (the latest checkpoint's, else one in the folder), or None."""
        return self._latest_or_top(self.WORLD_MODEL)

    def statistics_path(self, checkpoint: Path) -> Path:
        """The curiosity wrapper's statistics in a checkpoint folder."""
        return checkpoint / self.STATISTICS

    @contextlib.contextmanager
    def checkpoint(self, num_timesteps: int, keep: int = 2) -> Iterator[Path]:
        """Write a checkpoint: the block writes its files into the folder yielded; when the block ends the folder
        gets its ``step_*`` name, ``latest.json`` points at it, and all but the newest ``keep`` are deleted.

        The files go to a staging folder that is renamed once complete (a second checkpoint at the same step gets
        a suffix), and ``latest.json`` switches atomically. A kill at any moment leaves the previous checkpoint
        whole and ``latest.json`` pointing at a complete one.
        """
        root = self.checkpoints_dir
        root.mkdir(parents=True, exist_ok=True)
        name = base = f"step_{int(num_timesteps):010d}"
        suffix = 0
        while (root / name).exists():
            suffix += 1
            name = f"{base}_{suffix}"
        staging = root / f".{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            yield staging
        except BaseException:  # a failed save (a full disk, ...) leaves no partial folder; the last one stays
            shutil.rmtree(staging, ignore_errors=True)
            raise
        os.rename(staging, root / name)
        write_atomic(
            root / self.LATEST, json.dumps({"dir": name, "num_timesteps": int(num_timesteps), "time": time.time()})
        )
        old = sorted(p for p in root.glob("step_*") if p.is_dir() and p.name != name)
        for p in old[: max(0, len(old) - (keep - 1))]:
            shutil.rmtree(p, ignore_errors=True)
        for p in root.glob(".step_*.partial"):  # left by a checkpoint that was killed
            shutil.rmtree(p, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------ metrics

    def read_metrics(self) -> list[dict[str, float]]:
        """Rows of ``metrics.jsonl`` (a torn last line from a kill is skipped)."""
        rows = []
        if self.metrics_path.exists():
            for line in self.metrics_path.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def append_metrics(self, row: dict[str, float]) -> None:
        """Append one row to ``metrics.jsonl``."""
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def truncate_metrics(self, max_step: float) -> None:
        """Keep the rows up to ``max_step`` (a resumed run rewrites those after its checkpoint)."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= max_step]
        write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
