"""What the dashboard needs from the daemon, as one small protocol, and its adapter to the context.

The web package never touches the Daemon itself: the frames, the events, privacy and named commands
come through ``WebBackend``. ``ContextBackend`` is the only place that knows the component context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emotiond.context import ComponentContext
from emotiond.events import Event


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


class ContextBackend:
    """``WebBackend`` over the daemon's component context: its frame and event listeners and commands."""

    def __init__(self, ctx: ComponentContext) -> None:
        self._ctx = ctx

    @property
    def privacy(self) -> bool:
        return self._ctx.privacy

    def on_frame(self, listener: FrameListener) -> None:
        ctx = self._ctx

        def forward(image: np.ndarray, _events: list[Event]) -> None:
            # reason stays None until the tracks carry a per-face quality reason
            listener(image, tuple(FaceBox(t.face_id, t.box, t.held) for t in ctx.tracks()))

        ctx.add_frame_listener(forward)

    def on_event(self, listener: EventListener) -> None:
        self._ctx.add_event_listener(listener)

    def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._ctx.command(name, args)
