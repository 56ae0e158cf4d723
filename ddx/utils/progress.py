"""ddx's one progress display (training steps, sampling steps, evaluation loops); no dependencies.

On a TTY one status line is redrawn in place (at most every ``throttle_s`` seconds, and when the
total is reached). Elsewhere (log files, CI) full lines are printed so that logs stay readable:
every ``log_every`` units when it is given (training: one line per log interval), else at most every
``throttle_s`` seconds. :meth:`Progress.close` ends with a line of the final count.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO

from ddx.utils.checks import check_positive_int


def format_duration(seconds: float) -> str:
    """``3725.2`` -> ``'1:02:05'``; negative or non-finite -> ``'?'``."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Count units of work done and report them, with rate, ETA and the latest values.

    Args:
        total: the count at which the work ends, or None when unknown (no ETA).
        desc: what is counted, printed first (``"step"`` -> ``"step 3/6 | ..."``).
        unit: the rate's unit (``"it"`` -> ``"12.50 it/s"``).
        log_every: without a TTY, print a line when the count is a multiple of it (steps); None
            prints at most every ``throttle_s`` seconds instead (evaluation loops).
        throttle_s: the least time between two redraws on a TTY (or two time-throttled lines).
        start: the count the work (re)starts from; the rate counts only units done here.
        stream: where to write (default sys.stderr, looked up when writing).
        enabled: False silences everything (non-main ranks, ``verbose=False``).

    Use ``update(n, extra)`` to add ``n`` units, or ``update_to(count, losses, epoch)`` to report an
    absolute count with named values; ``write(message)`` prints a message between status lines.
    """

    def __init__(self, total: int | None = None, desc: str = "", *, unit: str = "it", log_every: int | None = None,
                 throttle_s: float = 1.0, start: int = 0, stream: TextIO | None = None, enabled: bool = True):
        self.total = check_positive_int(total, "Progress total", optional=True)
        self.log_every = check_positive_int(log_every, "Progress log_every", optional=True)
        if not throttle_s >= 0:
            raise ValueError(f"Progress throttle_s must be >= 0 seconds, got {throttle_s!r}")
        self.desc, self.unit, self.throttle_s, self.enabled = desc, unit, throttle_s, enabled
        self._stream = stream
        self.count = self._start = start
        self._start_time = time.perf_counter()
        self._last_output = self._start_time
        self._last_printed: int | None = None
        self._last_values: Mapping[str, float] | None = None
        self._last_epoch: int | None = None
        self._drawn = False

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def rate(self) -> float:
        """Units per second since construction."""
        elapsed = time.perf_counter() - self._start_time
        return (self.count - self._start) / elapsed if elapsed > 0 else 0.0

    def line(self, extra: str = "") -> str:
        """The status line: count, epoch, rate, ETA, the latest values, ``extra``."""
        head = f"{self.desc} {self.count}" if self.desc else str(self.count)
        parts = [head + (f"/{self.total}" if self.total is not None else "")]
        if self._last_epoch is not None:
            parts.append(f"epoch {self._last_epoch}")
        rate = self.rate()
        parts.append(f"{rate:.2f} {self.unit}/s")
        if self.total is not None:
            parts.append("ETA " + format_duration((self.total - self.count) / rate if rate > 0 else -1))
        parts += [f"{name} {value:.4g}" for name, value in (self._last_values or {}).items()]
        if extra:
            parts.append(extra)
        return " | ".join(parts)

    def update(self, n: int = 1, extra: str = "") -> None:
        """Count ``n`` more units done; ``extra`` is appended to the line if one is shown."""
        self.count += n
        self._report(extra)

    def update_to(self, count: int, losses: Mapping[str, float] | None = None, epoch: int | None = None) -> None:
        """Report that ``count`` units (e.g. optimisation steps) are done, with the latest losses."""
        self.count = count
        self._last_values, self._last_epoch = losses, epoch
        self._report("")

    def _report(self, extra: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        due = now - self._last_output >= self.throttle_s
        if self.tty:
            if due or self.count == self.total:
                self._emit("\r\033[K" + self.line(extra), now)
                self._drawn = True
        elif self.count % self.log_every == 0 if self.log_every is not None else due:
            self._emit(self.line(extra) + "\n", now)

    def _emit(self, text: str, now: float) -> None:
        self.stream.write(text)
        self.stream.flush()
        self._last_output = now
        self._last_printed = self.count

    def write(self, message: str) -> None:
        """Print a message on a line of its own without garbling the status line."""
        if not self.enabled:
            return
        prefix = "\r\033[K" if self.tty and self._drawn else ""
        self.stream.write(prefix + message + "\n")
        self.stream.flush()
        self._drawn = False

    def close(self, extra: str = "") -> None:
        """End the display: a line of the final count unless it is already shown (``extra`` forces one)."""
        if not self.enabled:
            return
        if self.tty:
            if extra or self._last_printed != self.count:
                self._emit("\r\033[K" + self.line(extra), time.perf_counter())
                self._drawn = True
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False
        elif extra or self._last_printed != self.count:
            self._emit(self.line(extra) + "\n", time.perf_counter())
