"""Outputs get the mode an ordinary ``open`` gives (0o666 less the umask), weights included, and video writing
needs one writer dependency."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from tdwgym.tools.video import write_video
from tdwgym.util.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_outputs_and_world_model_weights_follow_the_umask(tmp_path, umask):
    torch = pytest.importorskip("torch")
    from tdwgym.agents.online import atomic_torch_save

    frames = [np.zeros((8, 8, 3), np.uint8)] * 3
    paths = [
        write_atomic(tmp_path / "a.json", "{}"),
        write_video(frames, tmp_path / "v.gif"),
        write_video(frames, tmp_path / "v.mp4"),
    ]
    atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "world_model.pt")
    paths.append(tmp_path / "world_model.pt")
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


def test_one_video_writer_dependency():
    text = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M).group(1)
    writers = [name for name in ("moviepy", "imageio-ffmpeg") if f'"{name}' in deps]
    assert writers == ["moviepy"]  # Gymnasium's RecordVideo needs moviepy; it brings its own ffmpeg
    sources = [p for d in ("tdwgym", "agents", "envs") for p in (ROOT / d).rglob("*.py")]
    assert not [p for p in sources if "imageio_ffmpeg" in p.read_text()]
