"""Print one JSON object per line: the simplest sink, and the demo's output."""

from __future__ import annotations

import sys
from typing import TextIO

from emotiond.events import Event


class StdoutSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def handle(self, event: Event) -> None:
        try:
            self.stream.write(event.to_json() + "\n")
            self.stream.flush()
        except BrokenPipeError:  # `emotiond demo | head` must not dump a traceback
            pass

    def close(self) -> None:
        pass
