"""scripts/switch_settings.py: a world-model file's settings without weights switched, its weights kept."""

from __future__ import annotations

import shutil

import pytest
import torch
from script_tools import load_script

from tdwgym.agents.models import load_world_model
from tdwgym.agents.models.registry import SHIPPED, safe_load


def test_settings_are_switched_the_weights_kept_and_the_switch_recorded(tmp_path, capsys):
    script = load_script("switch_settings")
    src, out = SHIPPED["pretrained"], tmp_path / "switched.pt"
    assert script.main([str(src), "--settings", '{"pixel_spread": 0.5}', "--out", str(out)]) == 0
    assert '"pixel_spread": 0.5' in capsys.readouterr().out
    before, after = safe_load(src), safe_load(out)
    assert after["model_config"]["pixel_spread"] == 0.5
    assert {k: v for k, v in after["model_config"].items() if k != "pixel_spread"} == {
        k: v for k, v in before["model_config"].items() if k != "pixel_spread"
    }
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    assert after["meta"]["switched"][-1]["settings"] == {"pixel_spread": 0.5}
    assert after["meta"]["frames"] == before["meta"]["frames"]  # what was there stays
    assert load_world_model(out, device="cpu").pixel_spread == 0.5


def test_a_setting_with_weights_is_refused_and_the_file_left_as_it_was(tmp_path, capsys):
    script = load_script("switch_settings")
    target = tmp_path / "model.pt"
    shutil.copy(SHIPPED["pretrained"], target)
    before = target.read_bytes()
    for bad in ('{"ego_sigma": true}', '{"colour": 1}', "{}"):
        with pytest.raises(SystemExit):
            script.main([str(target), "--settings", bad])
        assert "error" in capsys.readouterr().err
    assert target.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
