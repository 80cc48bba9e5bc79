import json

import pytest

from tdwgym.sim.scene import SHAPES, Camera, Light, ObjectSpec, PropSpec, Room, SceneError, SceneSpec


def _scene() -> SceneSpec:
    objects = tuple(
        ObjectSpec(
            id=i + 1,
            shape=s,
            size=(0.3, 0.5, 0.3) if s in ("cylinder", "cone", "capsule") else (0.3,) * 3,
            position=(i * 0.5, 0.3, 1.0),
            velocity=(1, 0, 0),
            color=(0.1, 0.2, 0.3),
        )
        for i, s in enumerate(SHAPES)
    )
    return SceneSpec(
        room=Room(width=7, length=6),
        objects=objects,
        props=(PropSpec(id=10, name="occluder"),),
        camera=Camera(yaw=30, pitch=-10),
        light=Light(shadows=True),
        labels={"scenario": "x", "k": [1, 2]},
    )


def test_json_round_trip_is_exact():
    scene = _scene()
    text = scene.to_json()
    back = SceneSpec.from_json(text)
    assert back == scene
    assert json.loads(back.to_json()) == json.loads(text)


def test_scene_module_imports_no_simulator():
    import subprocess
    import sys

    code = (
        "import sys, tdwgym.sim.scene; bad = [m for m in ('pybullet', 'tdw', 'torch') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": "torus"}, "shape must be one of"),
        ({"size": (0.1, -1, 0.1)}, "positive"),
        ({"shape": "sphere", "size": (0.1, 0.2, 0.1)}, "equal extents"),
        ({"mass": 0}, "mass"),
        ({"mass": -1.0}, r"ObjectSpec.mass must be a finite number in \(0, 1e\+06\] kg, got -1.0"),
        ({"mass": float("inf")}, r"ObjectSpec.mass must be a finite number in \(0, 1e\+06\] kg, got inf"),
        ({"mass": float("nan")}, r"ObjectSpec.mass .* got nan"),
        ({"mass": 1e9}, r"ObjectSpec.mass .* kg, got 1000000000.0"),
        ({"mass": "heavy"}, r"ObjectSpec.mass must be a number"),
        ({"friction": float("inf")}, r"ObjectSpec.friction must be a finite number in \[0, inf\]"),
        ({"restitution": float("nan")}, r"ObjectSpec.restitution .* \[0, 1\]"),
        ({"color": (2, 0, 0)}, r"\[0, 1\]"),
        ({"restitution": 1.5}, "restitution"),
        ({"position": (0, float("nan"), 0)}, "finite"),
    ],
)
def test_invalid_object_specs_raise(kwargs, match):
    with pytest.raises(SceneError, match=match):
        ObjectSpec(id=1, **kwargs)


def test_duplicate_ids_and_unknown_keys_raise():
    with pytest.raises(SceneError, match="unique"):
        SceneSpec(objects=(ObjectSpec(id=1),), props=(PropSpec(id=1),))
    data = _scene().to_dict()
    data["room"]["colour"] = 1
    with pytest.raises(SceneError, match="unknown Room keys"):
        SceneSpec.from_dict(data)


def test_labels_are_stored_in_json_form_so_round_trips_compare_equal():
    import numpy as np

    scene = SceneSpec(labels={"look_at": (1.0, 2.0, 3.0), "n": np.int64(3), "v": np.array([0.5, 1.5])})
    assert scene.labels == {"look_at": [1.0, 2.0, 3.0], "n": 3, "v": [0.5, 1.5]}
    assert SceneSpec.from_json(scene.to_json()) == scene
    with pytest.raises(SceneError, match="JSON-serialisable"):
        SceneSpec(labels={"f": object()})


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SceneSpec(gravity=float("nan")), "gravity"),
        (lambda: Camera(yaw=float("inf")), "yaw"),
        (lambda: Camera(pitch=float("nan")), "pitch"),
        (lambda: PropSpec(id=1, friction=-1), "friction"),
        (lambda: PropSpec(id=1, restitution=5), "restitution"),
        (lambda: Room(ceiling="no"), "Room.ceiling"),
        (lambda: Room(ceiling_color=(0.5, 2.0, 0.5)), "Room.ceiling_color"),
        (lambda: Room(width=float("inf")), r"Room.width must be a finite number in \(0, 1000\] m, got inf"),
        (lambda: Room(height=float("nan")), r"Room.height .* got nan"),
        (lambda: Room(tile_size=float("inf")), r"Room.tile_size must be a finite number"),
        (lambda: Room(tile_size=0.0), r"Room.tile_size .* \(0, inf\] m, got 0.0"),
        # 1e-3 m tiles once asked the renderer for a 64,000-texel-square texture (32 GiB)
        (
            lambda: Room(floor_pattern="checker", tile_size=1e-3),
            r"Room.tile_size must be >= 0.03125 m for a patterned 8 x 8 x 3 m room \(at most 256 tiles along a "
            r"side\), got 0.001",
        ),
        (lambda: Camera(far=float("inf")), r"0 < near < far < inf"),
        (lambda: Camera(radius=float("nan")), r"Camera.radius"),
        (lambda: Light(ambient=float("inf")), r"Light.ambient"),
    ],
)
def test_non_finite_or_out_of_range_values_raise(make, match):
    with pytest.raises(SceneError, match=match):
        make()


