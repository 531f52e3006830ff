"""Tell systemd how the daemon is doing: READY once frames flow (or privacy mode holds the camera
closed), WATCHDOG while healthy, STATUS, STOPPING.

Pings come from the daemon's main loop (a loop hook) and only while ``Health.healthy``
holds, so a hung main loop, a stalled camera, a dead dispatcher or any dead worker thread that a
component registered (MQTT output and commands, paho's network loop, audio capture, the control
socket) stop them and systemd restarts the service after ``WatchdogSec``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from emotiond.context import ComponentContext, Health
from emotiond.exitcodes import EX_SOFTWARE
from emotiond.systemd_notify import Notifier, watchdog_interval

log = logging.getLogger(__name__)


def describe(health: Health, privacy: bool, max_frame_age: float) -> str:
    """One human line for ``systemctl status``."""
    if privacy:
        return "privacy mode: camera paused"
    if not health.dispatcher_alive:
        return "event dispatcher thread died"
    if health.dead_workers:
        return f"worker thread(s) died: {', '.join(health.dead_workers)}"
    if not health.camera_ok:
        return f"camera unavailable: {health.camera_error or 'not opened yet'}"
    if health.frames == 0:
        return "waiting for the first camera frame"
    if health.last_frame_age > max_frame_age:
        return f"camera stalled: no frame for {health.last_frame_age:.0f} s"
    faces = "face" if health.faces == 1 else "faces"
    return f"{health.fps:.1f} fps, {health.faces} {faces}, {health.frames} frames, {health.dropped} dropped"


class SystemdWatchdog:
    """A daemon component: registers its ``tick`` as a main-loop hook and says STOPPING on stop."""

    def __init__(
        self,
        notifier: Notifier,
        max_frame_age: float = 10.0,
        status_interval: float = 10.0,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.max_frame_age = max_frame_age
        self.status_interval = status_interval
        # Ping at half the timeout, as sd_watchdog_enabled(3) recommends; None: watchdog not enabled.
        self.ping_every = timeout / 2 if timeout else None
        self.clock = clock
        self.ready = False
        self.pings = 0
        self._last_ping = float("-inf")
        self._last_status = float("-inf")
        self._last_text = ""
        self._was_healthy = True

    @classmethod
    def from_environment(cls, max_frame_age: float, status_interval: float) -> SystemdWatchdog:
        return cls(Notifier(), max_frame_age, status_interval, watchdog_interval())

    # --- component ------------------------------------------------------------------------------
    def start(self, ctx: ComponentContext) -> None:
        ctx.add_loop_hook(self.tick)
        self.notifier.status("loading: waiting for the first camera frame")

    def stop(self) -> None:
        self.notifier.stopping("stopping")
        self.notifier.close()

    # --- main-loop hook -------------------------------------------------------------------------
    def tick(self, ctx: ComponentContext) -> None:
        health = ctx.health()
        now = self.clock()
        text = describe(health, ctx.privacy, self.max_frame_age)
        if not self.ready:
            # Restored into privacy mode, the camera stays closed and no frame comes: that is a
            # started daemon all the same, or systemd would kill it at TimeoutStartSec, restart it
            # into privacy mode again, and loop.
            if health.frames > 0 or health.privacy:
                self.ready = True
                self.notifier.ready(text)
                self._note_status(text, now)
                log.info("ready: %s", text)
            elif text != self._last_text or now - self._last_status >= self.status_interval:
                self.notifier.status(text)
                self._note_status(text, now)
            return
        healthy = health.healthy(self.max_frame_age)
        if healthy != self._was_healthy:
            (log.info if healthy else log.warning)("health: %s", text)
            self._was_healthy = healthy
            self._last_status = float("-inf")  # report the change at once
        if healthy and self.ping_every is not None and now - self._last_ping >= self.ping_every:
            if self.notifier.watchdog():
                self.pings += 1
            self._last_ping = now
        if now - self._last_status >= self.status_interval:
            self.notifier.status(text)
            self._note_status(text, now)

    def _note_status(self, text: str, now: float) -> None:
        self._last_text = text
        self._last_status = now


# systemd's TimeoutStopSec in emotiond.service is 15 s; leave a margin to log why before SIGKILL.
SHUTDOWN_DEADLINE = 12.0
# What the orderly stop steps (camera, components, dispatcher, MQTT flush, offline) share, counted
# from the stop request: below SHUTDOWN_DEADLINE, so a slow step is cut short instead of exiting 70.
STOP_BUDGET = 9.0
_deadline_lock = threading.Lock()
_deadline: threading.Timer | None = None


def arm_exit_deadline(seconds: float | None = None, exit: Callable[[int], Any] = os._exit) -> threading.Timer:
    """After a stop signal: if shutdown still runs after ``seconds``, log it and exit 70 (EX_SOFTWARE).

    A component whose stop() hangs (a stuck audio device, an unreachable broker) must not keep the
    process alive until SIGKILL; this says which thread was stuck instead. Idempotent.
    """
    global _deadline
    seconds = SHUTDOWN_DEADLINE if seconds is None else seconds

    def expire() -> None:
        stuck = [t.name for t in threading.enumerate() if t is not threading.current_thread() and t.is_alive()]
        log.error("shutdown did not finish within %.0f s (threads still running: %s); exiting", seconds, ", ".join(stuck))
        logging.shutdown()
        exit(EX_SOFTWARE)

    with _deadline_lock:
        if _deadline is None:
            _deadline = threading.Timer(seconds, expire)
            _deadline.name = "exit-deadline"
            _deadline.daemon = True
            _deadline.start()
        return _deadline
