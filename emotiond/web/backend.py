"""What the dashboard needs from the daemon, as one small protocol, and its adapter to today's Daemon.

The web package never touches the Daemon itself: the frames, the events, privacy and named commands
come through ``WebBackend``. ``DaemonBackend`` is the only place that knows the Daemon's attributes,
so pointing the dashboard at another host (a component context) means writing one small class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from emotiond.events import Event

if TYPE_CHECKING:
    from emotiond.daemon import Daemon


@dataclass(frozen=True)
class FaceBox:
    """One tracked face in a frame; ``reason`` says why it cannot be read (quality gate), when known."""

    face_id: int
    box: tuple[int, int, int, int]  # x, y, w, h in pixels
    held: bool = False  # the detector missed it; the tracker holds the box
    reason: str | None = None


FrameListener = Callable[[np.ndarray, tuple[FaceBox, ...]], None]
EventListener = Callable[[Event], None]


class WebBackend(Protocol):
    """The daemon as the dashboard sees it. Listeners must only store, never block."""

    @property
    def privacy(self) -> bool: ...

    def on_frame(self, listener: FrameListener) -> None:
        """Call ``listener`` with every analysed frame and its tracked faces (main loop thread)."""

    def on_event(self, listener: EventListener) -> None:
        """Call ``listener`` with every event, in order, as the sinks get them."""

    def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run a named command (``capture_audio``, ``privacy``); returns ``{"ok": ..., ...}``."""


class _EventForwarder:
    """A sink that hands events to a listener (the Daemon delivers events to sinks only)."""

    def __init__(self, listener: EventListener) -> None:
        self._listener = listener

    def handle(self, event: Event) -> None:
        self._listener(event)

    def close(self) -> None:
        pass


class DaemonBackend:
    """``WebBackend`` over today's Daemon: frame listeners, a forwarding sink, ``daemon.command``."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    @property
    def privacy(self) -> bool:
        return self._daemon.privacy

    def on_frame(self, listener: FrameListener) -> None:
        tracker = self._daemon.pipeline.tracker

        def forward(image: np.ndarray, _events: list[Event]) -> None:
            listener(image, tuple(
                # reason stays None: today's pipeline has no per-face quality gate to report
                FaceBox(t.face_id, (int(t.box[0]), int(t.box[1]), int(t.box[2]), int(t.box[3])), bool(t.held))
                for t in tracker.tracks
            ))

        self._daemon.frame_listeners.append(forward)

    def on_event(self, listener: EventListener) -> None:
        self._daemon.sinks.append(_EventForwarder(listener))

    def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._daemon.command(name, args)
