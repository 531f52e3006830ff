"""The audio capture component: owns the microphone on its own thread, so a capture never blocks the
face pipeline. Triggers (GPIO, SIGUSR1, control socket, MQTT via the context's ``command``) call ``trigger``;
a trigger while a capture runs is ignored and reported (AudioEvent ``busy``); a failing microphone
yields an AudioEvent ``error`` and the next trigger tries again. A capture running when privacy mode
is turned on is abandoned: its samples are discarded unanalysed (AudioEvent ``cancelled``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from emotiond.commands import number
from emotiond.config import AudioConfig
from emotiond.context import CommandError, ComponentContext
from emotiond.events import AudioEvent, Event, ListeningEvent
from emotiond.perception.audio_pipeline import AudioAnalyzer
from emotiond.sources.microphone import MicrophoneError, MicrophoneSource, open_microphone
from emotiond.sources.triggers import Trigger

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 3.0  # how long stop() lets an in-flight recording finish

TRIGGER_NAMES = ("gpio", "mqtt", "signal", "socket", "cli", "demo", "command", "web", "keyboard")


class AudioCapture:
    """Component: ``start(ctx)`` registers the ``capture_audio`` command and starts the triggers."""

    def __init__(self, config: AudioConfig, analyzer: AudioAnalyzer,
                 microphone_factory: Callable[[], MicrophoneSource] | None = None,
                 triggers: Sequence[Trigger] = ()) -> None:
        self.config = config
        self.analyzer = analyzer
        self._mic_factory = microphone_factory or self._open_microphone
        self.triggers = list(triggers)
        self._jobs: queue.Queue[tuple[str, float, threading.Event | None] | None] = queue.Queue()
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ctx: ComponentContext | None = None
        self._emit: Callable[[Event], None] = lambda e: None
        self._results: dict[int, AudioEvent] = {}
        self.captures = 0

    @property
    def capture_rate(self) -> int:
        """``[audio] sample_rate``, or (0, the default) the voice model's own rate, so nothing is resampled."""
        return self.config.sample_rate or self.analyzer.classifier.sample_rate

    def _open_microphone(self) -> MicrophoneSource:
        # the model's rate may fall back to the nearest one the device takes; an explicit rate may not
        return open_microphone(self.config.source, self.config.device, self.capture_rate,
                               fallback=self.config.sample_rate == 0)

    # --- component ---------------------------------------------------------------------------
    def start(self, ctx: ComponentContext) -> None:
        self._ctx = ctx
        self._emit = ctx.emit
        ctx.register_command("capture_audio", self.command)
        self._thread = threading.Thread(target=self._worker, name="audio", daemon=True)
        self._thread.start()
        ctx.register_worker("audio", self._thread.is_alive)
        if self.config.source == "pyaudio":
            try:
                import pyaudio  # noqa: F401
            except ImportError:
                log.warning("[audio] source is 'pyaudio' but PyAudio is not installed: captures will report an error")
        for trig in self.triggers:
            try:
                trig.start(self.trigger)
                alive = getattr(trig, "alive", None)
                if alive is not None:  # e.g. the control socket's accept thread
                    ctx.register_worker(type(trig).__name__, alive)
            except Exception as exc:  # one broken trigger (no GPIO, socket in use) must not stop the daemon
                log.error("trigger %s not started: %s", type(trig).__name__, exc)

    def stop(self) -> None:
        for trig in self.triggers:
            try:
                trig.stop()
            except Exception:
                log.exception("stopping trigger %s failed", type(trig).__name__)
        self._jobs.put(None)
        if self._thread is not None:
            # A recording in flight gets a moment to finish; past that it is abandoned (the thread is a
            # daemon thread) so that shutdown stays well inside systemd's TimeoutStopSec.
            left = self._ctx.stop_remaining() if self._ctx is not None else STOP_GRACE_SECONDS
            self._thread.join(timeout=max(0.1, min(STOP_GRACE_SECONDS, left - 3.0)))  # 3 s kept for MQTT
            if self._thread.is_alive():
                log.warning("abandoning the voice capture in progress to stop in time")

    # --- triggering ----------------------------------------------------------------------------
    def check_duration(self, duration: Any) -> float:
        c = self.config
        if duration is None:
            return c.duration
        # number() compares a 400-digit int exactly instead of overflowing in float()
        return number(duration, "duration", c.min_duration, c.max_duration, "s", "a number of seconds")

    def trigger(self, source: str, duration: float | None = None, done: threading.Event | None = None) -> dict[str, Any]:
        """Start a capture unless one is running; returns {"accepted": bool, ...} and never blocks."""
        seconds = self.check_duration(duration)
        if self._ctx is not None and self._ctx.privacy:
            event = AudioEvent(source, "error", error="privacy mode is on: no audio is captured")
            self._emit(event)
            return {"accepted": False, "status": "error", "error": event.error}
        if not self._busy.acquire(blocking=False):
            log.info("audio trigger from %s ignored: a capture is already running", source)
            self._emit(AudioEvent(source, "busy"))
            return {"accepted": False, "status": "busy"}
        self._jobs.put((source, seconds, done))
        return {"accepted": True, "trigger": source, "duration": seconds}

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    def command(self, args: dict[str, Any]) -> dict[str, Any]:
        """``capture_audio`` command: {"duration": s?, "trigger": name?, "wait": bool?}."""
        unknown = set(args) - {"duration", "trigger", "wait"}
        if unknown:
            raise CommandError(f"capture_audio: unknown argument(s) {', '.join(sorted(unknown))} "
                               "(known: duration, trigger, wait)")
        source = args.get("trigger", "command")
        if source not in TRIGGER_NAMES:
            raise CommandError(f"capture_audio: trigger must be one of {', '.join(TRIGGER_NAMES)}, got {source!r}")
        wait = args.get("wait", False)
        if not isinstance(wait, bool):
            raise CommandError("capture_audio: 'wait' must be true or false")
        try:
            seconds = self.check_duration(args.get("duration"))
        except ValueError as exc:
            raise CommandError(f"capture_audio: {exc}") from None
        done = threading.Event() if wait else None
        result = self.trigger(source, seconds, done)
        if done is not None and result.get("accepted"):
            if not done.wait(seconds + 30.0):
                raise CommandError("capture_audio: no result within the time limit")
            event = self._results.pop(id(done), None)
            if event is not None:
                result["result"] = event.to_dict()
        return result

    # --- the worker ------------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            source, seconds, done = job
            try:
                event = self._capture(source, seconds)
            except Exception as exc:  # analysis bugs must not kill the thread
                log.exception("audio analysis failed")
                event = AudioEvent(source, "error", error=f"analysis failed: {exc}")
            finally:
                self._busy.release()
            self.captures += 1
            self._emit(event)
            if done is not None:
                self._results[id(done)] = event
                done.set()

    def _private(self) -> bool:
        return self._ctx is not None and self._ctx.privacy

    def _abandoned(self, source: str) -> AudioEvent:
        log.info("privacy mode is on: voice capture from %s abandoned, nothing analysed", source)
        return AudioEvent(source, "cancelled", error="privacy mode turned on: capture abandoned, nothing analysed")

    def _capture(self, source: str, seconds: float) -> AudioEvent:
        if self._private():  # turned on while this job waited in the queue
            return self._abandoned(source)
        self._emit(ListeningEvent(True, source))
        try:
            mic = self._mic_factory()
            samples, rate = mic.record(seconds)
        except MicrophoneError as exc:
            log.error("audio capture failed: %s", exc)
            return AudioEvent(source, "error", error=str(exc))
        except Exception as exc:  # a driver raising something unexpected is still only this capture
            log.exception("audio capture failed")
            return AudioEvent(source, "error", error=f"microphone failed: {exc}")
        finally:
            self._emit(ListeningEvent(False, source))
        if self._private():  # turned on during the recording: the samples are dropped here, unread
            del samples
            return self._abandoned(source)
        ended = time.time()
        return self.analyzer.analyse(samples, rate, source, timestamp=ended)


class DemoClip:
    """``emotiond demo``: once the first frame went through the face pipeline, trigger one capture
    (trigger ``demo``) from the sample WAV and wait for its result, so every later emotion event of
    the demo is fused with it. Only the demo waits like this; a live daemon never does."""

    def __init__(self, capture: AudioCapture, duration: float, timeout: float = 60.0) -> None:
        self.capture = capture
        self.duration = duration
        self.timeout = timeout
        self.fired = False

    def __call__(self, ctx: ComponentContext) -> None:  # a main-loop hook
        if self.fired or ctx.health().frames < 1:
            return
        self.fired = True
        done = threading.Event()
        result = self.capture.trigger("demo", self.duration, done)
        if result.get("accepted") and not done.wait(self.timeout):
            log.warning("demo audio clip not analysed within %.0f s", self.timeout)
