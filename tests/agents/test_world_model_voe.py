"""scripts/world_model_voe.py writes its tables from tiny evaluations."""

from script_tools import load_script


def test_the_voe_page_is_written_with_every_scorer_and_the_probes(tmp_path):
    from tdwgym.agents.models import make_world_model
    from tdwgym.agents.pretraining import save_world_model

    model = make_world_model("objects", (24, 19), 10, device="cpu", hidden=8, resolution=32)
    save_world_model(model, tmp_path / "m.pt")
    script = load_script("world_model_voe")
    out = tmp_path / "page.md"
    args = ["--model", str(tmp_path / "m.pt"), "--scenarios", "occlusion", "--levels", "0", "--splits", "test_id"]
    assert script.main([*args, "--pairs", "1", "--probe-clips", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| occlusion | 0 | test_id | vanish" in text and "quadruplet" in text
    assert "| uniform_motion | test_id |" in text and "python scripts/world_model_voe.py --model" in text
    # a second run reuses the reports
    assert script.main([*args, "--pairs", "1", "--probe-clips", "1", "--out", str(out)]) == 0
    assert "occlusion level 0 test_id: 0 s" in out.read_text()
