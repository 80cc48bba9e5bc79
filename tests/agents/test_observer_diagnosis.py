"""scripts/observer_diagnosis.py scores the analytic observer on the evaluation's items and writes its page."""

import numpy as np
from script_tools import load_script


def test_the_observer_page_is_written_with_the_meters_and_the_failures_explained(tmp_path):
    script = load_script("observer_diagnosis")
    out = tmp_path / "page.md"
    argv = ["--levels", "0", "--kinds", "vanish", "--items", "1", "--post-frames", "10", "--doc", str(out)]
    assert script.main(argv) == 0
    text = out.read_text()
    assert "| 0 | vanish | 1 |" in text and "python scripts/observer_diagnosis.py --levels 0" in text
    assert "## Pairs the observer ranks wrongly" in text and "copy-last" in text


def test_a_pair_whose_twins_show_the_same_objects_is_diagnosed_not_visible():
    script = load_script("observer_diagnosis")
    rgb = np.zeros((12, 16, 16, 3), np.uint8)
    seg = np.zeros((12, 16, 16), np.int32)
    depth = np.full((12, 16, 16), 3.0, np.float32)
    seg[:, 4:8, 4:8] = 1
    reason, _ = script.diagnose((rgb, seg, depth), (rgb, seg.copy(), depth), event_frame=5)
    assert reason == "not visible"
    late = seg.copy()
    late[10:, 10:14, 10:14] = 2  # an object only the impossible clip shows, in its last two frames
    reason, detail = script.diagnose((rgb, seg, depth), (rgb, late, depth), event_frame=5)
    assert reason == "barely visible" and "differ in 2 frames" in detail
