"""The embedded backend against formulas and its own invariants."""

import os
import sys

import numpy as np
import pybullet as pb
import pytest

from tdwgym.sim.backends import BackendError, make_backend
from tdwgym.sim.backends.bullet import (
    BulletBackend,
    quat_from_bullet,
    quat_to_bullet,
    spin_from_bullet,
    spin_to_bullet,
)
from tdwgym.sim.geometry import euler_to_quat, rotate
from tdwgym.sim.scene import Camera, ObjectSpec, PropSpec, Room, SceneSpec

G = 9.81


@pytest.fixture
def backend():
    b = BulletBackend()
    yield b
    b.close()


def test_free_fall_follows_half_g_t_squared(backend):
    h0 = 2.5  # below the 3 m ceiling
    backend.load(SceneSpec(objects=(ObjectSpec(id=1, shape="sphere", size=(0.2,) * 3, position=(0, h0, 0)),)))
    dt = backend.timestep
    for n in range(1, 151):  # 0.625 s, before the 0.70 s the sphere needs to land
        backend.step(1)
        t = n * dt
        if t >= 0.25:
            drop = h0 - backend.object_states()[1].position[1]
            assert drop == pytest.approx(0.5 * G * t * t, rel=0.02)


def test_axis_conversion_round_trips_and_keeps_rotations():
    q = euler_to_quat((20.0, 35.0, -10.0))
    assert np.allclose(quat_from_bullet(quat_to_bullet(q)), q)
    assert np.allclose(spin_from_bullet(spin_to_bullet((1, 2, 3))), (1, 2, 3))
    # rotating a TDW vector then converting equals converting then rotating in Bullet
    v = np.array([0.3, -0.2, 0.9])
    qb = quat_to_bullet(q)
    rb = np.array(pb.multiplyTransforms([0, 0, 0], qb, [v[0], v[2], v[1]], [0, 0, 0, 1])[0])
    rt = rotate(q, v)
    assert np.allclose([rb[0], rb[2], rb[1]], rt)


def test_initial_velocity_and_spin_are_set_in_tdw_axes(backend):
    backend.load(
        SceneSpec(
            objects=(ObjectSpec(id=7, position=(0, 1, 0), velocity=(1, 2, 3), angular_velocity=(0.5, -0.25, 0.1)),)
        )
    )
    st = backend.object_states()[7]
    assert np.allclose(st.velocity, (1, 2, 3))
    assert np.allclose(st.angular_velocity, (0.5, -0.25, 0.1))


def test_render_passes_shapes_depth_and_segmentation(backend):
    scene = SceneSpec(
        objects=(ObjectSpec(id=3, shape="cube", size=(0.5,) * 3, position=(0, 1.2, 0)),),
        props=(PropSpec(id=9, size=(7.8, 2.8, 0.1), position=(0, 1.5, 2.0)),),
        camera=Camera(position=(0, 1.2, -3), yaw=0, pitch=0, radius=0.2),
    )
    backend.load(scene)
    frames = backend.render(48, 32, ("rgb", "depth", "segmentation"))
    assert frames["rgb"].shape == (32, 48, 3) and frames["rgb"].dtype == np.uint8
    assert frames["depth"].shape == (32, 48) and frames["depth"].dtype == np.float32
    seg = frames["segmentation"]
    assert seg[16, 24] == 3  # the cube is dead ahead
    assert 9 in seg and set(np.unique(seg)) <= {0, 3, 9}
    # the cube's front face is 3 - 0.25 m away along the view axis, the panel behind it 4.95 m
    assert frames["depth"][16, 24] == pytest.approx(2.75, abs=0.02)
    assert frames["depth"][8, 4] == pytest.approx(4.95, abs=0.05)  # below the 3 m ceiling
    with pytest.raises(ValueError, match="valid passes"):
        backend.render(8, 8, ("normals",))


def test_the_ceiling_closes_the_view_above_the_walls(backend):
    """Looking up shows the ceiling at the room's height; without one, the empty background above the walls."""
    up = Camera(position=(0, 1.2, 0), yaw=0, pitch=60)
    backend.load(SceneSpec(room=Room(height=2.5, ceiling_color=(0.2, 0.6, 0.9)), camera=up))
    frames = backend.render(16, 16, ("rgb", "depth"))
    # the view axis meets the ceiling (1.3 m above the eye) after 1.3 / sin(60 deg) = 1.5 m
    assert frames["depth"][8, 8] == pytest.approx(1.5, rel=0.05)
    b, g, r = (int(frames["rgb"][8, 8, i]) for i in (2, 1, 0))
    assert b > g > r  # the ceiling's own colour, lit
    backend.load(SceneSpec(room=Room(height=2.5, ceiling=False), camera=up))
    open_top = backend.render(16, 16, ("rgb", "depth"))
    assert open_top["depth"][8, 8] > 50.0  # nothing there up to the far plane


