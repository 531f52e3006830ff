"""What a daemon component may use: the narrow ``ComponentContext`` instead of the whole ``Daemon``.

Components (MQTT, audio capture, display, web dashboard, watchdog) are started with a context. It lets
them emit events, register and run commands, read and set privacy, read the newest frame, the
tracked faces and health, and see the status of other outputs (``LinkStatus``) without knowing
their classes. The daemon implements it; tests can hand in a small fake with the same methods.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emotiond.config import Config
from emotiond.events import Event, PrivacyEvent
from emotiond.privacy_store import PrivacyStore

log = logging.getLogger("emotiond.daemon")

CommandHandler = Callable[[dict[str, Any]], dict[str, Any]]
FrameListener = Callable[[np.ndarray, list[Event]], None]


class CommandError(Exception):
    """A command was refused; the message goes back to whoever sent it."""


@dataclass
class Health:
    """What the watchdog, the display and STATUS= lines report."""

    fps: float = 0.0
    faces: int = 0
    frames: int = 0
    dropped: int = 0
    camera_ok: bool = False
    last_frame_age: float = float("inf")
    dispatcher_alive: bool = False
    camera_error: str = ""
    dead_workers: tuple[str, ...] = ()  # registered worker threads that are no longer running
    privacy: bool = False  # the camera is closed on purpose: its state says nothing about health

    def healthy(self, max_frame_age: float) -> bool:
        camera = self.privacy or (self.camera_ok and self.last_frame_age <= max_frame_age)
        return camera and self.dispatcher_alive and not self.dead_workers


@dataclass(frozen=True)
class TrackBox:
    """A tracked face as the main loop last saw it: id, (x, y, w, h), held (not re-detected this frame)."""

    face_id: int
    box: tuple[int, int, int, int]
    held: bool


@dataclass(frozen=True)
class LinkStatus:
    """How an output with a connection is doing (the MQTT broker link, for the display)."""

    connected: bool
    queued: int = 0


class StatusProvider(Protocol):
    """An output that reports a ``LinkStatus`` under a name (``mqtt``)."""

    def link_status(self) -> LinkStatus: ...


class SnapshotTarget(Protocol):
    """Where the daemon's ``snapshot`` command sends its JPEG; returns where it went (a topic)."""

    def publish_snapshot(self, jpeg: bytes) -> str:
        """Raises CommandError when it cannot take the picture now (not connected, privacy)."""
        ...


