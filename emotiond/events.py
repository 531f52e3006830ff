"""Events: the one schema every sink (stdout, MQTT, display) receives.

Perception and fusion produce these frozen dataclasses; ``to_dict`` is their JSON form, so a sink
never invents its own field names.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from emotiond.redact import redact

UNCERTAIN = "uncertain"


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, Mapping):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


@dataclass(frozen=True)
class Event:
    """Base of every event: a type name and a wall-clock timestamp (seconds since the epoch)."""

    type: ClassVar[str] = "event"
    timestamp: float = field(default_factory=time.time, kw_only=True)
    # time.monotonic() when the daemon took the event in (Daemon.emit): ages between events (fusion)
    # use it, since a Pi has no RTC and NTP steps the wall clock at boot. None in replays and tests,
    # whose ages come from ``timestamp``. Never serialised.
    monotonic: float | None = field(default=None, kw_only=True, compare=False, repr=False, metadata={"internal": True})

    def age_since(self, earlier: Event) -> float:
        """Seconds from ``earlier`` to this event: monotonic when both have it, else wall clock."""
        if self.monotonic is not None and earlier.monotonic is not None:
            return self.monotonic - earlier.monotonic
        return self.timestamp - earlier.timestamp

    def to_dict(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("internal")}
        out: dict[str, Any] = {"type": self.type}
        for key, value in body.items():
            if isinstance(value, _PARTS):
                value = value.to_dict()
            elif isinstance(value, tuple) and value and isinstance(value[0], _PARTS):
                value = [v.to_dict() for v in value]
            out[key] = _round(value)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True)
class Prediction:
    """A probability distribution over labels with its decision (or ``uncertain``)."""

    probabilities: Mapping[str, float]
    label: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return _round({"probabilities": dict(self.probabilities), "label": self.label, "confidence": self.confidence})


@dataclass(frozen=True)
class FaceEmotion:
    """One tracked face: stable id, box (x, y, w, h in pixels) and its smoothed expression."""

    face_id: int
    box: tuple[int, int, int, int]
    detector_score: float
    prediction: Prediction
    held: bool = False  # the detector missed it; the box is being held/tracked
    quality: float | None = None  # 0 (unreadable) .. 1 (good), see perception.face_quality
    quality_reason: str | None = None  # too_dark | low_contrast | too_blurry | too_small | turned, when quality < 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.face_id,
            "box": list(self.box),
            "detector_score": round(self.detector_score, 4),
            "held": self.held,
            **self.prediction.to_dict(),
            "quality": None if self.quality is None else round(self.quality, 4),
            "quality_reason": self.quality_reason,
        }


@dataclass(frozen=True)
class SceneEmotion:
    """The aggregate over all faces in view (the room's mood)."""

    faces: int
    prediction: Prediction | None
    # why the scene is ``uncertain`` when every face was too poor to read (e.g. "too_dark"), else None
    quality_reason: str | None = None
    quality: float | None = None  # 0..1, mean quality of the faces the scene is made of (fusion weighs by it)

    def to_dict(self) -> dict[str, Any]:
        base: dict[str, Any] = {"faces": self.faces}
        if self.prediction is None:
            base.update({"probabilities": {}, "label": None, "confidence": 0.0})
        else:
            base.update(self.prediction.to_dict())
        base["quality"] = None if self.quality is None else round(self.quality, 4)
        base["quality_reason"] = self.quality_reason
        return base


@dataclass(frozen=True)
class EmotionEvent(Event):
    """Emitted each time expressions are (re)classified: per-face and scene results for one frame."""

    type: ClassVar[str] = "emotion"
    frame: int
    faces: tuple[FaceEmotion, ...]
    scene: SceneEmotion
    fused: FusedEmotion | None = None  # filled by the fusion stage when it runs


@dataclass(frozen=True)
class FaceAppeared(Event):
    type: ClassVar[str] = "face_appeared"
    face_id: int
    box: tuple[int, int, int, int]
    frame: int


@dataclass(frozen=True)
class FaceLost(Event):
    type: ClassVar[str] = "face_lost"
    face_id: int
    frame: int
    last_label: str | None = None


@dataclass(frozen=True)
class ErrorEvent(Event):
    """Something failed but the daemon carries on (camera unplugged, model error, ...)."""

    type: ClassVar[str] = "error"
    component: str
    message: str

    def __post_init__(self) -> None:  # published on MQTT and stdout: never with a camera password
        object.__setattr__(self, "message", redact(self.message))


@dataclass(frozen=True)
class AudioEvent(Event):
    """One triggered voice capture and its outcome.

    status: ``ok`` (prediction set), ``no_speech`` (VAD found no voice), ``busy`` (a capture was
    already running; this trigger was ignored), ``cancelled`` (privacy mode turned on during the
    capture: abandoned, nothing analysed) or ``error`` (message in ``error``).
    """

    type: ClassVar[str] = "audio"
    trigger: str  # gpio | mqtt | signal | socket | cli | demo | command | web | keyboard
    status: str
    duration: float = 0.0  # seconds of audio captured
    prediction: Prediction | None = None  # in the common 7-class space (see fusion.labels)
    model_probabilities: Mapping[str, float] | None = None  # in the audio model's own labels
    coverage: Mapping[str, bool] | None = None  # which of the 7 classes the audio model can say
    prosody: Mapping[str, float] | None = None  # pitch_hz, pitch_range_hz, loudness_db, speech_rate, voiced_ratio
    arousal: float | None = None  # vocal arousal index vs the device's rolling baseline
    error: str | None = None
    validated: bool = False  # the voice model's manifest records a validation (see models.Validation)


@dataclass(frozen=True)
class FusedEmotion:
    """Face + audio after score-level fusion and smoothing (carried as ``EmotionEvent.fused``)."""

    prediction: Prediction
    valence: float  # -1 (negative) .. +1 (positive)
    arousal: float  # -1 (calm) .. +1 (excited)
    modalities: Mapping[str, float]  # contributing modality -> age of its result in seconds
    features: tuple[float, ...] = ()  # feature-level vector: face probs, audio probs, coverage, prosody

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.prediction.to_dict(),
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "modalities": _round(dict(self.modalities)),
            "features": _round(list(self.features)),
        }


@dataclass(frozen=True)
class ButtonEvent(Event):
    """The hardware button: ``press`` or ``long_press`` (for Home Assistant device triggers)."""

    type: ClassVar[str] = "button"
    action: str


@dataclass(frozen=True)
class PrivacyEvent(Event):
    """Privacy mode toggled: while on, the camera is closed and nothing is analysed."""

    type: ClassVar[str] = "privacy"
    enabled: bool


@dataclass(frozen=True)
class ListeningEvent(Event):
    """A voice capture started (``active`` true) or ended (false), so a display can say "listening…".

    ``AudioEvent`` only arrives once the clip has been analysed; this marks the recording window.
    """

    type: ClassVar[str] = "listening"
    active: bool
    trigger: str = ""


# The parts an event may hold, each with its own ``to_dict`` (looked up when an event is serialised).
_PARTS = (Prediction, FaceEmotion, SceneEmotion, FusedEmotion)
