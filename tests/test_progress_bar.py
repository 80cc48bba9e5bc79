"""The one progress style (``tdwgym.util.progress_bar``): a tqdm bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from tdwgym.util import progress_bar as progress_module
from tdwgym.util.progress_bar import progress_bar


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_is_a_tqdm_bar_redrawn_with_carriage_returns():
    out = Terminal()
    with progress_bar(total=5, desc="work", unit="step", file=out) as bar:
        assert bar.mode == "bar"
        for _ in range(5):
            bar.update()
    assert "\r" in out.getvalue() and "5/5" in out.getvalue()


def test_off_a_terminal_it_prints_plain_lines_at_most_one_per_interval(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    bar = progress_bar(total=100, desc="dataset", unit="episode", file=out, interval=10.0)
    assert bar.mode == "lines"
    for _ in range(100):
        clock[0] += 0.5  # 50 s in all: the first step, then one line per 10 s, then the last
        bar.update()
    bar.close()
    bar.close()  # twice is harmless
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert 4 <= len(lines) <= 7, lines
    assert lines[0].startswith("dataset: 1/100 episode (1%)") and "left" in lines[0]
    assert lines[-1].startswith("dataset: 100/100 episode (100%)")


def test_plain_lines_show_a_new_phase_the_postfix_and_an_unknown_total(monkeypatch):
    out = io.StringIO()
    with progress_bar(desc="eval", unit="episode", file=out) as bar:
        bar.update(3)
        bar.set_postfix(frames_per_s="12")
        bar.set_description("eval: probes")
        bar.set_description("eval: probes")  # unchanged: no line
        bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("eval: 3 episode")
    assert lines[1].startswith("eval: probes: 3 episode") and lines[1].endswith("frames_per_s=12")
    assert lines[2].startswith("eval: probes: 4 episode") and len(lines) == 3


@pytest.mark.parametrize("terminal", [True, False])
def test_disabled_it_shows_nothing_but_still_prints_messages(terminal, capsys):
    out = Terminal() if terminal else io.StringIO()
    with progress_bar(total=3, file=out, enabled=False) as bar:
        assert bar.mode == "off"
        bar.update(3)
        bar.write("[compare] done")
    assert out.getvalue() == ""
    assert capsys.readouterr().out == "[compare] done\n"


@pytest.mark.parametrize(
    "command, line",
    [
        (["dataset", "--episodes", "2", "--steps", "5", "--resolution", "16", "--workers", "1"], "2/2 episode (100%)"),
        (["record", "--policy", "random", "--steps", "5", "--size", "32"], "5/5 step (100%)"),
    ],
)
def test_a_command_whose_stderr_is_captured_prints_plain_progress_lines(tmp_path, command, line):
    """Not a terminal (a log, CI, a pipe): lines, no carriage returns; ``--no-progress``: none."""

    def run(name: str, *more: str) -> subprocess.CompletedProcess:
        out = str(tmp_path / (f"{name}.mp4" if command[0] == "record" else name))
        argv = [sys.executable, "-m", "tdwgym", *command, "--out", out, *more]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300)

    shown = run("shown")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "\r" not in shown.stderr and line in shown.stderr, shown.stderr
    quiet = run("quiet", "--no-progress")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert line not in quiet.stderr and "%)" not in quiet.stderr, quiet.stderr
