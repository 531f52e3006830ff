"""The sink protocol: every output (stdout, MQTT, display) takes the same events."""

from __future__ import annotations

from typing import Protocol

from emotiond.events import Event


class Sink(Protocol):
    def handle(self, event: Event) -> None:
        """Deliver one event; must not block the pipeline for long nor raise on delivery failure."""

    def close(self) -> None: ...