def test_ray_cast_push_and_contacts(backend):
    scene = SceneSpec(
        objects=(ObjectSpec(id=1, shape="cube", size=(0.4,) * 3, position=(0, 0.2, 1.0), friction=0.0),),
        camera=Camera(position=(0, 0.2, -1.0)),
    )
    backend.load(scene)
    hit = backend.ray_cast((0, 0.2, -1.0), (0, 0, 1), 5.0)
    assert hit is not None and hit.id == 1 and hit.distance == pytest.approx(1.8, abs=1e-3)
    assert backend.ray_cast((0, 0.2, -1.0), (0, 0, -1), 0.5) is None
    backend.push(1, hit.point, (0.0, 0.0, 2.0))  # 2 N*s on 1 kg: 2 m/s along +z
    contacts = backend.step(1)
    v = backend.object_states()[1].velocity
    assert v[2] == pytest.approx(2.0, rel=0.05) and abs(v[0]) < 1e-6
    assert any(c.a == 0 and c.b == 1 and c.impulse > 0 for c in contacts)  # resting on the floor


def test_overlapping_and_camera_collider(backend):
    backend.load(SceneSpec(props=(PropSpec(id=4, size=(1, 1, 1), position=(0, 0.5, 0)),)))
    assert backend.overlapping((0, 0.5, 0.6), 0.2) == [4]
    assert backend.overlapping((0, 0.5, 1.0), 0.2) == []


def test_step_before_load_and_after_close_raise():
    b = BulletBackend()
    with pytest.raises(BackendError, match="load"):
        b.step(1)
    b.close()
    b.close()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        b.load(SceneSpec())


def test_make_backend_validates_names(monkeypatch):
    with pytest.raises(ValueError, match="valid backends"):
        make_backend("mujoco")
    monkeypatch.setenv("TDWGYM_BACKEND", "nope")
    with pytest.raises(ValueError, match="TDWGYM_BACKEND"):
        make_backend()
    monkeypatch.setenv("TDWGYM_BACKEND", "bullet")
    b = make_backend()
    assert b.name == "bullet"
    b.close()


def test_same_scene_gives_identical_trajectories_and_frames():
    scene = SceneSpec(
        objects=(
            ObjectSpec(id=1, shape="sphere", size=(0.3,) * 3, position=(-1, 0.15, 1), velocity=(3, 0, 0)),
            ObjectSpec(id=2, shape="cone", size=(0.3, 0.4, 0.3), position=(1, 0.2, 1), velocity=(-2, 0, 0.1)),
        )
    )
    runs = []
    for _ in range(2):
        with BulletBackend() as b:
            b.load(scene)
            for _ in range(30):
                b.step(8)
            runs.append((b.object_states()[2].position.copy(), b.render(32, 32)["rgb"]))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


def test_scene_edits_remove_add_recolour_and_pass_through(backend):
    scene = SceneSpec(
        objects=(
            ObjectSpec(id=1, shape="cube", size=(0.4,) * 3, position=(0, 1.2, 0), color=(1, 0, 0)),
            ObjectSpec(id=2, shape="sphere", size=(0.3,) * 3, position=(0, 0.15, 1.0), velocity=(0, 0, 2.0)),
        ),
        props=(PropSpec(id=5, size=(3, 1, 0.1), position=(0, 0.5, 2.0)),),
        camera=Camera(position=(0, 1.2, -3)),
    )
    backend.load(scene)
    assert backend.render(16, 16, ("segmentation",))["segmentation"][8, 8] == 1
    backend.set_object_color(1, (0, 0, 1))
    rgb = backend.render(16, 16)["rgb"][8, 8]
    assert rgb[2] > rgb[0]
    backend.remove_object(1)
    assert 1 not in backend.object_states()
    assert 1 not in backend.render(16, 16, ("segmentation",))["segmentation"]
    backend.add_object(ObjectSpec(id=8, shape="cone", size=(0.4, 0.5, 0.4), position=(0, 0.25, 0)))
    assert 8 in backend.render(16, 16, ("segmentation",))["segmentation"]
    with pytest.raises(ValueError, match="already"):
        backend.add_object(ObjectSpec(id=2))
    backend.set_collision_enabled(2, 5, False)  # the sphere rolls through the panel
    for _ in range(60):
        backend.step(8)
    assert backend.object_states()[2].position[2] > 2.5
    with pytest.raises(KeyError, match="ids are"):
        backend.remove_object(1)


