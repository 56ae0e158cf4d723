"""A dependency-free progress line for long evaluation loops (FID activations, classifier training)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints 'desc: done/total (pct%) elapsed' to `stream`, at most every `min_interval_s` seconds and at the end.

    Usage: p = Progress("FID activations", total=n); p.update(batch); ...; p.close(). verbose=False prints nothing.
    """

    def __init__(
        self, desc: str, total: int, verbose: bool = True, min_interval_s: float = 2.0, stream: TextIO | None = None
    ):
        self.desc, self.total, self.verbose = desc, total, verbose
        self.min_interval_s = min_interval_s
        self.stream = stream
        self.done = 0
        self.start = time.monotonic()
        self._last_print = self.start

    def _print(self, extra: str = "") -> None:
        if not self.verbose:
            return
        elapsed = time.monotonic() - self.start
        pct = 100.0 * self.done / self.total if self.total else 100.0
        line = f"{self.desc}: {self.done}/{self.total} ({pct:.0f}%) {elapsed:.1f}s{extra}"
        print(line, file=self.stream or sys.stderr, flush=True)

    def update(self, n: int = 1, extra: str = "") -> None:
        """Count n more units done; print if the last line is older than min_interval_s."""
        self.done += n
        now = time.monotonic()
        if now - self._last_print >= self.min_interval_s:
            self._last_print = now
            self._print(extra)

    def close(self, extra: str = "") -> None:
        """Print the final line."""
        self._print(extra)
