"""scripts/trace_objects.py: the ``objects`` model's expectation of one VoE quadruplet's object, frame by frame."""

from __future__ import annotations

import re

import pytest
from script_tools import load_script


def test_trace_prints_the_headline_verdicts_and_a_row_per_frame_of_each_clip(capsys):
    script = load_script("trace_objects")
    assert script.main(["--kind", "vanish", "--item", "0", "--level", "0", "--post-frames", "12"]) == 0
    out = capsys.readouterr().out
    heads = re.search(r"headline \(mean surprise from the event\): A (\S+), B (\S+), A\|B (\S+), B\|A (\S+)", out)
    assert heads is not None and all(abs(float(h)) < 1e4 for h in heads.groups())
    assert re.search(r"pairwise: A < A\|B (True|False), B < B\|A (True|False)", out)
    tables = out.split("\n## ")[1:]
    assert [t.splitlines()[0] for t in tables] == ["A", "B", "A|B", "B|A"]
    event_rows = [line for t in tables for line in t.splitlines() if line.endswith("<- event")]
    assert len(event_rows) == 4  # one event frame marked per clip
    for row in event_rows:
        seen, whole, x, pred_x, vx, p_seen, _ = (c.strip() for c in row.split("|")[1:])
        assert seen in ("0", "1") and whole in ("0", "1") and 0.0 <= float(p_seen) <= 1.0
        float(x), float(pred_x), float(vx)


def test_trace_switches_settings_without_weights_and_refuses_unknown_ones(capsys):
    script = load_script("trace_objects")
    args = ["--kind", "vanish", "--item", "0", "--level", "0", "--post-frames", "12"]
    script.main(args)
    plain = capsys.readouterr().out.splitlines()[1]
    script.main([*args, "--model-kwargs", '{"surprise_terms": "all"}'])
    floored = capsys.readouterr().out.splitlines()[1]
    assert plain != floored  # the same weights, another score
    with pytest.raises(SystemExit, match="without weights"):
        script.load("pretrained", {"colour": 1})
