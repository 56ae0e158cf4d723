"""A dependency-free progress display: steps/s, ETA and the last losses.

On a TTY one status line is redrawn in place (at most every ``refresh_s`` seconds); elsewhere
(log files, CI) a full line is printed every ``log_every`` steps, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``3725.2`` -> ``'1:02:05'``; negative or non-finite -> ``'?'``."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Report training progress.

    Args:
        total: the step at which the run ends, or None when unknown (no ETA).
        log_every: with a non-TTY stream, print a line when ``step % log_every == 0``.
        start_step: the step the run (re)starts from; the rate counts only steps run here.
        stream: where to write (default sys.stderr). ``enabled=False`` silences it (non-main ranks).
    """

    def __init__(self, total: int | None, log_every: int, start_step: int = 0,
                 stream: TextIO | None = None, enabled: bool = True, refresh_s: float = 0.5):
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.total = total
        self.log_every = log_every
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.refresh_s = refresh_s
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start_step = start_step
        self._start_time = time.perf_counter()
        self._last_draw = -float("inf")
        self._drawn = False

    def rate(self, step: int) -> float:
        """Steps per second since construction."""
        elapsed = time.perf_counter() - self._start_time
        return (step - self._start_step) / elapsed if elapsed > 0 else 0.0

    def line(self, step: int, losses: Mapping[str, float] | None = None, epoch: int | None = None) -> str:
        rate = self.rate(step)
        parts = [f"step {step}" + (f"/{self.total}" if self.total is not None else "")]
        if epoch is not None:
            parts.append(f"epoch {epoch}")
        parts.append(f"{rate:.2f} it/s")
        if self.total is not None:
            parts.append("ETA " + format_duration((self.total - step) / rate if rate > 0 else -1))
        parts += [f"{name} {value:.4g}" for name, value in (losses or {}).items()]
        return " | ".join(parts)

    def update(self, step: int, losses: Mapping[str, float] | None = None, epoch: int | None = None) -> None:
        """Report that ``step`` steps are complete."""
        if not self.enabled:
            return
        if self.tty:
            now = time.perf_counter()
            if now - self._last_draw < self.refresh_s and step != self.total:
                return
            self._last_draw = now
            self.stream.write("\r\033[K" + self.line(step, losses, epoch))
            self._drawn = True
        elif step % self.log_every == 0:
            self.stream.write(self.line(step, losses, epoch) + "\n")
        self.stream.flush()

    def write(self, message: str) -> None:
        """Print a message without garbling the status line."""
        if not self.enabled:
            return
        prefix = "\r\033[K" if self.tty and self._drawn else ""
        self.stream.write(prefix + message + "\n")
        self._drawn = False
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
