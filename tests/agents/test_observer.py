"""The analytic observer (the positive control of the VoE tables)."""

import numpy as np
import pytest

from tdwgym.agents.evaluation.observer import Observer, ObserverConfig, Track


def _shape_cost(cfg: ObserverConfig, w: int, h: int, grow: int) -> float:
    """The shape term of an object seen clean as a ``w`` x ``h`` px box, then ``grow`` px wider."""
    obs = Observer(64, 64, 54.0, cfg)
    tr = Track(oid=1, t0=0, size=np.ones(2), theta=np.zeros(7), samples=np.zeros((4, 7)), logw=np.zeros(4))
    z = 3.0
    for _ in range(3):
        box = np.array([10.0, 10.0, 10 + w, 10 + h])
        m = {"n": w * h, "box": box, "z": z, "color": np.ones(3), "fill": 1.0, "clean": True}
        tr.shapes.append(obs._shape(m))
    m = {"n": (w + grow) * h, "box": np.array([10.0, 10.0, 10 + w + grow, 10 + h]), "z": z, "fill": 1.0}
    m |= {"color": np.ones(3), "clean": True}
    return obs._appearance(tr, m)["shape"]


def test_a_pixel_more_on_a_small_silhouette_is_no_shape_change():
    """A 4-pixel box one pixel wider is pixel quantisation, not a new shape: it costs well under a nat (it cost
    1.7 nats without the allowance, and a far object's re-emergence looked like a shape change);
    on a 40-pixel box the same pixel is nothing either, and a box twice as wide still costs a lot."""
    cfg = ObserverConfig()
    assert _shape_cost(cfg, 4, 4, 1) < 1.0
    assert _shape_cost(ObserverConfig(shape_px=1e-6), 4, 4, 1) > 1.5  # without the allowance
    assert _shape_cost(cfg, 40, 40, 1) < 0.1
    assert _shape_cost(cfg, 20, 20, 20) > 5.0


def _silhouette(box: tuple, n: int, z: float = 3.43) -> dict:
    x0, y0, x1, y1 = box
    fill = n / float((x1 - x0) * (y1 - y0))
    return {"n": n, "box": np.array(box, float), "z": z, "color": np.ones(3), "fill": fill, "clean": True}


def test_a_cube_seen_turned_is_no_shape_change_but_a_ball_half_its_size_is():
    """Level 1 shape_change, the possible clip in which a small cube (4-5 px, 3.4 m away) goes behind the panel and
    comes out turned, its box a pixel wider (6 x 4 or 6 x 5 px, 22 pixels where it had 16-21), against the
    impossible one in which a ball of half its area (3 x 4 or 4 x 4 px, 9-12 pixels) comes out. Measured by its
    box's width and height, each a pixel uncertain, the turned cube cost more than the ball (2.1 against 1.4 nats
    over the two frames); by its area (pixels at its depth) the ball costs 4.5 and the cube 1.2."""
    obs = Observer(64, 64, 54.43, ObserverConfig())
    tr = Track(oid=1, t0=0, size=np.ones(2), theta=np.zeros(7), samples=np.zeros((4, 7)), logw=np.zeros(4))
    seen = [((0, 0, 5, 4), 20), ((0, 0, 4, 4), 16), ((0, 0, 5, 5), 21), ((0, 0, 4, 4), 16), ((0, 0, 5, 5), 21)]
    for box, n in seen + [((0, 0, 5, 4), 17), ((0, 0, 5, 5), 20)]:
        tr.shapes.append(obs._shape(_silhouette(box, n)))
    cube = [obs._appearance(tr, _silhouette(b, 22))["shape"] for b in ((0, 0, 6, 4), (0, 0, 6, 5))]
    ball = [obs._appearance(tr, _silhouette(b, n))["shape"] for b, n in (((0, 0, 3, 4), 9), ((0, 0, 4, 4), 12))]
    assert max(cube) < 0.8, cube
    assert sum(ball) > 3 * sum(cube), (ball, cube)


