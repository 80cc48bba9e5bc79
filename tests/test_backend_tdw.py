"""The ThreeDWorld backend against a test double of the build that speaks TDW's wire protocol (tests/tdw_double.py).

No Unity build, display or GPU is needed: the double is a ZMQ REQ client answering with FlatBuffers output data made
by ``tdw.FBOutput``'s builders. These tests need the ``tdw`` extra (``pip install 'tdwgym[tdw]'``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tdw")
zmq = pytest.importorskip("zmq")

from tdw_double import FakeBuild, segmentation_color  # noqa: E402

from tdwgym.backends import BackendError, make_backend  # noqa: E402
from tdwgym.backends.tdw import (  # noqa: E402
    CAMERA_COLLIDER_ID,
    SHAPE_MODELS,
    TDWBackend,
    TDWConnectionError,
    camera_rotation,
)
from tdwgym.geometry import camera_forward, euler_to_quat, rotate  # noqa: E402
from tdwgym.scene import Camera, ObjectSpec, PropSpec, Room, SceneSpec  # noqa: E402

DOUBLE = Path(__file__).with_name("tdw_double.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.bind(f"tcp://*:{port}")
        return True
    except zmq.ZMQError:
        return False
    finally:
        sock.close(0)
        ctx.term()


def scene_spec(room: Room | None = None, first_id: int = 1) -> SceneSpec:
    i = first_id
    return SceneSpec(
        room=room or Room(width=8.0, length=8.0),
        objects=(
            ObjectSpec(id=i, shape="cube", size=(0.3, 0.3, 0.3), mass=2.0, color=(1.0, 0.0, 0.0), friction=0.6,
                       restitution=0.25, position=(0.0, 0.15, 0.0), velocity=(1.0, 0.0, 0.5)),
            ObjectSpec(id=i + 1, shape="sphere", size=(0.4, 0.4, 0.4), color=(0.0, 1.0, 0.0),
                       position=(1.0, 0.2, 0.5)),
            ObjectSpec(id=i + 2, shape="cylinder", size=(0.2, 0.6, 0.2), color=(0.0, 0.0, 1.0),
                       position=(-1.0, 0.5, 0.5), rotation=(0.0, 30.0, 90.0)),
            ObjectSpec(id=i + 3, shape="cone", size=(0.3, 0.4, 0.3), position=(2.0, 0.2, 1.0)),
            ObjectSpec(id=i + 4, shape="capsule", size=(0.2, 0.6, 0.2), friction=1.5, position=(-2.0, 0.3, 1.0)),
        ),
        props=(PropSpec(id=i + 10, size=(1.5, 1.0, 0.05), position=(0.0, 0.5, 1.5), color=(0.2, 0.35, 0.8)),),
        camera=Camera(position=(0.0, 1.2, -3.0), yaw=10.0, pitch=-15.0, radius=0.2),
    )


@pytest.fixture
def build() -> Iterator[FakeBuild]:
    fb = FakeBuild(free_port()).start()
    yield fb
    fb.stop()
    assert fb.error is None, fb.error
    assert fb.unknown == [], f"commands outside TDW's Command API subset: {fb.unknown}"


@pytest.fixture
def backend(build: FakeBuild) -> Iterator[TDWBackend]:
    be = TDWBackend(port=build.port, launch_build=False, connect_timeout=10, response_timeout=10,
                    log_commands=True)
    build.physics_frames = 0  # count from after the handshake frame
    yield be
    be.close()


def by_type(commands: list[dict], name: str) -> list[dict]:
    return [c for c in commands if c["$type"] == name]


# -- import and connection ----------------------------------------------------------------------------------------
def test_importing_tdwgym_does_not_import_tdw() -> None:
    code = "import sys, tdwgym, tdwgym.backends, tdwgym.backends.tdw; assert 'tdw' not in sys.modules, 'tdw imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_tdw_raises_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tdw", None)
    with pytest.raises(ImportError, match=r"pip install 'tdwgym\[tdw\]'"):
        make_backend("tdw", port=free_port(), launch_build=False)


def test_connect_timeout_raises_helpful_error_quickly_and_frees_the_port() -> None:
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(TDWConnectionError) as info:
        TDWBackend(port=port, launch_build=False, connect_timeout=0.3)
    assert time.monotonic() - t0 < 5.0
    message = str(info.value)
    for needle in (str(port), "DISPLAY", "X server", "-port", "Player.log"):
        assert needle in message
    assert port_is_free(port)


def test_environment_variables_configure_the_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    port = free_port()
    monkeypatch.setenv("TDWGYM_TDW_PORT", str(port))
    monkeypatch.setenv("TDWGYM_TDW_LAUNCH", "0")
    monkeypatch.setenv("TDWGYM_TDW_TIMEOUT", "0.2")
    t0 = time.monotonic()
    with pytest.raises(TDWConnectionError, match=f"port {port} within 0.2 s"):
        TDWBackend()
    assert time.monotonic() - t0 < 5.0
    monkeypatch.setenv("TDWGYM_TDW_BUILD", str(tmp_path / "missing" / "TDW.x86_64"))
    with pytest.raises(TDWConnectionError, match="build not found"):
        TDWBackend()


def test_a_port_in_use_is_reported() -> None:
    port = free_port()
    ctx = zmq.Context()
    taken = ctx.socket(zmq.REP)
    taken.bind(f"tcp://*:{port}")
    try:
        with pytest.raises(TDWConnectionError, match=f"cannot bind the TDW controller to port {port}"):
            TDWBackend(port=port, launch_build=False, connect_timeout=0.2)
    finally:
        taken.close(0)
        ctx.term()


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "TDW.x86_64"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_launches_a_build_executable_on_a_free_port_and_quits_it(tmp_path: Path) -> None:
    exe = _script(tmp_path, f'exec "{sys.executable}" "{DOUBLE}" "$@"')
    be = TDWBackend(port=0, build_path=exe, connect_timeout=30, response_timeout=30)
    try:
        assert be.port > 0
        be.load(scene_spec())
        assert sorted(be.object_states()) == [1, 2, 3, 4, 5]
    finally:
        be.close()
    assert be._process is not None and be._process.returncode == 0  # it quit on terminate
    assert port_is_free(be.port)


def test_a_launched_build_that_exits_fails_fast(tmp_path: Path) -> None:
    exe = _script(tmp_path, "exit 3")
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(TDWConnectionError, match="exited with code 3"):
        TDWBackend(port=port, build_path=exe, connect_timeout=20)
    assert time.monotonic() - t0 < 10.0
    assert port_is_free(port)


# -- scene construction ----------------------------------------------------------------------------------------
def test_load_sends_room_primitives_physics_and_camera(build: FakeBuild, backend: TDWBackend) -> None:
    from tdw.librarian import ModelLibrarian
    from tdw.tdw_utils import TDWUtils

    assert build.commands_of(0) == ["set_error_handling", "send_version", "load_scene"]
    scene = scene_spec()
    backend.load(scene)
    load = build.frames[-1]
    assert load[0] == {"$type": "simulate_physics", "value": False}  # loading takes no simulated time
    assert by_type(load, "create_exterior_walls")[0]["walls"] == TDWUtils.create_empty_room(8, 8)["walls"]
    assert by_type(load, "set_time_step")[0]["time_step"] == pytest.approx(1 / 240)
    assert by_type(load, "set_gravity_vector")[0]["gravity"] == {"x": 0.0, "y": -9.81, "z": 0.0}

    adds = {c["id"]: c for c in by_type(load, "add_object")}
    assert set(adds) == {1, 2, 3, 4, 5, 11, CAMERA_COLLIDER_ID}
    for obj in scene.objects:
        library, name = SHAPE_MODELS[obj.shape]
        assert adds[obj.id]["name"] == name
        assert adds[obj.id]["url"] == ModelLibrarian(library).get_record(name).get_url()
    scales = {c["id"]: c["scale_factor"] for c in by_type(load, "scale_object")}
    assert scales[1] == pytest.approx({"x": 0.3, "y": 0.3, "z": 0.3})
    assert scales[5] == pytest.approx({"x": 0.2, "y": 0.3, "z": 0.2})  # prim_capsule is 1 x 2 x 1
    assert scales[11] == pytest.approx({"x": 1.5, "y": 1.0, "z": 0.05})
    # TDW places the bottom-centre pivot; the scene gives the bounding-box centre.
    assert adds[1]["position"] == pytest.approx({"x": 0.0, "y": 0.0, "z": 0.0})
    assert adds[5]["position"] == pytest.approx({"x": -2.0, "y": 0.3, "z": 1.0})  # the capsule's pivot is central
    assert {c["id"]: c["mass"] for c in by_type(load, "set_mass")}[1] == 2.0
    material = {c["id"]: c for c in by_type(load, "set_physic_material")}
    assert material[1]["dynamic_friction"] == material[1]["static_friction"] == 0.6
    assert material[1]["bounciness"] == 0.25
    assert material[5]["dynamic_friction"] == 1.0  # PhysX takes [0, 1]
    assert {c["id"]: c["color"] for c in by_type(load, "set_color")}[2] == {"r": 0.0, "g": 1.0, "b": 0.0, "a": 1.0}
    kinematic = {c["id"]: c["is_kinematic"] for c in by_type(load, "set_kinematic_state")}
    assert kinematic[11] and kinematic[CAMERA_COLLIDER_ID] and not kinematic[1]
    assert by_type(load, "set_velocity") == [{"$type": "set_velocity", "id": 1,
                                             "velocity": {"x": 1.0, "y": 0.0, "z": 0.5}}]
    assert by_type(load, "hide_object") == [{"$type": "hide_object", "id": CAMERA_COLLIDER_ID}]

    assert by_type(load, "create_avatar") == [{"$type": "create_avatar", "type": "A_Img_Caps_Kinematic", "id": "a"}]
    assert by_type(load, "teleport_avatar_to")[0]["position"] == {"x": 0.0, "y": 1.2, "z": -3.0}
    q = by_type(load, "rotate_sensor_container_to")[0]["rotation"]
    look = rotate((q["x"], q["y"], q["z"], q["w"]), (0.0, 0.0, 1.0))  # Unity cameras look along local +z
    np.testing.assert_allclose(look, camera_forward(10.0, -15.0), atol=1e-12)
    assert by_type(load, "set_field_of_view")[0]["field_of_view"] == pytest.approx(54.43)
    assert by_type(load, "send_collisions")[0]["collision_types"] == ["obj", "env"]
    assert by_type(load, "send_segmentation_colors")[0]["ids"] == [11, 1, 2, 3, 4, 5]
    assert build.physics_frames == 0


def test_object_states_are_bounding_box_centres(build: FakeBuild, backend: TDWBackend) -> None:
    scene = scene_spec()
    backend.load(scene)
    frames = len(build.frames)
    states = backend.object_states()
    assert len(build.frames) == frames  # served from the load frame
    assert sorted(states) == [1, 2, 3, 4, 5]
    for obj in scene.objects:
        np.testing.assert_allclose(states[obj.id].position, obj.position, atol=1e-6)
    np.testing.assert_allclose(states[1].velocity, (1.0, 0.0, 0.5), atol=1e-7)
    # a cylinder lying on its side: TDW got pivot = centre - R (0, h/2, 0), and the centre round-trips
    cyl = scene.objects[2]
    q = euler_to_quat(cyl.rotation)
    np.testing.assert_allclose(build.objects[3].position, np.array(cyl.position) - rotate(q, (0.0, 0.3, 0.0)),
                               atol=1e-6)
    assert abs(build.objects[3].position[1] - cyl.position[1]) < 1e-6  # on its side: the pivot is level
    np.testing.assert_allclose(states[3].rotation, q, atol=1e-6)


# -- simulation --------------------------------------------------------------------------------------------------
def test_step_runs_substeps_in_one_frame(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    assert backend.step(8) == []
    frame = build.frames[-1]
    assert frame[0] == {"$type": "simulate_physics", "value": True}
    assert by_type(frame, "step_physics") == [{"$type": "step_physics", "frames": 7}]
    assert by_type(frame, "send_transforms")[0]["ids"] == [1, 2, 3, 4, 5]
    assert by_type(frame, "send_rigidbodies")[0]["ids"] == [1, 2, 3, 4, 5]
    assert build.physics_frames == 8
    np.testing.assert_allclose(backend.object_states()[1].position, (8 / 240, 0.15, 4 / 240), atol=1e-6)

    backend.step(1)
    assert by_type(build.frames[-1], "step_physics") == []
    assert build.frames[-1][0]["$type"] != "simulate_physics"  # already running
    frames = len(build.frames)
    assert backend.step(0) == []
    assert len(build.frames) == frames
    assert build.physics_frames == 9


def test_push_is_an_impulse_aimed_by_a_ray_cast(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    backend.set_camera((0.0, 0.15, -2.0), 0.0, 0.0)
    hit = backend.ray_cast((0.0, 0.15, -2.0), (0.0, 0.0, 1.0), 5.0)
    assert hit is not None and hit.id == 1
    ray = by_type(build.frames[-1], "send_raycast")[0]
    assert ray["origin"] == {"x": 0.0, "y": 0.15, "z": -2.0} and ray["destination"]["z"] == pytest.approx(3.0)
    assert {"$type": "simulate_physics", "value": True} not in build.frames[-1]  # still paused since the load
    assert hit.distance == pytest.approx(np.linalg.norm(hit.point - (0.0, 0.15, -2.0)))
    frames, physics = len(build.frames), build.physics_frames
    backend.push(1, (0.0, 0.15, -0.15), (0.0, 0.0, 3.0))
    assert len(build.frames) == frames  # applied with the next step
    backend.step(1)
    frame = build.frames[-1]
    force = by_type(frame, "apply_force_to_object")
    assert force == [{"$type": "apply_force_to_object", "id": 1, "force": {"x": 0.0, "y": 0.0, "z": 3.0}}]
    assert [c["$type"] for c in frame].index("apply_force_to_object") < len(frame) - 2
    assert build.physics_frames == physics + 1
    np.testing.assert_allclose(backend.object_states()[1].velocity, (1.0, 0.0, 0.5 + 3.0 / 2.0), atol=1e-6)
    # an off-centre push adds the angular impulse r x J
    backend.push(1, backend.object_states()[1].position + (0.1, 0.0, 0.0), (0.0, 0.0, 1.0))
    backend.step(1)
    torque = by_type(build.frames[-1], "apply_torque_to_object")[0]["torque"]
    assert torque == pytest.approx({"x": 0.0, "y": -0.1, "z": 0.0})
    with pytest.raises(KeyError):
        backend.push(11, (0, 0, 0), (0, 0, 1))  # props are not pushable


def test_ray_misses_and_overlaps(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    assert backend.ray_cast((0.0, 2.0, -3.0), (0.0, 1.0, 0.0), 0.5) is None
    floor = backend.ray_cast((3.0, 1.0, -3.0), (0.0, -1.0, 0.0), 5.0)
    assert floor is not None and floor.id == 0 and floor.distance == pytest.approx(1.0)
    assert backend.overlapping((0.0, 0.04, 0.0), 0.05) == [0, 1]
    assert backend.overlapping((0.0, 2.5, -3.5), 0.1) == []
    assert build.physics_frames == 0  # queries never advance time


def test_contacts_from_collision_output(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    # Both bodies report the same collision; Unity's normal points from the collidee to the collider.
    build.queue_collision(2, 1, (0.0, 3.0, 4.0), (1.0, 0.0, 0.0), (0.5, 0.2, 0.2))
    build.queue_collision(1, 2, (0.0, -3.0, -4.0), (-1.0, 0.0, 0.0), (0.5, 0.2, 0.2))
    build.queue_env_collision(3, (0.0, 1.0, 0.0), (-1.0, 0.0, 0.5))
    build.queue_collision(1, CAMERA_COLLIDER_ID, (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    contacts = backend.step(2)
    assert [(c.a, c.b) for c in contacts] == [(0, 3), (1, 2)]
    room, pair = contacts
    assert pair.impulse == pytest.approx(5.0)
    np.testing.assert_allclose(pair.normal, (-1.0, 0.0, 0.0))  # from b (2) to a (1)
    np.testing.assert_allclose(pair.point, (0.5, 0.2, 0.2), atol=1e-6)
    assert room.impulse == 0.0
    np.testing.assert_allclose(room.normal, (0.0, -1.0, 0.0))  # from the object to the room
    assert backend.step(1) == []


# -- rendering ----------------------------------------------------------------------------------------------------
def test_render_decodes_rgb_depth_and_segmentation(build: FakeBuild, backend: TDWBackend) -> None:
    scene = scene_spec()
    backend.load(scene)
    out = backend.render(64, 48, ("rgb", "depth", "segmentation"))
    query = build.frames[-1]
    assert by_type(query, "set_screen_size") == [{"$type": "set_screen_size", "width": 64, "height": 48}]
    assert by_type(query, "set_pass_masks")[0]["pass_masks"] == ["_img", "_depth", "_id"]
    assert by_type(query, "send_images") == [{"$type": "send_images", "ids": ["a"], "frequency": "once"}]
    assert out["rgb"].shape == (48, 64, 3) and out["rgb"].dtype == np.uint8
    assert out["depth"].shape == (48, 64) and out["depth"].dtype == np.float32
    assert out["segmentation"].shape == (48, 64) and out["segmentation"].dtype == np.int32

    truth = build.render_arrays()
    np.testing.assert_array_equal(out["rgb"], truth["rgb"])
    np.testing.assert_allclose(out["depth"], truth["depth"], atol=1e-3)  # including TDW's vertical flip
    assert out["depth"][0, 0] == pytest.approx(1.0, abs=1e-3)
    seg = out["segmentation"]
    assert set(np.unique(seg)) == {0, 1, 2, 3, 4, 5, 11}
    assert (seg[:24] == 0).all()
    assert seg[-1, 0] == 1 and tuple(out["rgb"][-1, 0]) == (255, 0, 0)
    codes = {segmentation_color(i): i for i in (1, 2, 3, 4, 5, 11)}
    for y, x in [(47, 0), (30, 20), (40, 63)]:
        assert codes.get(tuple(int(v) for v in truth["id"][y, x]), 0) == seg[y, x]
    assert build.physics_frames == 0


def test_images_ride_along_with_steps(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    backend.render(32, 32, ("rgb",))
    frames = len(build.frames)
    backend.render(32, 32, ("rgb",))
    assert len(build.frames) == frames  # nothing changed: cached
    backend.set_camera((0.0, 1.2, -3.0), 10.0, -15.0)  # the same pose
    backend.render(32, 32, ("rgb",))
    assert len(build.frames) == frames
    backend.step(4)
    step = build.frames[-1]
    assert by_type(step, "send_images") and not by_type(step, "set_screen_size") and not by_type(step,
                                                                                                 "set_pass_masks")
    rgb = backend.render(32, 32, ("rgb",))["rgb"]
    assert len(build.frames) == frames + 1
    np.testing.assert_array_equal(rgb, build.render_arrays()["rgb"])
    backend.set_camera((0.5, 1.0, -2.0), 45.0, 0.0)
    physics = build.physics_frames
    backend.render(32, 32, ("rgb",))
    query = build.frames[-1]
    assert query[0] == {"$type": "simulate_physics", "value": False}
    assert by_type(query, "teleport_avatar_to")[0]["position"] == {"x": 0.5, "y": 1.0, "z": -2.0}
    assert by_type(query, "teleport_object")[0] == {"$type": "teleport_object", "id": CAMERA_COLLIDER_ID,
                                                    "position": {"x": 0.5, "y": 0.8, "z": -2.0}}
    q = by_type(query, "rotate_sensor_container_to")[0]["rotation"]
    assert (q["x"], q["y"], q["z"], q["w"]) == pytest.approx(camera_rotation(45.0, 0.0))
    assert build.physics_frames == physics
    with pytest.raises(ValueError, match="unknown render passes"):
        backend.render(32, 32, ("normals",))


# -- resets and shutdown ------------------------------------------------------------------------------------------
def test_reset_reuses_the_build(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    backend.step(3)
    backend.load(scene_spec(first_id=21))
    reload = build.frames[-1]
    assert sorted(c["id"] for c in by_type(reload, "destroy_object")) == [1, 2, 3, 4, 5, 11, CAMERA_COLLIDER_ID]
    for name in ("load_scene", "create_exterior_walls", "create_avatar"):
        assert by_type(reload, name) == []
    assert sorted(build.objects) == [21, 22, 23, 24, 25, 31, CAMERA_COLLIDER_ID]
    assert sorted(backend.object_states()) == [21, 22, 23, 24, 25]
    assert reload[0] == {"$type": "simulate_physics", "value": False}
    # a room of another size reloads the empty scene in the same build
    backend.load(scene_spec(room=Room(width=10.0, length=7.0)))
    frame = build.commands_of(len(build.frames) - 1)
    assert frame.index("load_scene") < frame.index("create_exterior_walls") < frame.index("create_avatar")
    assert "destroy_object" not in frame
    assert build.commands_of(0) == ["set_error_handling", "send_version", "load_scene"]  # one connection throughout
    # masks are per avatar: a new avatar gets them again
    backend.render(16, 16, ("rgb",))
    assert by_type(build.frames[-1], "set_pass_masks")


def test_set_object_state_teleports_the_pivot(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    q = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))  # 90 degrees about z
    backend.set_object_state(1, position=(1.0, 0.5, 1.0), rotation=q, velocity=(0.0, 1.0, 0.0))
    state = backend.object_states()[1]
    np.testing.assert_allclose(state.position, (1.0, 0.5, 1.0), atol=1e-6)
    np.testing.assert_allclose(state.rotation, q, atol=1e-6)
    np.testing.assert_allclose(state.velocity, (0.0, 1.0, 0.0), atol=1e-7)
    np.testing.assert_allclose(build.objects[1].position, (1.15, 0.5, 1.0), atol=1e-6)  # the pivot, rotated
    assert build.physics_frames == 0


def test_command_log_to_memory_and_file(build: FakeBuild, tmp_path: Path) -> None:
    path = tmp_path / "commands.jsonl"
    be = TDWBackend(port=build.port, launch_build=False, connect_timeout=10, log_commands=path)
    try:
        be.load(scene_spec())
        be.step(2)
    finally:
        be.close()
    kinds = [e["kind"] for e in be.command_log]
    assert kinds == ["connect", "load", "step", "close"]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["kind"] for e in lines] == ["connect", "load", "step"]
    assert lines[2]["commands"] == build.frames[2]


def test_no_command_log_by_default(build: FakeBuild) -> None:
    be = TDWBackend(port=build.port, launch_build=False, connect_timeout=10)
    try:
        be.load(scene_spec())
        assert len(be.command_log) == 0
    finally:
        be.close()


def test_close_quits_the_build_and_frees_the_port(build: FakeBuild, backend: TDWBackend) -> None:
    backend.load(scene_spec())
    backend.close()
    backend.close()
    assert build.terminated and build.commands_of(len(build.frames) - 1) == ["terminate"]
    assert port_is_free(build.port)
    with pytest.raises(BackendError, match="closed|no scene"):
        backend.step(1)
    with pytest.raises(BackendError):
        backend.load(scene_spec())


def test_version_record(backend: TDWBackend) -> None:
    v = backend.version()
    assert v["backend"] == "tdw" and v["tdw"] and v["time_step"] == pytest.approx(1 / 240)


# -- the env end to end -------------------------------------------------------------------------------------------
def test_occlusion_env_runs_on_tdw_end_to_end(build: FakeBuild) -> None:
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("tdwgym.envs.occlusion")
    env = gym.make("TDWRoom-Occlusion-v0", backend="tdw", obs_mode="rgb_seg", resolution=(24, 32),
                   backend_kwargs={"port": build.port, "launch_build": False, "connect_timeout": 10,
                                   "log_commands": True})
    try:
        backend = env.unwrapped.backend
        assert isinstance(backend, TDWBackend)
        obs, info = env.reset(seed=3)
        scene = env.unwrapped.scene
        ids = {o.id for o in scene.objects} | {p.id for p in scene.props}
        assert obs["rgb"].shape == (24, 32, 3) and obs["rgb"].dtype == np.uint8
        assert set(np.unique(obs["segmentation"])) <= ids | {0}
        assert set(info["objects"]) == {o.id for o in scene.objects}
        for obj in scene.objects:
            np.testing.assert_allclose(info["objects"][obj.id]["position"], obj.position, atol=1e-5)
        physics = build.physics_frames
        build.queue_env_collision(scene.objects[0].id, (0.0, 1.0, 0.0), (0.0, 0.0, 0.0))
        for action in (0, 1, 6, 9):
            obs, reward, terminated, truncated, info = env.step(action)
            assert obs["segmentation"].shape == (24, 32)
            if action == 0:
                assert [(c["a"], c["b"]) for c in info["contacts"]] == [(0, scene.objects[0].id)]
        assert build.physics_frames == physics + 4 * env.unwrapped.substeps
        steps = [e for e in backend.command_log if e["kind"] == "step"]
        assert len(steps) == 4
        assert all(by_type(e["commands"], "step_physics")[0]["frames"] == env.unwrapped.substeps - 1 for e in steps)
        assert all(by_type(e["commands"], "send_images") for e in steps)  # observations ride along
        first_ids = sorted(build.objects)
        env.reset(seed=4)
        reload = [e for e in backend.command_log if e["kind"] == "load"][-1]["commands"]
        if by_type(reload, "load_scene"):  # another room size: the empty scene is reloaded in the same build
            assert by_type(reload, "destroy_object") == []
        else:
            assert sorted(c["id"] for c in by_type(reload, "destroy_object")) == first_ids
            assert by_type(reload, "create_avatar") == []
        assert sum(1 for e in backend.command_log if e["kind"] == "connect") == 1
    finally:
        env.close()
    assert build.terminated


def test_tdwgym_backend_env_var_selects_tdw(build: FakeBuild, monkeypatch: pytest.MonkeyPatch) -> None:
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("tdwgym.envs.occlusion")
    monkeypatch.setenv("TDWGYM_BACKEND", "tdw")
    monkeypatch.setenv("TDWGYM_TDW_PORT", str(build.port))
    monkeypatch.setenv("TDWGYM_TDW_LAUNCH", "false")
    env = gym.make("TDWRoom-Occlusion-v0", resolution=16)
    try:
        assert isinstance(env.unwrapped.backend, TDWBackend)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (16, 16, 3)
    finally:
        env.close()


if os.name == "nt":  # pragma: no cover - the launch tests use a POSIX shell script
    pytestmark = pytest.mark.skip("POSIX only")
