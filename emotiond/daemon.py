"""Threads and lifecycle: capture -> face pipeline -> stages (fusion) -> sinks, health, clean stop.

Three threads with one job each: the capture thread keeps only the newest frame; the main loop runs
perception; the dispatcher delivers events to stages and sinks in order, so sinks and fusion never
need locks. Components (MQTT, audio capture, display, web dashboard, watchdog) get the daemon's
``context`` (a ``ComponentContext``), never the daemon itself; they hand work in through its
``emit`` and ``command``.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotiond.config import Config, default_config_path
from emotiond.context import (
    CommandError,
    CommandHandler,
    Component,
    DaemonContext,
    Health,
    TrackBox,
)
from emotiond.daemon_commands import DaemonCommands
from emotiond.events import EmotionEvent, ErrorEvent, Event
from emotiond.perception.pipeline import FacePipeline
from emotiond.privacy_store import PrivacyStore
from emotiond.sinks.base import Sink
from emotiond.sources.camera import FrameSource, LatestFrameGrabber, SourceError, open_source
from emotiond.watchdog import STOP_BUDGET

log = logging.getLogger(__name__)

Stage = Callable[[Event], list[Event]]
__all__ = ["CommandError", "CommandHandler", "Component", "Daemon", "Health", "Stage"]


@dataclass
class Daemon:
    config: Config
    pipeline: FacePipeline
    sinks: list[Sink] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    source_factory: Callable[[], FrameSource] | None = None
    pace_files: bool = True  # play video files at their frame rate, like a camera
    lossless: bool = False  # process every frame (demo); live cameras drop stale frames instead
    config_path: Path | None = None  # the file `reload` re-reads; None: the default config path, if any
    persist_privacy: bool = False  # `emotiond run`: privacy mode lives in device.state_dir across restarts

    def __post_init__(self) -> None:
        self._events: queue.Queue[Event | None] = queue.Queue(maxsize=1000)
        self._stop = threading.Event()
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatch", daemon=True)
        self._health = Health()
        self._fps_window: list[float] = []
        self._grabber: LatestFrameGrabber | None = None
        self._last_frame_mono = 0.0
        self._stop_requested: float | None = None  # monotonic time of the first stop request
        self._reload = threading.Event()  # SIGHUP: re-read the config at the next main-loop turn
        self.context = DaemonContext(lambda: self.config, self.emit, self.health, self.request_stop,
                                     self.stop_remaining)
        DaemonCommands(self.context, self.config_path or default_config_path(), self._adopt_config)
        if self.persist_privacy:  # before any component starts and before the camera opens
            self.context.attach_privacy_store(PrivacyStore(self.config.device.state_path))

    # --- wiring -----------------------------------------------------------------------------
    @property
    def privacy(self) -> bool:
        return self.context.privacy

    def set_privacy(self, enabled: bool) -> None:
        self.context.set_privacy(enabled)

    def register_command(self, name: str, handler: CommandHandler) -> None:
        self.context.register_command(name, handler)

    def command(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.context.command(name, args)

    def register_worker(self, name: str, alive: Callable[[], bool]) -> None:
        self.context.register_worker(name, alive)

    def _adopt_config(self, config: Config) -> None:
        self.config = config

    def emit(self, event: Event) -> None:
        """Hand an event to the dispatcher (thread-safe); drops the oldest when sinks fall far behind."""
        if event.monotonic is None:  # the clock fusion ages use (see Event.monotonic)
            event = dataclasses.replace(event, monotonic=time.monotonic())
        try:
            self._events.put_nowait(event)
        except queue.Full:
            try:
                self._events.get_nowait()
            except queue.Empty:
                pass
            log.warning("event queue full: oldest event dropped")
            self._events.put_nowait(event)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def health(self) -> Health:
        h = self._health
        h.dispatcher_alive = self._dispatcher.is_alive()
        h.privacy = self.privacy
        # A worker that ends during shutdown is not a fault; before that, any dead worker is.
        h.dead_workers = () if self._stop.is_set() else self.context.dead_workers()
        h.last_frame_age = time.monotonic() - self._last_frame_mono if self._last_frame_mono else float("inf")
        return h

    # --- threads ----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            batch = [event]
            for stage in self.stages:
                batch = [out for ev in batch for out in self._run_stage(stage, ev)]
            for ev in batch:
                for sink in self.sinks:
                    try:
                        sink.handle(ev)
                    except Exception:  # one broken sink must not silence the others
                        log.exception("sink %s failed", type(sink).__name__)
                for listener in self.context.event_listeners:
                    try:
                        listener(ev)
                    except Exception:
                        log.exception("event listener %s failed", getattr(listener, "__qualname__", listener))

    @staticmethod
    def _run_stage(stage: Stage, event: Event) -> list[Event]:
        try:
            return stage(event)
        except Exception:
            log.exception("stage %s failed; event passed on unchanged", getattr(stage, "__name__", stage))
            return [event]

    def _open_grabber(self) -> LatestFrameGrabber | None:
        c = self.config.camera
        try:
            source = self.source_factory() if self.source_factory else open_source(c.source, c.width, c.height, c.fps, c.loop)
        except SourceError as exc:
            self._health.camera_ok = False
            self._health.camera_error = str(exc)
            return None
        self._health.camera_ok = True
        self._health.camera_error = ""
        return LatestFrameGrabber(source, pace=self.pace_files, lossless=self.lossless,
                                  want=self.pipeline.wants).start()

    def request_stop(self) -> None:
        if self._stop_requested is None:
            self._stop_requested = time.monotonic()
        self._stop.set()

    def stop_remaining(self) -> float:
        """Seconds left of ``STOP_BUDGET``, counted from the first stop request; shared by every stop step."""
        if self._stop_requested is None:
            return float("inf")
        return max(0.0, self._stop_requested + STOP_BUDGET - time.monotonic())

    def request_reload(self) -> None:
        """Re-read the config file at the next main-loop turn (SIGHUP; safe to call from a signal handler)."""
        self._reload.set()

    def _maybe_reload(self) -> None:
        if not self._reload.is_set():
            return
        self._reload.clear()
        result = self.context.command("reload", {})
        if not result.get("ok"):
            log.error("SIGHUP: %s; keeping the running config", result.get("error"))

    def run(self, max_frames: int | None = None) -> int:
        """Run until stopped (or a finite source ends); returns the exit status."""
        self._dispatcher.start()
        for comp in self.components:
            comp.start(self.context)
        frames = 0
        last_error = ""
        try:
            while not self._stop.is_set():
                self._maybe_reload()
                for hook in self.context.loop_hooks:
                    hook(self.context)
                if self.privacy:
                    if self._grabber is not None:
                        self._grabber.stop()
                        self._grabber = None
                    self._last_frame_mono = time.monotonic()  # paused on purpose: still healthy
                    self._stop.wait(0.2)
                    continue
                if self._grabber is None:
                    self._grabber = self._open_grabber()
                    if self._grabber is None:
                        last_error = self._camera_failed(last_error)
                        continue
                frame = self._grabber.get(timeout=0.5)
                if frame is None:
                    if self._grabber.error is not None or self._grabber.finished:
                        err = self._grabber.error
                        self._grabber.stop()
                        self._grabber = None
                        if err is None:  # a finite file ended and does not loop
                            log.info("source ended")
                            return 0
                        self._health.camera_ok = False
                        self._health.camera_error = str(err)
                        last_error = self._camera_failed(last_error)
                    continue
                last_error = ""
                events = self.pipeline.process(frame.image, frame.timestamp, frame.index)
                for event in events:
                    if isinstance(event, EmotionEvent):
                        self._health.faces = event.scene.faces
                    self.emit(event)
                self.context.note_frame(frame.image, tuple(
                    TrackBox(t.face_id, (int(t.box[0]), int(t.box[1]), int(t.box[2]), int(t.box[3])), bool(t.held))
                    for t in self.pipeline.tracker.tracks))
                for listener in self.context.frame_listeners:
                    try:
                        listener(frame.image, events)
                    except Exception:
                        log.exception("frame listener %s failed", getattr(listener, "__name__", listener))
                frames += 1
                self._note_frame()
                if max_frames is not None and frames >= max_frames:
                    return 0
            return 0
        finally:
            self._shutdown()

    def _camera_failed(self, last_error: str) -> str:
        """Report a camera failure once per distinct message, then wait before the next attempt."""
        error = self._health.camera_error
        if error != last_error:
            log.error("%s; retrying every %.0f s", error, self.config.camera.reconnect_seconds)
            self.emit(ErrorEvent("camera", error))
        self._stop.wait(self.config.camera.reconnect_seconds)
        return error

    def _note_frame(self) -> None:
        now = time.monotonic()
        self._last_frame_mono = now
        self._fps_window.append(now)
        while self._fps_window and now - self._fps_window[0] > 5.0:
            self._fps_window.pop(0)
        h = self._health
        h.frames += 1
        h.camera_ok = True
        if len(self._fps_window) > 1:
            h.fps = (len(self._fps_window) - 1) / (self._fps_window[-1] - self._fps_window[0] or 1e-9)
        if self._grabber is not None:
            h.dropped = self._grabber.dropped

    def _shutdown(self) -> None:
        """Stop everything within one deadline (``STOP_BUDGET`` from the stop request): each step gets
        what is left, so the sum stays below the exit deadline and systemd's TimeoutStopSec."""
        self.request_stop()
        if self._grabber is not None:
            self._grabber.stop()
            self._grabber = None
        for comp in reversed(self.components):
            try:
                comp.stop()
            except Exception:
                log.exception("stopping %s failed", type(comp).__name__)
        if self._dispatcher.is_alive():
            try:
                self._events.put(None, timeout=max(0.1, self.stop_remaining()))
            except queue.Full:
                log.error("event dispatcher is stuck; not waiting for it")
            self._dispatcher.join(timeout=max(0.1, self.stop_remaining()))
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("closing sink %s failed", type(sink).__name__)
