"""When to publish the MQTT ``state`` and when a label change counts: pure logic, no MQTT, no threads.

Dashboards should neither flap nor go stale: a new label must persist for ``min_dwell`` seconds
before it replaces the published one, a change is published at most every ``min_interval``
seconds, and an unchanged state is re-published every ``heartbeat`` seconds. Every method takes
``now`` (monotonic seconds) so the rules are unit-testable without waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emotiond.events import EmotionEvent

SIGNIFICANT_CONFIDENCE = 0.05  # a confidence move smaller than this is not a "change" worth a publish


@dataclass(frozen=True)
class Observation:
    """What one EmotionEvent says about the room: the fused result, else the face-only scene."""

    label: str | None
    confidence: float
    probabilities: Mapping[str, float]
    valence: float | None
    faces: int
    source: str  # "fused" or "scene"
    quality_reason: str | None = None  # why the faces cannot be read (too_dark, ...), when none can


    @classmethod
    def from_event(cls, event: EmotionEvent) -> Observation:
        faces, why = event.scene.faces, event.scene.quality_reason
        if event.fused is not None:
            fp = event.fused.prediction
            return cls(fp.label, fp.confidence, dict(fp.probabilities), event.fused.valence, faces, "fused", why)
        p = event.scene.prediction
        if p is None:
            return cls(None, 0.0, {}, None, faces, "scene", why)
        return cls(p.label, p.confidence, dict(p.probabilities), None, faces, "scene", why)


@dataclass(frozen=True)
class LabelChange:
    old: str | None
    new: str | None


@dataclass
class LabelDwell:
    """A label replaces the stable one only after being observed continuously for ``min_dwell`` s."""

    min_dwell: float
    stable: str | None = None
    candidate: str | None = None
    since: float = 0.0
    _pending: bool = field(default=False, repr=False)

    def clear(self) -> LabelChange | None:
        """Drop to no label at once, without a dwell (nobody in view, privacy on)."""
        self.candidate, self._pending = None, False
        if self.stable is None:
            return None
        change, self.stable = LabelChange(self.stable, None), None
        return change

    def update(self, label: str | None, now: float) -> LabelChange | None:
        if label == self.stable:
            self._pending = False
            return None
        if not self._pending or label != self.candidate:
            self.candidate, self.since, self._pending = label, now, True
        return self.tick(now)

    def tick(self, now: float) -> LabelChange | None:
        """Commit the candidate if it has lasted long enough (the last observation still holds)."""
        if self._pending and now - self.since >= self.min_dwell:
            change = LabelChange(self.stable, self.candidate)
            self.stable, self._pending = self.candidate, False
            return change
        return None

    def seconds_to_commit(self, now: float) -> float | None:
        return max(0.0, self.since + self.min_dwell - now) if self._pending else None


class StateTracker:
    """Holds the current observation and decides when the retained ``state`` is due."""

    def __init__(self, min_interval: float, min_dwell: float, heartbeat: float) -> None:
        self.min_interval = min_interval
        self.heartbeat = heartbeat
        self.dwell = LabelDwell(min_dwell)
        self.current: Observation | None = None
        self._published: tuple[Any, ...] | None = None  # the key fields of the last published state
        self._last_publish: float | None = None
        self._forced = False

    def configure(self, min_interval: float, min_dwell: float, heartbeat: float) -> None:
        self.min_interval, self.heartbeat, self.dwell.min_dwell = min_interval, heartbeat, min_dwell

    def observe(self, obs: Observation, now: float) -> LabelChange | None:
        self.current = obs
        return self.dwell.update(obs.label, now)

    @property
    def shown(self) -> str | None:
        """The label the state reports: the stable one, but none at once while nobody is in view, so
        label, faces and confidence agree. The dwell itself goes on: a face back within ``min_dwell``
        with the same label is no new ``emotion_changed``."""
        if self.current is None or self.current.faces == 0:
            return None
        return self.dwell.stable

    def reset(self) -> None:
        """Forget the observation and the label (privacy on/off): nothing stale resurfaces afterwards."""
        self.current = None
        self.dwell.clear()
        self._forced = True

    def tick(self, now: float) -> LabelChange | None:
        return self.dwell.tick(now)

    def mark_changed(self) -> None:
        """Something outside the observation changed (privacy, dropped count, audio result)."""
        self._forced = True

    def snapshot(self) -> dict[str, Any]:
        """label (the stable one), confidence in that label, probabilities, valence, faces, source."""
        obs, label = self.current, self.shown
        if obs is None:
            return {"label": None, "confidence": 0.0, "probabilities": {}, "valence": None, "faces": 0, "source": None,
                    "quality_reason": None}
        if label is None:
            confidence = 0.0
        elif label == obs.label:
            confidence = obs.confidence
        else:  # the observation's label is still dwelling: report the stable label's own probability
            confidence = float(obs.probabilities.get(label, obs.confidence))
        return {
            "label": label,
            "confidence": round(confidence, 4),
            "probabilities": {k: round(float(v), 4) for k, v in obs.probabilities.items()},
            "valence": None if obs.valence is None else round(float(obs.valence), 4),
            "faces": obs.faces,
            "source": obs.source,
            "quality_reason": obs.quality_reason,  # a dashboard can say "too dark to tell"
        }

    def _key(self) -> tuple[Any, ...]:
        s = self.snapshot()
        return (s["label"], s["faces"], s["source"], s["confidence"], s["valence"], s["quality_reason"])

    def _changed(self) -> bool:
        if self._forced or self._published is None:
            return True
        label, faces, source, conf, valence, why = self._key()
        p_label, p_faces, p_source, p_conf, p_valence, p_why = self._published
        if (label, faces, source, why) != (p_label, p_faces, p_source, p_why):
            return True
        if abs(conf - p_conf) >= SIGNIFICANT_CONFIDENCE:
            return True
        if (valence is None) != (p_valence is None):
            return True
        return valence is not None and abs(valence - p_valence) >= SIGNIFICANT_CONFIDENCE

    def due(self, now: float) -> bool:
        if self._last_publish is None:
            return True
        elapsed = now - self._last_publish
        return elapsed >= self.heartbeat or (elapsed >= self.min_interval and self._changed())

    def published(self, now: float) -> None:
        self._last_publish, self._published, self._forced = now, self._key(), False

    def seconds_until_check(self, now: float) -> float:
        """How long the caller may sleep before ``due``/``tick`` could change their answer."""
        if self._last_publish is None:
            return 0.0
        elapsed = now - self._last_publish
        waits = [self.heartbeat - elapsed]
        if self._changed():
            waits.append(self.min_interval - elapsed)
        commit = self.dwell.seconds_to_commit(now)
        if commit is not None:
            waits.append(commit)
        return max(0.0, min(waits))


def state_document(
    tracker: StateTracker, *, audio_age: float | None, privacy: bool, dropped_events: int, timestamp: float,
    last_error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``state`` document (schemas/state.json): MQTT publishes it, the web dashboard serves it.
    In privacy mode it says only that: no label, faces, confidence, valence or probabilities."""
    body: dict[str, Any] = {} if privacy else tracker.snapshot()
    body.update(
        audio_age=None if audio_age is None else round(audio_age, 1),
        privacy=privacy,
        dropped_events=dropped_events,
        last_error=last_error,
        timestamp=round(timestamp, 3),
    )
    return body
