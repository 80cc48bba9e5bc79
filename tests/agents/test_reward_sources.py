"""scripts/reward_sources.py: the objects model's reward split by step, by how long a slot was out of view and by
feature, in a page written by the script (tiny settings); and ``surprise_parts``, what ``evaluate_prepared`` sums."""

from __future__ import annotations

import pytest
import torch
from script_tools import load_script

from tdwgym.agents.models import Stream, load_world_model
from tdwgym.agents.models.slots import CX, VISIBLE, Z


def test_surprise_parts_sum_to_what_evaluate_prepared_returns():
    model = load_world_model("pretrained", device="cpu")
    model.surprise_terms = "whole"
    frames = torch.zeros(2, *model.frame_shape)
    frames[:, 0, VISIBLE], frames[:, 0, Z] = 1.0, 2.0  # one slot seen, 2 m away
    action = torch.zeros(2, 10)
    action[:, 3] = 1.0
    moved = frames.clone()
    moved[1, 0, CX] += 0.3  # the second env's object jumped sideways in the image
    a, b = Stream(model, frames), Stream(model, frames)
    parts = model.surprise_parts(a.prepare(action), moved)
    surprise, loss = model.evaluate_prepared(b.prepare(action), moved)
    assert torch.allclose(parts["surprise"].sum(-1), surprise) and torch.allclose(parts["loss"].sum(-1), loss)
    assert parts["z2"].shape == (2, model.slots, 12) and (parts["z2"][:, 1:] == 0).all()  # unseen slots: 0
    assert parts["z2"][1, 0, 0] > parts["z2"][0, 0, 0]  # the jump is in the centre's error


def test_reward_sources_splits_the_reward_by_step_slot_and_feature(tmp_path, capsys):
    script = load_script("reward_sources")
    doc = tmp_path / "sources.md"
    assert script.main(["--policy", "spin", "--steps", "12", "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text in capsys.readouterr().out
    assert "| camera still |" in text and "| 0 |" in text and "| depth |" in text
    assert "| seen whole before (frames) |" in text and "| 3+ |" in text
    result = script.measure("pretrained", "random", 12, 1, 8)
    assert sum(k["steps"] for k in result["kinds"].values()) == 12
    shares = [k["share"] for k in result["kinds"].values()]
    assert all(0 <= s <= 1 for s in shares) and (sum(shares) == pytest.approx(1.0) or sum(shares) == 0)
    assert sum(result["features"].values()) == pytest.approx(1.0) or sum(result["features"].values()) == 0
    assert result == script.measure("pretrained", "random", 12, 1, 8)  # the same seed, the same split
    assert [r["whole_before"] for r in result["tracked"]] == ["0", "1", "2", "3+"]
    assert all(r["speed"] >= 0 and r["z2_x"] >= 0 for r in result["tracked"])
    with pytest.raises(SystemExit):
        script.main(["--steps", "0", "--doc", ""])


def test_reward_sources_switches_settings_without_weights_and_refuses_others():
    """``--model-kwargs`` switches ``ego_tracked`` and ``reacquire`` on the same weights (a slot that comes back into
    view while the camera turns starts at rest instead of carrying a false speed); a setting that adds weights, or
    one the model does not have, is refused in a line."""
    script = load_script("reward_sources")
    plain = script.measure("pretrained", "spin", 40, 1, 8)
    tracked = script.measure("pretrained", "spin", 40, 1, 8, {"ego_tracked": True, "reacquire": True})
    came_back, came_back_plain = tracked["tracked"][0], plain["tracked"][0]
    assert came_back["slot_frames"] > 0 and came_back["speed"] < 0.5 * came_back_plain["speed"]
    for bad, said in (({"ego_sigma": True}, "without weights"), ({"colour": 1}, "without weights")):
        with pytest.raises(ValueError, match=said):
            script.measure("pretrained", "spin", 2, 1, 8, bad)


def test_reward_sources_measures_the_motion_terms_reward(tmp_path, capsys):
    """``--surprise-terms motion`` scores where objects are, not their looks: the same steps pay no more than under
    ``whole`` (the looks' terms left out), and the page names the terms."""
    script = load_script("reward_sources")
    # without the depth floor: on these 30 steps it absorbs every error the motion terms would pay (both rewards 0)
    unfloored = {"depth_pixels": 0}
    whole = script.measure("pretrained", "random", 30, 1, 8, unfloored)
    motion = script.measure("pretrained", "random", 30, 1, 8, unfloored, "motion")
    assert motion["steps"] == whole["steps"] == 30
    assert motion["features"] == whole["features"]  # the same model and frames: the same errors
    assert motion["reward_per_step"] != whole["reward_per_step"]
    doc = tmp_path / "motion.md"
    assert script.main(["--steps", "6", "--surprise-terms", "motion", "--doc", str(doc)]) == 0
    assert "surprise terms `motion`" in doc.read_text() and "surprise terms `motion`" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        script.main(["--steps", "6", "--surprise-terms", "looks", "--doc", ""])