def test_a_ball_sliver_s_cross_edges_lie_outside_it():
    """A ball 6 px across, its right side behind a panel: the top and bottom of a one-pixel sliver are the ball's
    chord there, not its extent, and are read outward (by half the chord's shortfall, uncertain by as much); a part
    that holds the ball's centre column, a whole silhouette, and the edge opposite the hidden side (its left edge)
    are read as seen."""
    obs = Observer(64, 64, 54.43, ObserverConfig())
    z = 4.0
    size = np.full(2, 6.0 * z / obs.f)  # 6 px at 4 m
    tr = Track(oid=1, t0=0, size=size, theta=np.zeros(7), samples=np.zeros((4, 7)), logw=np.zeros(4))
    trust = np.array([True, False, False, False])
    occ = np.array([False, False, False, True])  # up, down, left, right
    sliver = {"box": np.array([13.0, 27.0, 14.0, 32.0]), "z": z, "clean": False, "trust": trust, "occ": occ}
    e = obs._own_edges(tr, sliver)
    assert e["edges"][0] == 13.0 and e["sd"][0] == obs.cfg.sigma_edge  # its own side: as seen
    assert 26.0 < e["edges"][1] < 27.0 - 0.5 and e["sd"][1] > 1.2 * obs.cfg.sigma_edge
    assert 32.0 + 0.5 < e["edges"][3] < 33.0 and list(e["trust"]) == list(trust)
    corner = {**sliver, "box": np.array([13.0, 29.0, 14.0, 30.0]), "occ": np.array([False, True, False, True])}
    assert obs._own_edges(tr, corner)["edges"][0] < 13.0  # a corner's side is a chord too (its centre row is hidden)
    half = {**sliver, "box": np.array([11.0, 26.0, 14.0, 32.0])}  # 3 px: the centre column is in view
    assert np.array_equal(obs._own_edges(tr, half)["edges"], half["box"])
    clean = {**sliver, "clean": True, "trust": np.ones(4, bool)}
    assert np.array_equal(obs._own_edges(tr, clean)["edges"], clean["box"])
    off = Observer(64, 64, 54.43, ObserverConfig(round_slivers=False))
    assert np.array_equal(off._own_edges(tr, sliver)["edges"], sliver["box"])