class ComponentContext(Protocol):
    """The daemon as a component sees it."""

    @property
    def config(self) -> Config: ...

    @property
    def privacy(self) -> bool: ...

    def set_privacy(self, enabled: bool) -> None: ...

    def emit(self, event: Event) -> None: ...

    def register_command(self, name: str, handler: CommandHandler) -> None: ...

    def command(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def health(self) -> Health: ...

    def latest_frame(self) -> np.ndarray | None: ...

    def tracks(self) -> tuple[TrackBox, ...]: ...

    def add_frame_listener(self, listener: FrameListener) -> None: ...

    def add_event_listener(self, listener: Callable[[Event], None]) -> None: ...

    def add_loop_hook(self, hook: Callable[[ComponentContext], None]) -> None: ...

    def on_config_change(self, listener: Callable[[Config], None]) -> None: ...

    def register_status(self, name: str, provider: StatusProvider) -> None: ...

    def link_status(self, name: str) -> LinkStatus | None: ...

    def set_snapshot_target(self, target: SnapshotTarget) -> None: ...

    def request_stop(self) -> None: ...

    def register_worker(self, name: str, alive: Callable[[], bool]) -> None:
        """A thread the component depends on: health (and so the systemd watchdog) fails if it dies."""
        ...

    def stop_remaining(self) -> float:
        """Seconds left of the one stop deadline all stop steps share (inf before a stop began)."""
        ...


class Component(Protocol):
    """Anything the daemon starts after the pipeline and stops before the sinks."""

    def start(self, ctx: ComponentContext) -> None: ...

    def stop(self) -> None: ...


class DaemonContext:
    """The daemon's side of ``ComponentContext``: registries and shared state, thread-safe where it is
    written from several threads (privacy, the newest frame), plain lists where only start-up writes."""

    def __init__(self, config: Callable[[], Config], emit: Callable[[Event], None], health: Callable[[], Health],
                 request_stop: Callable[[], None], stop_remaining: Callable[[], float] | None = None) -> None:
        self._config = config
        self._stop_remaining = stop_remaining or (lambda: float("inf"))
        self.workers: dict[str, Callable[[], bool]] = {}  # name -> is it still running
        self._emit = emit
        self._health = health
        self._request_stop = request_stop
        self._commands: dict[str, CommandHandler] = {}
        self._statuses: dict[str, StatusProvider] = {}
        self._privacy = False
        self._privacy_lock = threading.Lock()  # the mode and its file change together, in order
        self._privacy_store: PrivacyStore | None = None
        self._frame: np.ndarray | None = None
        self._tracks: tuple[TrackBox, ...] = ()
        self.snapshot_target: SnapshotTarget | None = None
        self.frame_listeners: list[FrameListener] = []  # called with each analysed frame; must only store
        self.loop_hooks: list[Callable[[ComponentContext], None]] = []  # once per main-loop turn (watchdog)
        # every event after the sinks, on the dispatcher thread (the web dashboard); must only store
        self.event_listeners: list[Callable[[Event], None]] = []
        self.config_listeners: list[Callable[[Config], None]] = []  # after a reload applied settings

    # --- read ---------------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config()

    @property
    def privacy(self) -> bool:
        return self._privacy

    def health(self) -> Health:
        return self._health()

    def latest_frame(self) -> np.ndarray | None:
        return self._frame

    def tracks(self) -> tuple[TrackBox, ...]:
        return self._tracks

    def stop_remaining(self) -> float:
        return self._stop_remaining()

    def dead_workers(self) -> tuple[str, ...]:
        """Registered workers that stopped running (a crash: their own stop is not asked for yet)."""
        dead = []
        for name, alive in list(self.workers.items()):
            try:
                ok = alive()
            except Exception:  # a broken probe counts as dead, never as a crash of the caller
                ok = False
            if not ok:
                dead.append(name)
        return tuple(dead)

    def link_status(self, name: str) -> LinkStatus | None:
        provider = self._statuses.get(name)
        return provider.link_status() if provider is not None else None

    # --- act ----------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        self._emit(event)

    def request_stop(self) -> None:
        self._request_stop()

    def set_privacy(self, enabled: bool) -> None:
        """Privacy mode: the camera is released and nothing is analysed until it is turned off.
        With a store attached the new mode is on disk before anyone is told about it."""
        with self._privacy_lock:
            if enabled == self._privacy:
                return
            self._privacy = enabled
            if enabled:
                self._frame, self._tracks = None, ()
            if self._privacy_store is not None:
                self._privacy_store.save(enabled)
            log.info("privacy mode %s", "on" if enabled else "off")
            self._emit(PrivacyEvent(enabled))

    def attach_privacy_store(self, store: PrivacyStore) -> None:
        """Restore the persisted mode (call before the camera opens) and persist every later change."""
        with self._privacy_lock:
            self._privacy_store = store
            restored = store.load()
            if restored and not self._privacy:
                self._privacy, self._frame, self._tracks = True, None, ()
                log.info("privacy mode on (restored from %s)", store.path)
                self._emit(PrivacyEvent(True))

    def note_frame(self, image: np.ndarray, tracks: tuple[TrackBox, ...]) -> None:
        """The main loop's newest frame and tracks (two reference assignments: never blocks)."""
        self._frame, self._tracks = image, tracks

    # --- register -----------------------------------------------------------------------------
    def register_command(self, name: str, handler: CommandHandler) -> None:
        self._commands[name] = handler

    def command(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a named command (from MQTT, the control socket, a button); returns a result dict."""
        handler = self._commands.get(name)
        if handler is None:
            return {"ok": False, "error": f"unknown command {name!r} (known: {', '.join(sorted(self._commands))})"}
        try:
            return {"ok": True, **handler(args or {})}
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a command must never take the daemon down
            log.exception("command %s failed", name)
            return {"ok": False, "error": f"{name} failed: {exc}"}

    def add_frame_listener(self, listener: FrameListener) -> None:
        self.frame_listeners.append(listener)

    def add_event_listener(self, listener: Callable[[Event], None]) -> None:
        self.event_listeners.append(listener)

    def add_loop_hook(self, hook: Callable[[ComponentContext], None]) -> None:
        self.loop_hooks.append(hook)

    def on_config_change(self, listener: Callable[[Config], None]) -> None:
        self.config_listeners.append(listener)

    def register_status(self, name: str, provider: StatusProvider) -> None:
        self._statuses[name] = provider

    def register_worker(self, name: str, alive: Callable[[], bool]) -> None:
        self.workers[name] = alive

    def set_snapshot_target(self, target: SnapshotTarget) -> None:
        self.snapshot_target = target
