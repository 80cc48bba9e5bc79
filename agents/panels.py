"""``tdwgym record`` with a world model or a training run: the run's agent, env settings and world-model panels.

:func:`record_episode` resolves a run folder (:class:`~tdwgym.agents.rundir.RunDir`: its env, env arguments, agent
and world model) and a world model (a ``world_model.pt``, a run folder, or ``"pretrained"``), and hands a
:class:`~tdwgym.agents.evaluate.ModelStepper` to core's :func:`tdwgym.tools.recording.record_episode`, which draws
the panels.

    tdwgym record --env TDWRoom-Occlusion-v0 --policy orbit --steps 120
    tdwgym record --run runs/curiosity --steps 300            # the run's agent and world model, four panels
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tdwgym.agents.rundir import RunDir
from tdwgym.tools.recording import DEFAULT_ENV, check_recording
from tdwgym.tools.recording import record_episode as record_plain

__all__ = ["record_episode"]


def record_episode(
    env_id: str | None = None,
    out: str | os.PathLike | None = None,
    policy: str = "random",
    world_model: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    steps: int = 300,
    seed: int = 0,
    panel_size: int = 128,
    fps: float | None = None,
    gif: bool = False,
    progress: bool = True,
    device: str = "auto",
    env_kwargs: dict[str, Any] | None = None,
    pushes: list[int] | None = None,
) -> Path:
    """Record one episode (``steps`` steps from ``reset(seed=seed)``) to video, with a world model's panels.

    Args:
        env_id: Gymnasium id (default: the run's env, else :data:`~tdwgym.tools.recording.DEFAULT_ENV`).
        out: Output file (.mp4 or .gif); default :func:`~tdwgym.tools.recording.default_video_path` (in ``RUN/videos``
            with a run).
        policy: Built-in name, SB3 ``.zip`` or run folder (see :func:`tdwgym.tools.policies.load_policy`). With
            ``run_dir`` and the default ``"random"``, the run's agent acts when it has one.
        world_model: A world-model checkpoint (``world_model.pt``), run folder or ``"pretrained"``; adds the
            prediction, error and reward panels. Default: the run's world model when ``run_dir`` is given.
        run_dir: A training run folder: default source of env, policy, world model, env settings and output folder.
        steps: Env steps; the video has ``steps + 1`` frames (the reset frame first).
        seed: Seed of the scene and the policy.
        panel_size: Pixel edge of each panel (plain recordings render the env at this size).
        fps: Frames per second; default the env's ``metadata["render_fps"]``.
        gif: Write a GIF instead of an mp4 when ``out`` is not given.
        progress: Show a progress bar.
        device: Torch device of the world model and agent (``"auto"``: CUDA when available).
        env_kwargs: Extra ``gym.make`` arguments (over the run's ``env_kwargs``).
        pushes: If given, the steps whose push moved an object are appended to it.

    Returns:
        The video's path.

    Raises:
        FileNotFoundError: The run folder does not exist.
        ValueError: ``steps`` below 1 or an unsupported video extension.
    """
    check_recording(steps, out)
    kwargs: dict[str, Any] = {}
    root: str | os.PathLike = "runs"
    if run_dir is not None:
        run = RunDir(run_dir).require()
        kwargs.update(run.env_kwargs)
        env_id = env_id or run.env_id
        if world_model is None:
            world_model = run.path
        if policy == "random" and run.agent_path() is not None:
            policy = str(run.path)
        root = run.path
    kwargs.update(env_kwargs or {})
    view = None
    if world_model is not None:
        from tdwgym.agents.device import configure_torch_threads
        from tdwgym.agents.evaluation.plan import load_run
        from tdwgym.agents.evaluation.stepper import ModelStepper

        configure_torch_threads()
        is_run = Path(world_model).is_dir()
        loaded = load_run(
            run_dir=world_model if is_run else None, model_path=None if is_run else world_model, device=device
        )
        view = ModelStepper(loaded.model)  # resizes observations to the model's frame size, as in training
    return record_plain(
        env_id or DEFAULT_ENV,
        out=out,
        policy=policy,
        steps=steps,
        seed=seed,
        panel_size=panel_size,
        fps=fps,
        gif=gif,
        progress=progress,
        device=device,
        env_kwargs=kwargs,
        model_view=view,
        root=root,
        pushes=pushes,
    )
