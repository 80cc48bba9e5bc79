"""Each scenario behaves as named: free fall, momentum in collisions, tower stability; scene features render."""

import gymnasium as gym
import numpy as np
import pytest

from tdwgym.sim.scene import COMPOUND, SceneSpec

G = 9.81


def test_gravity_dropped_object_follows_half_g_t_squared_until_contact():
    env = gym.make("TDWRoom-Gravity-v0", level=0, resolution=8)
    checked = 0
    try:
        for seed in range(40):
            _, info = env.reset(seed=seed)
            if info["labels"]["motions"][0] != "drop":
                continue
            h0 = info["objects"][1]["position"][1]
            dt = env.unwrapped.backend.timestep * env.unwrapped.substeps
            for k in range(1, 60):
                _, _, _, _, info = env.step(0)
                if any(1 in (c["a"], c["b"]) for c in info["contacts"]):
                    break
                t = k * dt
                drop = h0 - info["objects"][1]["position"][1]
                assert drop == pytest.approx(0.5 * G * t * t, rel=0.03, abs=0.004), (seed, k)
            assert k > 5  # it fell for a while before landing
            checked += 1
            if checked == 3:
                break
    finally:
        env.close()
    assert checked == 3


def _momentum(info, ids, masses):
    return sum(masses[i] * info["objects"][i]["velocity"] for i in ids)


def test_collision_momentum_is_conserved_in_elastic_contacts():
    # Sliding cubes meet face to face, so the contact normal is horizontal and the floor takes no part. (Spheres of
    # different sizes meet above or below their centres: the floor then absorbs part of the impulse.)
    shape = "cube"
    env = gym.make("TDWRoom-Collision-v0", level=0, resolution=8)
    checked = 0
    try:
        for seed in range(200):
            scene = env.unwrapped.sample_scene(seed)
            a, b = scene.object(1), scene.object(2)
            if a.restitution * b.restitution < 0.5 or {a.shape, b.shape} != {shape}:
                continue
            _, info = env.reset(seed=seed)
            masses = {1: a.mass, 2: b.mass}
            before = info
            for _ in range(90):
                _, _, _, _, info = env.step(0)
                if any((c["a"], c["b"]) == (1, 2) for c in info["contacts"]):
                    break
                before = info
            else:
                continue
            for _ in range(2):
                _, _, _, _, info = env.step(0)
            p0, p1 = _momentum(before, (1, 2), masses), _momentum(info, (1, 2), masses)
            scale = sum(masses[i] * np.linalg.norm(before["objects"][i]["velocity"]) for i in (1, 2))
            assert np.linalg.norm((p1 - p0)[[0, 2]]) <= 0.05 * scale, (seed, p0, p1)
            checked += 1
            if checked == 3:
                break
    finally:
        env.close()
    assert checked == 3


@pytest.mark.parametrize("level", [0, 1, 2])
def test_stability_labels_say_which_towers_stand_after_3_seconds(level):
    env = gym.make("TDWRoom-Stability-v0", level=level, resolution=8)
    seen = set()
    try:
        for seed in range(8):
            _, info = env.reset(seed=seed)
            towers = info["labels"]["towers"]
            start = {t["ids"][-1]: info["objects"][t["ids"][-1]]["position"].copy() for t in towers}
            for _ in range(90):
                _, _, _, _, info = env.step(0)
            scene = env.unwrapped.scene
            for t in towers:
                top = t["ids"][-1]
                moved = np.linalg.norm(info["objects"][top]["position"] - start[top])
                size = scene.object(top).size
                if t["stable"]:
                    assert moved < 0.03, (seed, t, moved)
                else:
                    assert moved > 0.5 * size[0], (seed, t, moved)
                seen.add(t["stable"])
    finally:
        env.close()
    assert seen == {True, False}


def test_occlusion_events_fall_while_the_object_is_hidden():
    env = gym.make("TDWRoom-Occlusion-v0", level=0, impossible="vanish", resolution=8)
    try:
        hidden = [env.reset(seed=s)[1]["labels"]["event_hidden"] for s in range(10)]
    finally:
        env.close()
    assert sum(hidden) >= 9


def test_level_features_patterns_compounds_clutter_render_and_round_trip():
    env = gym.make("TDWRoom-Occlusion-v0", level=3, resolution=32)
    try:
        found = False
        for seed in range(30):
            scene = env.unwrapped.sample_scene(seed)
            assert scene.room.floor_pattern == "checker" and any(p.name == "clutter" for p in scene.props)
            if any(o.shape == COMPOUND for o in scene.objects):
                found = True
                obs, _ = env.reset(seed=seed)
                assert obs.std() > 5
                assert SceneSpec.from_json(scene.to_json()) == scene
                break
        assert found
    finally:
        env.close()