def _ball_behind(T: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 64 x 64 clip: a ball (object 3, radius 3.2 px, 4 m away) rolls right at half a pixel a frame along row 28.3,
    its lower part behind a box (object 1, 3 m away) rolling with it, into a panel (object 2, 2 m away) over columns
    14-49; drawn where it covers a pixel's centre."""
    seg = np.zeros((T, 64, 64), np.int32)
    depth = np.full((T, 64, 64), 6.0, np.float32)
    rgb = np.zeros((T, 64, 64, 3), np.uint8)
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    for t in range(T):
        cx = 7.2 + 0.5 * t
        ball = (xx - cx) ** 2 + (yy - 28.3) ** 2 <= 3.2**2
        seg[t][ball], depth[t][ball], rgb[t][ball] = 3, 4.0, (40, 200, 40)
        bx = int(round(cx - 5))
        seg[t, 30:37, bx : bx + 7], depth[t, 30:37, bx : bx + 7], rgb[t, 30:37, bx : bx + 7] = 1, 3.0, (200, 40, 40)
        seg[t, 16:48, 14:50], depth[t, 16:48, 14:50], rgb[t, 16:48, 14:50] = 2, 2.0, (40, 40, 200)
    return rgb, seg, depth


def test_a_ball_s_sliver_does_not_tilt_its_motion():
    """The ball slides behind the panel; its last slivers' tops are a pixel or two low (the ball's chord). Read as
    its own top, they tilted the fitted motion downward: at frame 100 (82 frames after its last sliver) the ball
    was expected 5.1 px below the row it rolls along; read as the side of a ball, 2.3 px."""
    from tdwgym.agents.evaluation.observer import clip_measurements

    rgb, seg, depth = _ball_behind()
    meas = clip_measurements(rgb, seg, depth)
    drift = {}
    for rs in (False, True):
        obs = Observer(64, 64, 54.43, ObserverConfig(round_slivers=rs))
        for t in range(len(seg)):
            obs.frame(t, meas[t], seg[t], depth[t])
        tr = obs.tracks[3]
        box = obs.boxes(tr.mean_point(100)[None], tr.size)[0]
        drift[rs] = (box[1] + box[3]) / 2 - 28.3
    assert drift[False] > 4.0, drift
    assert abs(drift[True]) < 0.5 * drift[False], drift


@pytest.mark.parametrize(("kind", "seeds"), [("teleport", range(62000, 62003)), ("color_change", range(64000, 64003))])
def test_the_observer_ranks_the_fixed_seeds_quadruplets(kind, seeds):
    """On the evaluation's first seeds of two kinds (level 1, test_id, 64 x 64, 30 frames past the event) the
    observer finds the impossible clip more surprising in at least 5 of the 6 matched pairs (deterministic: the
    observer's sampler is seeded)."""
    from tdwgym.agents import metrics as M
    from tdwgym.agents.evaluation.voe import draw_twins, item_clips, reference_scores
    from tdwgym.sim.scene import DEFAULT_FOV

    right = 0
    for seed in seeds:
        item, _ = draw_twins(
            "TDWRoom-Occlusion-v0", seed, kind, "quadruplet", (64, 64), 30, ("segmentation", "depth"), level=1
        )
        clips, extra = item_clips(item)
        res = reference_scores(clips, extra, item.event_frame, DEFAULT_FOV)
        agg = [M.aggregate_surprise(x, "mean") for x in res["observer"]]
        right += (agg[2] > agg[0]) + (agg[3] > agg[1])
    assert right >= 5, right


def test_the_spliced_clips_observer_scores_equal_the_clip_by_clip_ones():
    """spliced_observer_surprise observes each quadruplet clip's start once (the observer copied at the cut): every
    clip's per-frame surprise equals observer_surprise of that clip alone, bit for bit."""
    from tdwgym.agents.evaluation.observer import observer_surprise, spliced_observer_surprise
    from tdwgym.agents.evaluation.voe import draw_twins, is_spliced, item_clips
    from tdwgym.sim.scene import DEFAULT_FOV

    item, _ = draw_twins(
        "TDWRoom-Occlusion-v0", 62000, "teleport", "quadruplet", (32, 32), 8, ("segmentation", "depth")
    )
    clips, extra = item_clips(item)
    seg, depth = extra["segmentation"], extra["depth"]
    assert is_spliced(clips, extra, item.event_frame)
    swapped = [clips[0], clips[1], clips[3], clips[2]]  # B|A where A|B should be
    assert not is_spliced(swapped, extra, item.event_frame) and not is_spliced(clips[:2], extra, item.event_frame)
    spliced = spliced_observer_surprise(clips[:2], seg[:2], depth[:2], DEFAULT_FOV, item.event_frame)
    one_by_one = np.stack([observer_surprise(c, seg[i], depth[i], DEFAULT_FOV) for i, c in enumerate(clips)])
    assert spliced.shape == one_by_one.shape and np.array_equal(spliced, one_by_one)
    assert not np.array_equal(spliced[0], spliced[2])  # the impossible clip is scored on its own frames


def _panel_clip(xs: list, panel: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 64 x 64 clip: object 1 (4 x 4 px, 4 m away) with left edge at ``xs[t]`` (None: out of sight) in front of
    a wall 6 m away, behind a panel (object 2, 2 m away) over columns 24-39 (none without ``panel``)."""
    T = len(xs)
    seg = np.zeros((T, 64, 64), np.int32)
    depth = np.full((T, 64, 64), 6.0, np.float32)
    rgb = np.zeros((T, 64, 64, 3), np.uint8)
    for t, x in enumerate(xs):
        if x is not None:
            seg[t, 30:34, x : x + 4], depth[t, 30:34, x : x + 4], rgb[t, 30:34, x : x + 4] = 1, 4.0, (200, 40, 40)
        if panel:
            seg[t, 16:48, 24:40], depth[t, 16:48, 24:40], rgb[t, 16:48, 24:40] = 2, 2.0, (40, 40, 200)
    return rgb, seg, depth


def test_an_overdue_object_is_late_not_gone():
    """An object rolls right at a pixel a frame behind a panel. Coming out 12 frames late (it slowed down behind the
    panel) is possible; never coming out is not. Once the samples have passed the panel's far edge, the observer
    without the overdue rule paid nothing more for the vanished object but a full unexpected sighting for the late
    one, and ranked the possible clip the more surprising (2.17 against 1.94 nats a frame from frame 22); with it the
    late object is expected where it comes out and the vanished one keeps costing (1.86 against 2.26). The on-time
    object costs a little (0.28 nats a frame: the samples' timing spread)."""
    from tdwgym.agents.evaluation.observer import observer_surprise

    def hidden_behind(x):
        return x is None or 20 < x < 40 or x > 63

    T = 70
    on_time = [2 + t for t in range(T)]
    late = [2 + t if t < 22 else (t - 10 if t >= 34 else None) for t in range(T)]  # 12 frames behind
    never = [x if x <= 20 else None for x in on_time]
    clips = {
        name: [None if hidden_behind(x) else x for x in xs]
        for name, xs in (("on_time", on_time), ("late", late), ("never", never))
    }
    assert clips["late"][44] is None and clips["late"][52] == 42  # out 12 frames after the on-time object
    mean = {}
    for overdue in (False, True):
        cfg = ObserverConfig(overdue=overdue)
        mean[overdue] = {k: float(observer_surprise(*_panel_clip(v), 54.43, cfg)[22:].mean()) for k, v in clips.items()}
    assert mean[True]["on_time"] < 0.35 and mean[False]["on_time"] < 0.35  # on time, little to pay either way
    assert mean[False]["late"] > mean[False]["never"] + 0.1  # the old rule: late more surprising than vanished
    assert mean[True]["late"] < mean[True]["never"] - 0.1  # late, not gone


def test_a_bounce_in_view_costs_once_not_every_frame_after_it():
    """An object rolls right at a pixel a frame and bounces back at frame 20, in view all along (a collision). With
    the change point the bounce is a surprise once (a few nats) and the new motion is tracked from the frame before
    it; without it, the old fit was kept until a frame cost more than reinit_nll, every frame in between paying for
    the stale motion."""
    from tdwgym.agents.evaluation.observer import observer_surprise

    xs = [10 + t if t <= 20 else 30 - (t - 20) for t in range(40)]
    on = observer_surprise(*_panel_clip(xs, panel=False), 54.43, ObserverConfig())
    off = observer_surprise(*_panel_clip(xs, panel=False), 54.43, ObserverConfig(change_nll=0.0))
    assert on[:21].sum() == pytest.approx(off[:21].sum())  # the same up to the bounce
    assert on[21:23].sum() > 6.0  # the bounce is a surprise (9 nats; 58 without the change point)
    assert on[21:].sum() < 0.5 * off[21:].sum(), (on[21:].sum(), off[21:].sum())
    assert on[23:].mean() < 0.1  # and the new motion is expected from the next frame on


def test_the_observer_expects_both_objects_of_an_appear_quadruplet_back():
    """Level 1 appear quadruplets, the evaluation's first four seeds (test_id scenes): the pairs B / B|A ask whether
    the observer expects a far, small object (the one an appear adds) back from behind the panel. Its speed, read
    from a few pixels of box edges, is uncertain; with the old posterior spread (inflate 1.5) the observer was sure
    of the wrong re-emergence time and ranked two of the eight pairs wrongly (seeds 61001 and 61003); with the wider
    one every pair is right (2.0)."""
    from tdwgym.agents import metrics as M
    from tdwgym.agents.evaluation.voe import draw_twins, item_clips, reference_scores
    from tdwgym.sim.scene import DEFAULT_FOV

    right = 0
    for seed in range(61000, 61004):
        item, _ = draw_twins(
            "TDWRoom-Occlusion-v0",
            seed,
            "appear",
            "quadruplet",
            (64, 64),
            30,
            ("segmentation", "depth"),
            level=1,
            split="test_id",
        )
        clips, extra = item_clips(item)
        res = reference_scores(clips, extra, item.event_frame, DEFAULT_FOV)
        agg = [M.aggregate_surprise(x, "mean") for x in res["observer"]]
        right += (agg[2] > agg[0]) + (agg[3] > agg[1])
    assert right == 8, right
