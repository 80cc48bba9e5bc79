"""Every metric against a hand-computed case."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tdwgym.agents import metrics as M


def test_mse_mae_are_summed_over_pixels_per_frame():
    true = np.zeros((2, 2, 2, 3))
    pred = np.zeros((2, 2, 2, 3))
    pred[0, 0, 0, 0] = 0.5  # frame 0: one pixel channel off by 0.5
    pred[1] = 0.1  # frame 1: all 12 values off by 0.1
    np.testing.assert_allclose(M.mse(pred, true), [0.25, 12 * 0.01])
    np.testing.assert_allclose(M.mae(pred, true), [0.5, 12 * 0.1])


def test_uint8_frames_are_scaled_to_unit_range():
    a = np.full((1, 1, 1), 255, dtype=np.uint8)
    b = np.zeros((1, 1, 1), dtype=np.uint8)
    assert float(M.mse(a, b)) == pytest.approx(1.0)


def test_psnr_of_known_images():
    true = np.zeros((4, 4, 3))
    pred = np.full((4, 4, 3), 0.1)  # mean squared error 0.01 -> 20 dB
    assert float(M.psnr(pred, true)) == pytest.approx(20.0)
    half = true.copy()
    half[:2] = 1.0  # mse 0.5 -> 10 log10(2) dB
    assert float(M.psnr(half, true)) == pytest.approx(10 * math.log10(2))
    assert float(M.psnr(true, true)) == M.PSNR_MAX_DB  # identical frames: capped, not inf
    assert M.psnr(np.stack([pred, half]), np.stack([true, true])).shape == (2,)


def test_ssim_of_known_images():
    x = np.random.default_rng(0).random((16, 16, 3))
    assert float(M.ssim(x, x)) == pytest.approx(1.0)
    # constant images a and b: means a, b; variances and covariance 0 -> (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(M.ssim(np.full((10, 10, 1), a), np.full((10, 10, 1), b))) == pytest.approx(expected)
    # a 7x7 window on a 7x7 image: one window; x against 1 - x has covariance -var(x)
    img = np.random.default_rng(1).random((7, 7, 1))
    inv = 1.0 - img
    mu_x, mu_y, var = img.mean(), inv.mean(), img.var(ddof=1)
    c2 = 0.03**2
    expected = (2 * mu_x * mu_y + c1) * (-2 * var + c2) / ((mu_x**2 + mu_y**2 + c1) * (2 * var + c2))
    assert float(M.ssim(img, inv)) == pytest.approx(expected)


def test_baselines_copy_last_and_constant_velocity():
    ctx = np.zeros((2, 1, 3, 1))
    ctx[0, 0, 0] = 0.2
    ctx[1, 0, 1] = 0.2  # a pixel "moves" one to the right per frame; intensities extrapolate linearly
    cl = M.copy_last_rollout(ctx, 2)
    assert cl.shape == (2, 1, 3, 1) and np.all(cl == ctx[1])
    cv = M.constant_velocity_rollout(ctx, 2)
    np.testing.assert_allclose(cv[0, 0, :, 0], [0.0, 0.4, 0.0])  # 2*x1 - x0, clipped at 0
    np.testing.assert_allclose(cv[1, 0, :, 0], [0.0, 0.6, 0.0])  # rolled on its own prediction
    ramp = np.stack([np.full((1, 1, 1), 0.6), np.full((1, 1, 1), 0.9)])
    assert M.constant_velocity_rollout(ramp, 1).item() == pytest.approx(1.0)  # clipped to 1


def test_auroc_of_known_rankings():
    assert M.auroc([3, 4], [1, 2]) == 1.0
    assert M.auroc([1, 2], [3, 4]) == 0.0
    # positives 2, 4 vs negatives 1, 3: pairs won (2>1), (4>1), (4>3); lost (2<3) -> 3/4
    assert M.auroc([2, 4], [1, 3]) == pytest.approx(0.75)
    # ties count one half: 1 vs 1 -> 0.5; [1, 2] vs [1]: (1=1: 0.5) + (2>1: 1) -> 0.75
    assert M.auroc([1], [1]) == pytest.approx(0.5)
    assert M.auroc([1, 2], [1]) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        M.auroc([], [1])


def test_auroc_matches_pair_counting_on_random_scores():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 20).astype(float)
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    assert M.auroc(pos, neg) == pytest.approx(wins / (len(pos) * len(neg)))


def test_pairwise_accuracy_and_aggregation():
    assert M.pairwise_accuracy([2, 1, 5, 3], [1, 2, 4, 3]) == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert M.aggregate_surprise([1, 2, 6]) == 3.0
    assert M.aggregate_surprise([1, 2, 6], "max") == 6.0
    assert M.aggregate_surprise([1, np.nan, 3]) == 2.0
    with pytest.raises(ValueError):
        M.pairwise_accuracy([1, 2], [1])


def test_velocity_from_a_known_trajectory():
    t = np.arange(6)
    traj = np.stack([2.0 + 1.5 * t, 10.0 - 0.5 * t], axis=1)  # uniform motion, v = (1.5, -0.5) per frame
    np.testing.assert_allclose(M.fit_velocity(traj), [1.5, -0.5])
    np.testing.assert_allclose(M.fit_velocity(traj, dt=0.5), [3.0, -1.0])
    np.testing.assert_allclose(M.velocities(traj), np.tile([1.5, -0.5], (5, 1)))
    traj_nan = traj.copy()
    traj_nan[2] = np.nan
    np.testing.assert_allclose(M.fit_velocity(traj_nan), [1.5, -0.5])  # missing frames are skipped
    # parabola y = t^2: finite differences 1, 3, 5, ...; against uniform v=3 the errors are 2, 0, 2, 4, 6
    para = np.stack([np.zeros(6), t.astype(float) ** 2], axis=1)
    uni = np.stack([np.zeros(6), 3.0 * t], axis=1)
    assert M.velocity_error(para, uni) == pytest.approx((2 + 0 + 2 + 4 + 6) / 5)


def test_colour_and_segmentation_parsers():
    frames = np.zeros((3, 8, 10, 3), dtype=np.uint8)
    seg = np.zeros((3, 8, 10), dtype=np.int32)
    for t in range(3):  # a 2x2 red block moving 2 px right per frame
        frames[t, 3:5, 2 * t : 2 * t + 2] = (255, 0, 0)
        seg[t, 3:5, 2 * t : 2 * t + 2] = 7
    expected = np.array([[1.0, 4.0], [3.0, 4.0], [5.0, 4.0]])  # centroids of pixel centres (+0.5)
    np.testing.assert_allclose(M.color_mask_positions(frames, (1.0, 0.0, 0.0)), expected)
    np.testing.assert_allclose(M.segmentation_positions(seg, 7), expected)
    assert np.isnan(M.color_mask_positions(frames, (0.0, 1.0, 0.0))).all()
    np.testing.assert_allclose(M.fit_velocity(M.segmentation_positions(seg, 7)), [2.0, 0.0])


def test_projection_and_floor_coverage():
    # camera at the origin looking along +z: a point 2 m ahead, 1 m right, lands right of centre by f/2
    px = M.project_points([1.0, 0.0, 2.0], (0, 0, 0), yaw=0, pitch=0, fov=90, width=100, height=100)
    np.testing.assert_allclose(px, [75.0, 50.0])
    above = M.project_points([0.0, 1.0, 2.0], (0, 0, 0), yaw=0, pitch=0, fov=90, width=100, height=100)
    np.testing.assert_allclose(above, [50.0, 25.0])  # up is smaller y
    assert np.isnan(M.project_points([0.0, 0.0, -1.0], (0, 0, 0), 0, 0, 90, 100, 100)).all()
    # looking straight down (pitch -89) from 1 m with a 90 deg view: about a 2 m x 2 m square of a 4 x 4 m floor
    cov = M.floor_coverage([((0.0, 1.0, 0.0), 0.0, -89.9)], (4.0, 4.0), fov=90, cell=0.1)
    assert cov == pytest.approx(0.25, abs=0.03)
    assert M.floor_coverage([], (4.0, 4.0), fov=90) == 0.0


def test_exploration_counts():
    infos = [
        {"push": {"attempted": True, "hit": True, "moved": True}, "visible_ids": [1, 2], "objects_in_view": 2},
        {"push": {"attempted": True, "hit": False, "moved": False}, "visible_ids": [], "objects_in_view": 0},
        {"push": {"attempted": False}, "visible_ids": [2, 3], "objects_in_view": 2},
    ]
    c = M.exploration_counts(infos)
    assert c == {
        "steps": 3.0,
        "pushes_attempted": 2.0,
        "pushes_hit": 1.0,
        "pushes_moved": 1.0,
        "objects_seen": 3.0,
        "frames_with_object": pytest.approx(2 / 3),
    }
