"""Pattern textures for patterned floors and walls, shared by every backend (numpy only)."""

from __future__ import annotations

import numpy as np

from tdwgym.sim.scene import PATTERNS, Color


def pattern_image(
    pattern: str,
    colors: tuple[Color, Color],
    extent: tuple[float, float],
    tile_size: float,
    texels_per_tile: int = 8,
    max_texels: int | None = None,
) -> np.ndarray:
    """An RGB uint8 image of a ``"checker"`` or ``"stripes"`` pattern covering ``extent`` metres (u, v).

    Rows run along v from the top of the image; stripes alternate along u. Each tile is ``texels_per_tile`` texels
    wide, reduced (to 1 at least) so that neither side of the image exceeds ``max_texels``.

    Raises:
        ValueError: ``pattern`` is not one of the painted :data:`~tdwgym.sim.scene.PATTERNS`.
    """
    nu = max(1, round(extent[0] / tile_size))
    nv = max(1, round(extent[1] / tile_size))
    texels = texels_per_tile if max_texels is None else max(1, min(texels_per_tile, max_texels // max(nu, nv)))
    u = np.arange(nu * texels) // texels
    v = np.arange(nv * texels) // texels
    if pattern == "checker":
        second = (v[:, None] + u[None, :]) % 2 == 1
    elif pattern == "stripes":
        second = np.broadcast_to(u[None, :] % 2 == 1, (len(v), len(u)))
    else:
        painted = [p for p in PATTERNS if p != "plain"]
        raise ValueError(f"cannot paint pattern {pattern!r}; painted patterns are {painted}")
    a = np.round(np.asarray(colors[0]) * 255).astype(np.uint8)
    b = np.round(np.asarray(colors[1]) * 255).astype(np.uint8)
    return np.where(second[:, :, None], b, a).astype(np.uint8)
