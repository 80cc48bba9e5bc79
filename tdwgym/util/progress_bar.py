"""One progress style for every long command: a tqdm bar on a terminal, plain lines everywhere else.

On a terminal :func:`progress_bar` is a tqdm bar on stderr. When stderr is not a terminal (a log file, CI, a pipe) it
prints plain lines instead of carriage-return redraws: one at the first step, then at most one every
:data:`PLAIN_INTERVAL` seconds and one when the bar closes (and one whenever the description changes, so a log
shows each phase). ``enabled=False`` (``--no-progress``) prints no progress at all; :meth:`Progress.write` still
prints its messages, so a command's result lines do not depend on the bar.

```python
from tdwgym.util.progress_bar import progress_bar

with progress_bar(total=1000, desc="dataset", unit="step") as bar:
    for _ in range(1000):
        ...
        bar.update()
```
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["PLAIN_INTERVAL", "Progress", "progress_bar"]

PLAIN_INTERVAL = 10.0
"""Seconds between two plain progress lines (stderr not a terminal)."""


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or a stand-in without isatty
        return False


class Progress:
    """A progress counter shown as a tqdm bar (terminal), plain lines (anything else) or nothing (disabled).

    Made by :func:`progress_bar`; the part of tqdm's interface the commands use: :meth:`update`, :meth:`write`,
    :meth:`set_description`, :meth:`set_postfix`, :meth:`close`, ``with``, and the attributes ``n`` and ``total``.
    """

    def __init__(
        self,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        enabled: bool = True,
        initial: float = 0,
        file: IO[str] | None = None,
        interval: float = PLAIN_INTERVAL,
        terminal: bool | None = None,
    ) -> None:
        """See :func:`progress_bar`; ``terminal`` overrides the check of ``file``."""
        self.file = file if file is not None else sys.stderr
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.postfix = ""
        on_terminal = terminal if terminal is not None else _is_terminal(self.file)
        self.mode = "off" if not enabled else "bar" if on_terminal else "lines"
        """``"bar"`` (a terminal), ``"lines"`` (anything else) or ``"off"``."""
        self.interval = float(interval)
        self._start = time.monotonic()
        self._last: float | None = None  # when the last plain line was printed
        self._last_n: float = initial  # the count it showed
        self._initial = initial
        self._closed = False
        self._bar: Any = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, desc=desc, unit=unit, initial=initial, file=self.file, dynamic_ncols=True, leave=True
            )

    # ---------------------------------------------------------------------------------------------- counting

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units done."""
        self.n += n
        if self.mode == "bar":
            self._bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if self._last is None or now - self._last >= self.interval:
                self._line(now)

    def set_description(self, desc: str) -> None:
        """Name the current phase; a plain line marks the change."""
        if desc == self.desc:
            return
        self.desc = desc
        if self.mode == "bar":
            self._bar.set_description(desc)
        elif self.mode == "lines":
            self._line(time.monotonic())

    def set_postfix(self, **values: Any) -> None:
        """Figures shown after the count (``frames_per_s="120"``); plain lines carry them too."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self.mode == "bar":
            self._bar.set_postfix(**values)

    def write(self, message: str) -> None:
        """Print a message line on stdout (above the bar on a terminal), whether or not progress is shown."""
        if self.mode == "bar":
            from tqdm.auto import tqdm

            tqdm.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        """End the bar; a plain final line when anything was counted since the last one."""
        if self._closed:
            return
        self._closed = True
        if self.mode == "bar":
            self._bar.close()
        elif self.mode == "lines" and self._last_n != self.n:
            self._line(time.monotonic())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- lines

    def line(self) -> str:
        """The current state as one plain line: ``desc: n/total unit (pct%), elapsed, ETA``."""
        from tqdm import tqdm

        elapsed = time.monotonic() - self._start
        head = f"{self.desc}: " if self.desc else ""
        n = _number(self.n)
        tail = f", {self.postfix}" if self.postfix else ""
        if not self.total:
            return f"{head}{n} {self.unit}, {tqdm.format_interval(elapsed)}{tail}"
        pct = 100.0 * self.n / self.total
        text = f"{head}{n}/{_number(self.total)} {self.unit} ({pct:.0f}%), {tqdm.format_interval(elapsed)}"
        done = self.n - self._initial
        if done > 0 and self.n < self.total:
            text += f", about {tqdm.format_interval(elapsed * (self.total - self.n) / done)} left"
        return text + tail

    def _line(self, now: float) -> None:
        print(self.line(), file=self.file, flush=True)
        self._last, self._last_n = now, self.n


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


def progress_bar(
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    initial: float = 0,
    file: IO[str] | None = None,
    interval: float = PLAIN_INTERVAL,
) -> Progress:
    """The progress of a long command: a tqdm bar when ``file`` (default stderr) is a terminal, plain lines
    otherwise, nothing when not ``enabled``.

    Args:
        total: Units to do (``None``: unknown, the lines show the count only).
        desc: What is counted, the line's prefix (``"dataset"``, ``"train"``).
        unit: The unit's name (``"step"``, ``"episode"``).
        enabled: ``False`` (``--no-progress``) shows nothing.
        initial: Units already done (a resumed run).
        file: Where progress goes; default ``sys.stderr``.
        interval: Seconds between two plain lines.
    """
    return Progress(total, desc, unit, enabled=enabled, initial=initial, file=file, interval=interval)
