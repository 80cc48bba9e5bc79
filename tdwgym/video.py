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
    try:
        if path.suffix.lower() == ".gif":
            from moviepy import ImageSequenceClip

            clip = ImageSequenceClip([np.asarray(f, dtype=np.uint8) for f in frames], fps=fps)
            clip.write_gif(str(tmp), fps=fps, logger=None)
            clip.close()
        else:
            # Frame by frame through moviepy's ffmpeg writer: exactly len(frames) frames (a clip's duration can
            # round one away). yuv420p plays everywhere; crf 18 keeps the frames close to lossless.
            from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

            h, w = np.shape(frames[0])[:2]
            pad = ((0, h % 2), (0, w % 2), (0, 0))  # yuv420p needs even sizes: repeat the last row/column
            writer = FFMPEG_VideoWriter(str(tmp), (w + w % 2, h + h % 2), fps, codec="libx264", pixel_format="yuv420p",
                                        ffmpeg_params=["-crf", "18"])
            try:
                for frame in frames:
                    frame = np.asarray(frame, dtype=np.uint8)
                    writer.write_frame(np.ascontiguousarray(np.pad(frame, pad, mode="edge") if any(
                        p[1] for p in pad) else frame))
            finally:
                writer.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode a video file into a (T, H, W, 3) uint8 array."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(str(path)))
