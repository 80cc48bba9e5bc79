import numpy as np
import pytest

from tdwgym.sim.patterns import pattern_image

RED_BLUE = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0))
WHITE_BLACK = ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))


def test_checker_and_stripes_tiles():
    tex = pattern_image("checker", RED_BLUE, (2.0, 1.0), 0.5, texels_per_tile=32)
    assert tex.shape == (2 * 32, 4 * 32, 3) and tex.dtype == np.uint8
    assert tuple(tex[0, 0]) == (255, 0, 0) and tuple(tex[0, 32]) == (0, 0, 255) and tuple(tex[32, 32]) == (255, 0, 0)
    stripes = pattern_image("stripes", WHITE_BLACK, (1.0, 3.0), 0.5, texels_per_tile=32)
    assert (stripes[:, :32] == 255).all() and (stripes[:, 32:] == 0).all()


def test_max_texels_shrinks_tiles_but_never_below_one_texel():
    fine = pattern_image("checker", WHITE_BLACK, (10.0, 1.0), 0.01, texels_per_tile=32, max_texels=2048)
    assert fine.shape == (100 * 2, 1000 * 2, 3)
    finest = pattern_image("checker", WHITE_BLACK, (100.0, 1.0), 0.01, texels_per_tile=32, max_texels=2048)
    assert finest.shape == (100, 10000, 3) and tuple(finest[0, 1]) == (0, 0, 0)


def test_unknown_pattern_lists_valid_ones():
    with pytest.raises(ValueError, match=r"\['checker', 'stripes'\]"):
        pattern_image("dots", WHITE_BLACK, (1.0, 1.0), 0.5)