def test_scenes_with_every_event_kind_round_trip_through_json():
    import dataclasses

    from tdwgym.sim.scene import SceneEvent

    obj = ObjectSpec(id=1, position=(0, 0.2, 0))
    events = (
        SceneEvent(3, "add", 2, {"object": dataclasses.asdict(dataclasses.replace(obj, id=2))}),
        SceneEvent(
            4, "replace", 1, {"object": dataclasses.asdict(dataclasses.replace(obj, shape="sphere", size=(0.3,) * 3))}
        ),
        SceneEvent(5, "teleport", 1, {"offset": (0.5, 0.0, 0.0)}),
        SceneEvent(6, "recolor", 1, {"color": (0.0, 1.0, 0.0)}),
        SceneEvent(7, "collision", 1, {"other": 0, "enabled": False}),
        SceneEvent(8, "remove", 1),
    )
    scene = SceneSpec(objects=(obj,), events=events)
    assert SceneSpec.from_json(scene.to_json()) == scene
    with pytest.raises(SceneError, match="object_id"):
        SceneEvent(1, "remove", "x")


def test_a_plain_room_takes_any_finite_tile_size_and_a_pattern_a_bounded_one():
    assert Room(tile_size=1e-3).tile_size == 1e-3  # never painted
    assert Room(floor_pattern="stripes", tile_size=8 / 256).tile_size == 8 / 256


def _obj_dict(**kw):
    import dataclasses

    return dataclasses.asdict(ObjectSpec(id=2, **kw))


@pytest.mark.parametrize(
    "kind, object_id, params, match",
    [
        ("teleport", 1, {"offset": (float("nan"), 0.0, 0.0)}, r"params\['offset'\] \(metres\) must be 3 finite"),
        ("teleport", 1, {"offset": (1.0, float("inf"), 0.0)}, r"params\['offset'\].* finite"),
        ("teleport", 1, {"offset": (1.0, 0.0)}, r"must be 3 finite"),
        ("teleport", 1, {}, r"a 'teleport' SceneEvent needs params \['offset'\], missing \['offset'\]"),
        ("recolor", 1, {"color": (0.5, float("nan"), 0.5)}, r"params\['color'\]"),
        ("recolor", 1, {"color": (0.5, 2.0, 0.5)}, r"params\['color'\] must be RGB floats in \[0, 1\]"),
        ("add", 2, {"object": {"id": 2, "mass": float("nan")}}, r"ObjectSpec.mass"),
        ("add", 3, {"object": _obj_dict()}, r"adds object_id 3, but its object has id 2"),
        ("replace", 1, {"object": {"id": 1, "size": (0.1, float("nan"), 0.1)}}, r"ObjectSpec.size"),
        ("collision", 1, {"other": -1, "enabled": True}, r"params\['other'\] must be an object id >= 0"),
        ("collision", 1, {"other": 0, "enabled": "yes"}, r"params\['enabled'\] must be True or False"),
    ],
)
def test_event_params_are_checked_when_the_event_is_made(kind, object_id, params, match):
    from tdwgym.sim.scene import SceneEvent

    with pytest.raises(SceneError, match=match):
        SceneEvent(3, kind, object_id, params)


def test_rooms_have_a_ceiling_unless_told_otherwise():
    assert Room().ceiling
    open_top = SceneSpec(room=Room(ceiling=False, ceiling_color=(0.1, 0.2, 0.3)))
    assert SceneSpec.from_json(open_top.to_json()) == open_top
    high = ObjectSpec(id=1, shape="cube", size=(0.4, 0.4, 0.4), position=(0.0, 2.9, 0.0))
    with pytest.raises(SceneError, match=r"objects/props \[1\] reach above the ceiling at Room.height=3.0"):
        SceneSpec(objects=(high,))
    assert SceneSpec(room=Room(ceiling=False), objects=(high,)).objects == (high,)
    assert SceneSpec(room=Room(height=3.5), objects=(high,)).objects == (high,)
    with pytest.raises(SceneError, match="the camera"):
        SceneSpec(camera=Camera(position=(0.0, 3.2, 0.0)))