def test_level_0_is_bare_and_simple(env_id):
    env = gym.make(env_id, level=0, resolution=8)
    try:
        for seed in range(10):
            scene = env.unwrapped.sample_scene(seed)
            assert scene.room.floor_pattern == "plain" and scene.room.width == 8.0
            assert {o.shape for o in scene.objects} <= {"cube", "sphere"}
            assert not any(p.name == "clutter" for p in scene.props)
    finally:
        env.close()


@pytest.mark.parametrize("shape", ["sphere", "cylinder", "capsule"])
def test_rolling_objects_keep_their_launch_speed(shape):
    """A round object launched on the floor rolls without slipping: no friction loss, speed kept within 3%."""
    from tdwgym.envs.common import make_object
    from tdwgym.sim.backends.bullet import BulletBackend

    rng = np.random.default_rng(0)
    obj = make_object(1, shape, 0.3, "red", rng, 0, position_xz=(0.0, 0.0), velocity=(1.2, 0.0, 0.5))
    start = np.linalg.norm(obj.velocity)
    with BulletBackend() as backend:
        backend.load(SceneSpec(objects=(obj,)))
        for _ in range(30):  # 1 s
            backend.step(8)
        v = backend.object_states()[1].velocity
    assert np.linalg.norm(v[[0, 2]]) == pytest.approx(start, rel=0.03)


def test_distractors_never_show_held_out_values_in_training_scenes():
    env = gym.make("TDWRoom-Occlusion-v0", level=2, resolution=8)
    space = env.unwrapped.FACTORS
    banned = {(c.as_dict()["shape"], c.as_dict()["color"]) for c in space.combinations}
    from tdwgym.envs.factors import PALETTE

    colors = {tuple(np.round(v, 6)): k for k, v in PALETTE.items()}
    seen = 0
    try:
        for seed in range(60):
            scene = env.unwrapped.sample_scene(seed)
            for o in scene.objects:
                if not o.name.startswith("distractor_"):
                    continue
                seen += 1
                shape = o.name.removeprefix("distractor_")
                color = colors[tuple(np.round(o.color, 6))]
                assert (shape, color) not in banned
                assert space["color"].band_of(color, 2) == "train"
    finally:
        env.close()
    assert seen > 20


def test_a_push_in_the_step_that_removes_its_target_does_not_crash():
    from tdwgym.sim.scene import Camera, ObjectSpec, SceneEvent

    env = gym.make("TDWRoom-Occlusion-v0", resolution=8)
    scene = SceneSpec(
        objects=(ObjectSpec(id=1, position=(0, 0.15, 1.0)),),
        camera=Camera(position=(0, 0.3, 0)),
        events=(SceneEvent(1, "remove", 1),),
    )
    try:
        env.reset(options={"scene": scene})
        _, _, _, _, info = env.step(9)
        assert info["events"] == ["remove"] and not info["push"]["hit"] and 1 not in info["objects"]
    finally:
        env.close()


def test_pass_through_for_a_pair_that_never_meets_stays_possible_and_says_why():
    from tdwgym.envs.twins import make_pairs

    env = gym.make("TDWRoom-Collision-v0", impossible="pass_through", resolution=8, level=2)
    skipped = staged = 0
    try:
        for seed in range(12):
            _, info = env.reset(seed=seed)
            labels = info["labels"]
            if labels["impossible"] is None:
                skipped += 1
                assert "never touch" in labels["impossible_skipped"] and not env.unwrapped.scene.events
                # make_pairs restages the pair head-on (matched_motion); when that cannot make them meet either,
                # the seed is left out
                pairs = make_pairs("TDWRoom-Collision-v0", seed, "pass_through", level=2, resolution=8, post_frames=2)
                assert pairs == [] or (
                    len(pairs) == 1 and pairs[0].labels["matched_motion"] and pairs[0].labels["event_frame"] >= 1
                )
            else:
                staged += 1
                assert labels["event_frame"] >= 1
    finally:
        env.close()
    assert staged > 0 and skipped > 0


def test_the_docs_factor_tables_are_the_code():
    """docs/scenarios.md tables each scenario's factors; the bands and values there are what ``FACTORS`` says."""
    import re
    from pathlib import Path

    from tdwgym.envs.twins import load_env_creator
    from tdwgym.registration import ENV_IDS

    text = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()
    sections = dict(re.findall(r"\*\*(TDWRoom-\w+-v0)\*\*\n\n(.*?)(?:\n\n|\Z)", text, re.S))
    assert set(sections) == set(ENV_IDS), "docs/scenarios.md should table the factors of every scenario"
    for env_id, table in sections.items():
        rows = re.findall(r"^\| `(\w+)`[^|]*\| [^|]+ \| (.+?) \|$", table, re.M)
        cls = load_env_creator(gym.spec(env_id).entry_point)
        assert dict(rows) == {f.name: f.describe() for f in cls.FACTORS.factors}, env_id
