"""Events -> MQTT messages: pure logic, no paho, no threads, no clock of its own.

The ``Translator`` numbers each ``events`` message (``seq``), applies the dwell and rate rules of
``state.py`` to the scene and per face, and builds the retained ``state`` body. Every method takes
the time from its caller, so the rules are unit-testable without a broker or waiting. The caller
(``MqttSink``) serialises access with its own lock.

Besides ``state`` it keeps two retained side topics that change rarely, so Home Assistant's recorder
is not flooded: ``attributes`` (the probabilities, rounded, published when the label changes and at
the heartbeat) and ``voice`` (the last voice result, on each result and at the heartbeat). In
privacy mode all three carry no label, faces or probabilities. Messages delivered late (queued
during an outage, or from the spool) get an ``age`` when handed to the broker (``with_age``).
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

LATE_AFTER = 1.0  # seconds: a message handed to the broker later than this after its timestamp gets an ``age``
ATTRIBUTE_DIGITS = 2  # the probabilities on the attributes topic: 0.01 steps are plenty for a dashboard


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
        self.heartbeat = m.heartbeat
        self._voice: tuple[AudioEvent, float] | None = None  # the last voice result and its monotonic time
        self._last_error: dict[str, Any] | None = None
        self._side_dirty = True  # attributes/voice must be re-published
        self._side_published: float | None = None

    def configure(self, m: MqttConfig) -> None:
        """New rate and dwell settings (``reload``), applied to the scene and every tracked face."""
        self.min_dwell = m.min_dwell
        self.heartbeat = m.heartbeat
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
        if isinstance(event, ButtonEvent):  # the button topic is JSON too, so it can carry its timestamp
            return [self.event("button", event.timestamp, action=event.action),
                    Outgoing(self.topics.button, compact({"action": event.action,
                                                          "timestamp": round(event.timestamp, 3)}))]
        if isinstance(event, PrivacyEvent):
            self.set_privacy(event.enabled)
            return [self.event("privacy", event.timestamp, enabled=event.enabled)]
        if isinstance(event, ErrorEvent):
            self._last_error = {"component": event.component, "message": event.message,
                                "timestamp": round(event.timestamp, 3)}
            self.tracker.mark_changed()
            return [self.event("error", event.timestamp, component=event.component, message=event.message)]
        return []

    def set_privacy(self, enabled: bool) -> None:
        """Entering or leaving privacy forgets the room and the voice: nothing stale is shown afterwards."""
        if enabled == self.privacy:
            return
        self.privacy = enabled
        self.tracker.reset()
        self._face_dwell.clear()
        self._voice = self._last_audio = None
        self._side_dirty = True

    def with_age(self, msg: Outgoing, wall: float) -> Outgoing:
        """``msg`` as handed to the broker now: an event or button message more than ``LATE_AFTER`` s
        after its timestamp gains ``age`` (seconds), so receivers can tell a late delivery."""
        if msg.topic not in (self.topics.events, self.topics.button):
            return msg
        try:
            body = json.loads(msg.payload)
            age = wall - float(body["timestamp"])
        except (ValueError, TypeError, KeyError):
            return msg
        if age < LATE_AFTER:
            return msg
        body["age"] = round(age, 1)
        return Outgoing(msg.topic, compact(body))

    def tick(self, now: float, wall: float) -> list[Outgoing]:
        """A scene label that has now dwelt long enough (no event needed to commit it)."""
        change = self.tracker.tick(now)
        obs = self.tracker.current
        if change is not None:
            self._side_dirty = True
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
        if self.privacy:  # one already on its way when privacy was turned on
            return []
        out: list[Outgoing] = []
        obs = Observation.from_event(event)
        change = self.tracker.observe(obs, now)
        if change is not None:
            self._side_dirty = True
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
        if event.status in ("ok", "no_speech", "error") and not self.privacy:  # not busy/cancelled
            self._voice = (event, now)
            self._side_dirty = True
        arousal = None if event.arousal is None else round(float(event.arousal), 3)
        return self.event("audio_captured", event.timestamp, trigger=event.trigger, status=event.status,
                          duration=round(event.duration, 3), result=result, error=event.error,
                          validated=event.validated, arousal=arousal)

    # --- the retained state -------------------------------------------------------------------
    def state_payload(self, now: float, wall: float, dropped: int) -> str:
        """The ``state`` body (``state_document``): in privacy mode no label, faces, confidence,
        valence or probabilities; privacy forgets the voice result too, so its age is None there."""
        audio_age = None if self._last_audio is None else now - self._last_audio
        return compact(state_document(self.tracker, audio_age=audio_age, privacy=self.privacy, dropped_events=dropped,
                                      timestamp=wall, last_error=self._last_error))

    # --- the side topics (attributes, voice) -------------------------------------------------------
    def side_due(self, now: float) -> bool:
        return self._side_dirty or self._side_published is None or now - self._side_published >= self.heartbeat

    def seconds_until_side(self, now: float) -> float:
        if self.side_due(now):
            return 0.0
        assert self._side_published is not None
        return max(0.0, self._side_published + self.heartbeat - now)

    def side_payloads(self, now: float, wall: float) -> list[tuple[str, str]]:
        """(topic, retained body) for ``attributes`` and ``voice``; marks them published."""
        self._side_dirty, self._side_published = False, now
        stamp = round(wall, 3)
        obs = self.tracker.current
        # the probabilities behind the stable label: a brief dropout to no face (the sensor shows none)
        # does not rewrite them, so the recorder stores them once per label change and heartbeat
        if self.privacy or obs is None or self.tracker.dwell.stable is None:
            attributes: dict[str, Any] = {"probabilities": {}, "privacy": self.privacy, "timestamp": stamp}
        else:
            attributes = {"probabilities": {k: round(float(v), ATTRIBUTE_DIGITS) for k, v in obs.probabilities.items()},
                          "privacy": False, "timestamp": stamp}
        return [(self.topics.attributes, compact(attributes)), (self.topics.voice, compact(self._voice_body(now, stamp)))]

    def _voice_body(self, now: float, stamp: float) -> dict[str, Any]:
        """The last voice result: its label, else its status (``no_speech``, ``error``); age in whole s."""
        body: dict[str, Any] = {"label": None, "status": None, "validated": None, "arousal": None, "age": None,
                                "result_timestamp": None, "privacy": self.privacy, "timestamp": stamp}
        if self._voice is None or self.privacy:
            return body
        event, at = self._voice
        p = event.prediction
        body.update(label=p.label if event.status == "ok" and p is not None else event.status, status=event.status,
                    validated=event.validated, arousal=None if event.arousal is None else round(float(event.arousal), 2),
                    age=int(now - at), result_timestamp=round(event.timestamp, 3))
        return body
