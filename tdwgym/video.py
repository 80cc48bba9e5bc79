"""Writing frames to video files (mp4 through moviepy and ffmpeg, or GIF)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_video(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 30.0) -> Path:
    """Write uint8 RGB frames (each H x W x 3, all the same size) to ``path`` (.mp4 or .gif).

    The file appears atomically: it is written under a temporary name in the same folder, then renamed.

    Raises:
        ValueError: No frames, frames of different sizes or types, or an unsupported extension.
    """
    from moviepy import ImageSequenceClip

    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"unsupported video extension {path.suffix!r}; use .mp4 or .gif")
    if len(frames) == 0:
        raise ValueError("no frames to write")
    shapes = {np.shape(f) for f in frames}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(f"frames must all be H x W x 3 of one size, got shapes {sorted(shapes)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    clip = ImageSequenceClip([np.asarray(f, dtype=np.uint8) for f in frames], fps=fps)
    try:
        if path.suffix.lower() == ".gif":
            clip.write_gif(str(tmp), fps=fps, logger=None)
        else:
            # yuv420p needs even sizes; libx264 at crf 18 keeps the frames close to lossless
            clip.write_videofile(str(tmp), fps=fps, codec="libx264", audio=False, logger=None,
                                 ffmpeg_params=["-pix_fmt", "yuv420p", "-crf", "18"])
        os.replace(tmp, path)
    finally:
        clip.close()
        if tmp.exists():
            tmp.unlink()
    return path


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode a video file into a (T, H, W, 3) uint8 array."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(str(path)))
