"""What the page shows besides the picture: the state document, the last voice and fused results, and
a ring buffer of the last minutes for the timeline. Pure bookkeeping fed by events; thread-safe.

The state document is built by ``sinks.mqtt.state`` (the same StateTracker rules and fields as the
MQTT ``state`` topic), so /api/state and MQTT cannot disagree on what a field means.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

from emotiond.events import UNCERTAIN, AudioEvent, EmotionEvent, Event
from emotiond.sinks.mqtt.state import Observation, StateTracker, state_document

POINT_SPACING = 1.0  # seconds between timeline points: 300 points for the default 5 minutes


@dataclass(frozen=True)
class Point:
    """One timeline sample: the fused result when there is one, else the face-only scene."""

    timestamp: float
    label: str | None
    valence: float | None
    arousal: float | None
    faces: int

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.timestamp, 3), "label": self.label, "faces": self.faces,
                "valence": None if self.valence is None else round(self.valence, 3),
                "arousal": None if self.arousal is None else round(self.arousal, 3)}


def point_of(event: EmotionEvent) -> Point:
    if event.fused is not None:
        f = event.fused
        return Point(event.timestamp, f.prediction.label, f.valence, f.arousal, event.scene.faces)
    label = event.scene.prediction.label if event.scene.prediction is not None else None
    return Point(event.timestamp, label, None, None, event.scene.faces)


def voice_summary(event: AudioEvent) -> dict[str, Any]:
    """The seed's line below the feed: label or ``no_speech``, whether it is trusted, arousal."""
    p = event.prediction
    label = p.label if p is not None and event.status == "ok" else event.status
    return {
        "timestamp": round(event.timestamp, 3),
        "status": event.status,
        "label": label,
        "confidence": None if p is None else round(p.confidence, 4),
        "validated": event.status == "ok" and p is not None and p.label != UNCERTAIN,
        "arousal": None if event.arousal is None else round(event.arousal, 3),
        "trigger": event.trigger,
        "error": event.error,
    }


class LiveState:
    def __init__(self, history_seconds: float, min_interval: float, min_dwell: float, heartbeat: float) -> None:
        self.history_seconds = history_seconds
        self._lock = threading.Lock()
        self._tracker = StateTracker(min_interval, min_dwell, heartbeat)
        self._last_audio: float | None = None  # monotonic time of the last usable voice result
        self._voice: dict[str, Any] | None = None
        self._fused: dict[str, Any] | None = None
        self._points: collections.deque[Point] = collections.deque(maxlen=int(history_seconds / POINT_SPACING) + 1)

    def handle(self, event: Event, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if isinstance(event, EmotionEvent):
                self._tracker.observe(Observation.from_event(event), now)
                if event.fused is not None:
                    self._fused = event.fused.to_dict()
                    self._fused.pop("features", None)
                point = point_of(event)
                bucket = point.timestamp // POINT_SPACING
                if self._points and self._points[-1].timestamp // POINT_SPACING == bucket:
                    self._points[-1] = point  # the newest value within one spacing wins
                else:
                    self._points.append(point)
                while self._points and point.timestamp - self._points[0].timestamp > self.history_seconds:
                    self._points.popleft()
            elif isinstance(event, AudioEvent):
                if event.status == "busy":
                    return  # an ignored trigger is not a result
                self._voice = voice_summary(event)
                if event.status == "ok" and event.prediction is not None:
                    self._last_audio = now

    def state(self, privacy: bool, dropped_events: int, now: float | None = None) -> dict[str, Any]:
        """The MQTT state document (schemas/state.json)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._tracker.tick(now)  # a label that has dwelled long enough becomes the stable one
            age = None if self._last_audio is None else now - self._last_audio
            return state_document(self._tracker, audio_age=age, privacy=privacy,
                                  dropped_events=dropped_events, timestamp=time.time())

    def recent(self, privacy: bool) -> dict[str, Any]:
        """What the page needs when it opens: the last voice and fused results and the timeline."""
        with self._lock:
            return {"now": round(time.time(), 3), "history_seconds": self.history_seconds,
                    "voice": self._voice, "fused": self._fused, "privacy": privacy,
                    "points": [p.to_dict() for p in self._points]}
