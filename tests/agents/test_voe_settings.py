"""scripts/voe_settings.py: one objects model's VoE scores under settings without weights, on items drawn once."""

from __future__ import annotations

import pytest
from script_tools import load_script


def test_variants_score_the_same_cached_items_and_the_page_has_a_row_each(tmp_path, capsys):
    script = load_script("voe_settings")
    doc, cache = tmp_path / "page.md", tmp_path / "cache"
    args = ["--levels", "0", "--items", "1", "--post-frames", "8", "--cache", str(cache)]
    variants = ["--variant", "shipped={}", "--variant", 'sightings={"surprise_terms": "sightings"}']
    assert script.main([*args, *variants, "--doc", str(doc)]) == 0
    first = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].split()[-1] for line in first] == ["shipped", "sightings"]
    assert len(list(cache.glob("*.npz"))) == 1  # the slot tables, kept for the next run
    rows = [line for line in doc.read_text().splitlines() if line.startswith("| 0 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["shipped", "sightings"]
    assert all(c.strip() != "-" for c in rows[0].split("|")[3:-1])  # an item of every kind was drawn and scored
    for row in rows:  # five kinds, each pairwise / relative in [0, 1] or '-', and the AUROC
        cells = [c.strip() for c in row.split("|")[3:-1]]
        assert len(cells) == 6 and 0.0 <= float(cells[-1]) <= 1.0
        for cell in cells[:-1]:
            assert cell == "-" or all(0.0 <= float(v) <= 1.0 for v in cell.split(" / "))
    assert script.main([*args, "--variant", "shipped={}"]) == 0  # read from the cache: the same scores
    assert capsys.readouterr().out.splitlines() == first[:1]


def test_bad_variants_are_refused_in_a_line(capsys):
    script = load_script("voe_settings")
    for bad, said in (("floor", "NAME=JSON"), ("x={", "not JSON"), ("x=[1]", "JSON object")):
        with pytest.raises(SystemExit):
            script.main(["--variant", bad])
        assert said in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--variant", 'x={"ego_sigma": true}'])
    assert "without weights" in capsys.readouterr().err