@pytest.mark.parametrize("width, height", [(64, 48), (33, 21)])
def test_pixel_centres_follow_the_pinhole_model(backend, width, height):
    """Pixel (i, j) shows the ray through (j + 0.5, i + 0.5): a sphere on the optical axis is centred at (W/2, H/2),
    and one off axis where the intrinsics project it."""
    from tdwgym.sim.geometry import camera_forward, camera_right, intrinsics

    cam = Camera(position=(0.0, 1.0, -1.5), yaw=20.0, pitch=-5.0, radius=0.0)
    fwd, right = camera_forward(cam.yaw, cam.pitch), camera_right(cam.yaw)
    down = -np.cross(fwd, right)
    centre = np.array(cam.position) + 2.0 * fwd
    backend.load(
        SceneSpec(
            objects=(ObjectSpec(id=1, shape="sphere", size=(0.25,) * 3, position=tuple(centre)),),
            camera=cam,
            gravity=0.0,
        )
    )
    seg = backend.render(width, height, ("segmentation",))["segmentation"]
    rows, cols = np.nonzero(seg == 1)
    k = intrinsics(width, height, cam.fov)
    rel = centre - np.array(cam.position)
    u, v = k[0, 0] * (rel @ right) / (rel @ fwd) + k[0, 2], k[1, 1] * (rel @ down) / (rel @ fwd) + k[1, 2]
    assert (cols.mean() + 0.5, rows.mean() + 0.5) == (pytest.approx(u, abs=0.1), pytest.approx(v, abs=0.1))


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_patterned_rooms_and_cones_keep_memory_flat_over_resets(backend):
    """Every reset paints new pattern textures and builds new cone meshes; neither may accumulate."""
    from tdwgym.sim.backends.bullet import MAX_TEXTURES

    rng = np.random.default_rng(0)

    def scene(i):
        room = Room(
            width=float(rng.uniform(6, 10)),
            length=float(rng.uniform(6, 10)),
            floor_pattern="checker",
            wall_pattern="stripes",
            floor_color=tuple(rng.uniform(0, 1, 3)),
            wall_color=tuple(rng.uniform(0, 1, 3)),
        )
        d = float(rng.uniform(0.2, 0.4))
        cones = tuple(ObjectSpec(id=k, shape="cone", size=(d, 0.3, d), position=(k - 2.0, 0.15, 0)) for k in (1, 2, 3))
        return SceneSpec(room=room, objects=cones)

    for i in range(40):  # warm-up: allocator pools, the first client swap
        backend.load(scene(i))
        backend.render(16, 16, ("rgb",))
    start = _rss_mb()
    counts = []
    for i in range(200):
        backend.load(scene(i))
        backend.render(16, 16, ("rgb",))
        counts.append(backend.texture_count)
    growth = _rss_mb() - start
    # before the fix: about 100 kB per reset of textures and 7 kB of leaked cone vertices, i.e. > 20 MB here
    assert growth < 4.0, f"RSS grew {growth:.1f} MB over 200 resets"
    assert max(counts) <= MAX_TEXTURES + 3 and min(counts) < max(counts)  # bounded, and released when full


def test_reloading_the_same_patterned_scene_gives_the_same_frames(backend):
    # a texture id does not survive resetSimulation: one reused from the previous load rendered flat grey
    spec = SceneSpec(room=Room(floor_pattern="checker", wall_pattern="stripes"), camera=Camera(pitch=-30.0))
    backend.load(spec)
    first = backend.render(32, 32, ("rgb",))["rgb"]
    for _ in range(3):
        backend.load(spec)
        np.testing.assert_array_equal(backend.render(32, 32, ("rgb",))["rgb"], first)
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 2  # the patterns are in view


def test_a_full_texture_cache_swaps_the_client_without_changing_frames(backend, monkeypatch):
    import tdwgym.sim.backends.bullet as bullet

    rooms = [Room(floor_pattern="checker", floor_color=(0.1 * k, 0.5, 0.5)) for k in range(4)]
    spec = SceneSpec(room=rooms[0], objects=(ObjectSpec(id=1, shape="cone", size=(0.3, 0.4, 0.3)),))
    backend.load(spec)
    before = backend.render(32, 32, ("rgb", "segmentation"))
    monkeypatch.setattr(bullet, "MAX_TEXTURES", 2)
    for room in rooms[1:]:
        backend.load(SceneSpec(room=room))
    assert backend.texture_count <= 2
    backend.load(spec)
    after = backend.render(32, 32, ("rgb", "segmentation"))
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
