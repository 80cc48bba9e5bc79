"""Writing frames to video files (mp4 through moviepy and ffmpeg, or GIF), and composing panel frames.

:func:`write_video` / :func:`read_video` write and decode files. :func:`compose_panels` lays images side by side
under a caption strip (``tdwgym record``'s world-model view: observation, prediction, :func:`error_heatmap`,
:func:`reward_plot`); captions and plots are drawn with Pillow, everything else with numpy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tdwgym.util.files import atomic_path


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
    with atomic_path(path, keep_suffix=True) as tmp:
        if path.suffix.lower() == ".gif":
            # Pillow through imageio, one GIF frame per frame (moviepy's clip-based writer can drop the last one);
            # Pillow merges identical consecutive frames into one longer frame, which keeps the timing.
            import imageio.v3 as iio

            iio.imwrite(
                str(tmp),
                np.stack([np.asarray(f, dtype=np.uint8) for f in frames]),
                extension=".gif",
                duration=1000.0 / fps,
                loop=0,
            )
        else:
            # Frame by frame through moviepy's ffmpeg writer: exactly len(frames) frames (a clip's duration can
            # round one away). yuv420p plays everywhere; crf 18 keeps the frames close to lossless.
            from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

            h, w = np.shape(frames[0])[:2]
            pad = ((0, h % 2), (0, w % 2), (0, 0))  # yuv420p needs even sizes: repeat the last row/column
            writer = FFMPEG_VideoWriter(
                str(tmp),
                (w + w % 2, h + h % 2),
                fps,
                codec="libx264",
                pixel_format="yuv420p",
                ffmpeg_params=["-crf", "18"],
            )
            try:
                for frame in frames:
                    frame = np.asarray(frame, dtype=np.uint8)
                    writer.write_frame(
                        np.ascontiguousarray(np.pad(frame, pad, mode="edge") if any(p[1] for p in pad) else frame)
                    )
            finally:
                writer.close()
    return path


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode a video file into a (T, H, W, 3) uint8 array."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(str(path)))


# ------------------------------------------------------------------------------------------------ panel frames

CAPTION_HEIGHT = 30
"""Rows of the caption strip above the panels of a composed frame."""
PANEL_TITLES: tuple[str, ...] = ("observation", "prediction", "error", "intrinsic reward")
"""Titles of the four panels of a world-model video, left to right."""
BOX_PANEL_TITLES: tuple[str, ...] = ("observation", "boxes seen/expected", "", "intrinsic reward")
"""Titles of the panels of an object model's video: its second panel shows the object boxes seen and expected."""

