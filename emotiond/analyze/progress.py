"""A one-line progress bar on stderr when it is a terminal; silent when piped or redirected."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None, width: int = 30,
                 min_interval_s: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = bool(isatty()) if enabled is None else enabled
        self.width = width
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._shown = False

    def update(self, stage: str, done: int, total: int) -> None:
        """Redraw the bar (throttled); total <= 0 shows a count without a bar."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.min_interval_s and done < total:
            return
        self._last = now
        if total > 0:
            frac = min(1.0, max(0.0, done / total))
            filled = round(frac * self.width)
            line = f"\r{stage:<10} [{'#' * filled}{'.' * (self.width - filled)}] {frac:4.0%} {done}/{total}"
        else:
            line = f"\r{stage:<10} {done}"
        self.stream.write(line + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
