"""Events -> MQTT messages: pure logic, no paho, no threads, no clock of its own.

The ``Translator`` numbers each ``events`` message (``seq``), applies the dwell and rate rules of
``state.py`` to the scene and per face, and builds the retained ``state`` body. Every method takes
the time from its caller, so the rules are unit-testable without a broker or waiting. The caller
(``MqttSink``) serialises access with its own lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from emotiond.config import MqttConfig
from emotiond.events import (
    AudioEvent,
    ButtonEvent,
    EmotionEvent,
    ErrorEvent,
    Event,
    FaceAppeared,
    FaceLost,
    PrivacyEvent,
)
from emotiond.sinks.mqtt.discovery import Topics
from emotiond.sinks.mqtt.state import LabelChange, LabelDwell, Observation, StateTracker, state_document


@dataclass(frozen=True)
class Outgoing:
    """One non-retained QoS 1 message waiting for delivery (event, button press, command result)."""

    topic: str
    payload: str


def compact(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def emotion_changed(change: LabelChange, *, scope: str, source: str, face_id: int | None,
                    confidence: float) -> dict[str, Any]:
    """The fields of an ``emotion_changed`` event (the one place they are built)."""
    return {"scope": scope, "source": source, "face_id": face_id, "from": change.old, "to": change.new,
            "confidence": round(confidence, 4)}


class Translator:
    """Turns events into ``Outgoing`` messages and keeps what the retained state reports."""

    def __init__(self, topics: Topics, m: MqttConfig) -> None:
        self.topics = topics
        self.seq = 0
        self.privacy = False
        self.min_dwell = m.min_dwell
        self.tracker = StateTracker(m.min_interval, m.min_dwell, m.heartbeat)
        self._face_dwell: dict[int, LabelDwell] = {}
        self._last_audio: float | None = None  # monotonic time of the last audio result

    def configure(self, m: MqttConfig) -> None:
        """New rate and dwell settings (``reload``), applied to the scene and every tracked face."""
        self.min_dwell = m.min_dwell
        self.tracker.configure(m.min_interval, m.min_dwell, m.heartbeat)
        for dwell in self._face_dwell.values():
            dwell.min_dwell = m.min_dwell

    # --- events -> messages -------------------------------------------------------------------
    def translate(self, event: Event, now: float) -> list[Outgoing]:
        """The messages for one event (``now``: monotonic seconds); [] for events MQTT does not carry."""
        if isinstance(event, EmotionEvent):
            return self._emotion(event, now)
        if isinstance(event, FaceAppeared):
            self._face_dwell[event.face_id] = LabelDwell(self.min_dwell)
            return [self.event("face_appeared", event.timestamp, face_id=event.face_id, box=list(event.box))]
        if isinstance(event, FaceLost):
            self._face_dwell.pop(event.face_id, None)
            return [self.event("face_lost", event.timestamp, face_id=event.face_id, last_label=event.last_label)]
        if isinstance(event, AudioEvent):
            return [self._audio(event, now)]
        if isinstance(event, ButtonEvent):
            return [self.event("button", event.timestamp, action=event.action), Outgoing(self.topics.button, event.action)]
        if isinstance(event, PrivacyEvent):
            self.privacy = event.enabled
            self.tracker.mark_changed()
            return [self.event("privacy", event.timestamp, enabled=event.enabled)]
        if isinstance(event, ErrorEvent):
            return [self.event("error", event.timestamp, component=event.component, message=event.message)]
        return []

    def tick(self, now: float, wall: float) -> list[Outgoing]:
        """A scene label that has now dwelt long enough (no event needed to commit it)."""
        change = self.tracker.tick(now)
        obs = self.tracker.current
        if change is None or change.new is None or obs is None:
            return []
        return [self.event("emotion_changed", wall, **emotion_changed(change, scope="scene", source=obs.source,
                                                                      face_id=None, confidence=obs.confidence))]

    def event(self, kind: str, timestamp: float, **fields: Any) -> Outgoing:
        """One numbered message on the ``events`` topic."""
        self.seq += 1
        return Outgoing(self.topics.events, compact({"type": kind, "seq": self.seq, "timestamp": round(timestamp, 3),
                                                     **fields}))

    def _emotion(self, event: EmotionEvent, now: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        obs = Observation.from_event(event)
        change = self.tracker.observe(obs, now)
        if change is not None and change.new is not None:
            out.append(self.event("emotion_changed", event.timestamp, **emotion_changed(
                change, scope="scene", source=obs.source, face_id=None, confidence=obs.confidence)))
        for face in event.faces:
            dwell = self._face_dwell.setdefault(face.face_id, LabelDwell(self.min_dwell))
            fchange = dwell.update(face.prediction.label, now)
            if fchange is not None and fchange.new is not None:
                out.append(self.event("emotion_changed", event.timestamp, **emotion_changed(
                    fchange, scope="face", source="face", face_id=face.face_id, confidence=face.prediction.confidence)))
        return out

    def _audio(self, event: AudioEvent, now: float) -> Outgoing:
        result = None
        if event.prediction is not None:
            p = event.prediction
            result = {"label": p.label, "confidence": round(p.confidence, 4),
                      "probabilities": {k: round(float(v), 4) for k, v in p.probabilities.items()}}
        if event.status == "ok" and result is not None:
            self._last_audio = now
            self.tracker.mark_changed()
        return self.event("audio_captured", event.timestamp, trigger=event.trigger, status=event.status,
                          duration=round(event.duration, 3), result=result, error=event.error)

    # --- the retained state -------------------------------------------------------------------
    def state_payload(self, now: float, wall: float, dropped: int) -> str:
        """The ``state`` body: the tracker's snapshot plus audio age, privacy and the drop count."""
        audio_age = None if self._last_audio is None else now - self._last_audio
        return compact(state_document(self.tracker, audio_age=audio_age, privacy=self.privacy,
                                      dropped_events=dropped, timestamp=wall))