_LUT: np.ndarray | None = None


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def resize_nearest(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``(H, W)`` or ``(H, W, C)`` image to ``size`` (int or (height, width))."""
    h, w = (size, size) if isinstance(size, int) else size
    img = np.asarray(image)
    rows = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
    cols = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
    return img[rows][:, cols]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An image as uint8: floats are taken in [0, 1] (clipped), uint8 is returned unchanged."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def colormap(values: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """Map ``values`` in ``[0, vmax]`` through matplotlib's ``inferno`` colour map to uint8 RGB."""
    global _LUT
    if _LUT is None:
        from matplotlib import colormaps

        _LUT = (colormaps["inferno"](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
    idx = (np.clip(np.asarray(values, dtype=np.float64) / max(vmax, 1e-12), 0.0, 1.0) * 255 + 0.5).astype(np.int64)
    return _LUT[idx]


def error_heatmap(prediction: np.ndarray, target: np.ndarray, vmax: float = 0.5) -> np.ndarray:
    """Per-pixel absolute error (mean over channels, images in [0, 1] or uint8) as an ``inferno`` heatmap."""
    p = np.asarray(prediction, dtype=np.float64) / (255.0 if np.asarray(prediction).dtype == np.uint8 else 1.0)
    t = np.asarray(target, dtype=np.float64) / (255.0 if np.asarray(target).dtype == np.uint8 else 1.0)
    return colormap(np.abs(p - t).mean(axis=-1), vmax)


def reward_plot(
    values: Sequence[float], size: int | tuple[int, int], length: int | None = None, ymax: float | None = None
) -> np.ndarray:
    """A running line plot of ``values`` drawn into an RGB image (dark background, current value marked).

    Args:
        values: The series so far.
        size: Image size, int or (height, width).
        length: Steps the x axis spans (the episode length), so the line grows left to right; default
            ``len(values)``.
        ymax: Top of the y axis; default the largest value so far.
    """
    from PIL import Image, ImageDraw

    h, w = (size, size) if isinstance(size, int) else size
    img = Image.new("RGB", (w, h), (20, 20, 28))
    draw = ImageDraw.Draw(img)
    vals = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(ymax) if ymax is not None else float(vals.max()) if vals.size else 1.0
    top = top if top > 0 else 1.0
    n = max(int(length or len(vals)), 2)
    pad_t, pad_b, pad_l, pad_r = 14, 4, 4, 4
    x0, x1, y0, y1 = pad_l, w - 1 - pad_r, pad_t, h - 1 - pad_b
    draw.line([(x0, y1), (x1, y1)], fill=(90, 90, 100))
    if vals.size:
        xs = x0 + (x1 - x0) * np.arange(len(vals)) / (n - 1)
        ys = y1 - (y1 - y0) * np.clip(vals / top, 0.0, 1.0)
        pts = list(zip(xs.tolist(), ys.tolist(), strict=True))
        if len(pts) > 1:
            draw.line(pts, fill=(255, 170, 40), width=1)
        cx, cy = pts[-1]
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=(255, 230, 120))
        draw.text((pad_l, 1), f"{vals[-1]:.3g}", fill=(230, 230, 230), font=_font())
    return np.asarray(img, dtype=np.uint8)


CAPTION_MARGIN = 4
"""Pixels of the caption strip left free at each side of its text."""


def text_width(text: str) -> float:
    """Width in pixels of ``text`` in the font of :func:`draw_text` (Pillow's default)."""
    return float(_font().getlength(text))


def fits(lines: Sequence[str], width: int) -> bool:
    """Whether every line fits a caption strip ``width`` pixels wide (:data:`CAPTION_MARGIN` each side)."""
    return all(text_width(line) <= width - 2 * CAPTION_MARGIN for line in lines)


def fit_text(text: str, width: int) -> str:
    """``text``, cut at the end (marked ``..``) until it fits a caption strip ``width`` pixels wide."""
    if fits([text], width):
        return text
    while text and not fits([text + ".."], width):
        text = text[:-1]
    return (text.rstrip() + "..") if text else ""


def draw_text(
    image: np.ndarray,
    lines: Sequence[str],
    origin: tuple[int, int] = (3, 2),
    color: tuple[int, int, int] = (240, 240, 240),
    shadow: bool = True,
) -> np.ndarray:
    """``image`` (uint8 RGB) with ``lines`` of text drawn from ``origin`` (Pillow's default font)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(to_uint8(image)))
    draw = ImageDraw.Draw(img)
    font = _font()
    x, y = origin
    for line in lines:
        if shadow:
            draw.text((x + 1, y + 1), line, fill=(0, 0, 0), font=font)
        draw.text((x, y), line, fill=color, font=font)
        y += 12
    return np.asarray(img, dtype=np.uint8)


def compose_panels(
    panels: Sequence[np.ndarray | None],
    caption: Sequence[str] = (),
    panel_size: int = 128,
    titles: Sequence[str] | None = None,
) -> np.ndarray:
    """One video frame: a caption strip above panels laid side by side.

    Args:
        panels: Images (uint8, or floats in [0, 1]; any size, resized to ``panel_size`` by nearest neighbour);
            ``None`` leaves a dark panel (e.g. a world model with no pixel prediction).
        caption: Up to two lines of text for the strip (make them fit with :func:`fits` and :func:`fit_text`).
        panel_size: Edge of each square panel in pixels.
        titles: A title for each panel, written in its top-left corner.

    Returns:
        ``(CAPTION_HEIGHT + panel_size, len(panels) * panel_size, 3)`` uint8.
    """
    row = []
    for i, panel in enumerate(panels):
        if panel is None:
            tile = np.full((panel_size, panel_size, 3), 12, dtype=np.uint8)
            tile = draw_text(tile, ["n/a"], origin=(panel_size // 2 - 8, panel_size // 2 - 6), color=(150, 150, 150))
        else:
            tile = to_uint8(panel)
            if tile.ndim == 2:
                tile = np.repeat(tile[..., None], 3, axis=2)
            if tile.shape[:2] != (panel_size, panel_size):
                tile = resize_nearest(tile, panel_size)
        if titles is not None and i < len(titles) and titles[i]:
            tile = draw_text(tile, [titles[i]], origin=(3, panel_size - 13))
        row.append(tile)
    body = np.concatenate(row, axis=1)
    strip = np.zeros((CAPTION_HEIGHT, body.shape[1], 3), dtype=np.uint8)
    strip = draw_text(strip, list(caption)[:2], origin=(CAPTION_MARGIN, 3), shadow=False)
    return np.concatenate([strip, body], axis=0)
