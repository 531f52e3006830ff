"""Hybrid fusion of the face stream with the latest voice result (the seed's "Hybrid Fusion", fixed).

Score level, on the common 7-class space: a modality speaks only about the classes it covers. The
voice model's coverage mask names the classes it can say (C). The face's mass on the classes the
voice cannot say is kept exactly; within C the split is the weighted mean of the face's and the
voice's distributions, each conditioned on C, scaled back to the face's mass on C::

    fused[~C] = face[~C]
    fused[C]  = face(C) * (wf * face[C] / face(C) + wa * audio[C] / audio(C)) / (wf + wa)

With a voice model covering all 7 classes this is the seed's plain ``(wf * face + wa * audio) /
(wf + wa)``. ``wa`` is ``audio_weight`` for a validated voice model and ``unvalidated_audio_weight``
(default 0) otherwise, times ``f(age) = max(0, 1 - age / audio_validity_s)``, which fades a voice
result out linearly. Without a face, the voice's distribution is the result (if its weight is > 0).

Arousal: the face's circumplex arousal (of the fused distribution) and the voice's arousal index
(prosody vs this device's baseline, as ``tanh(index / 2)``) are mixed with ``face_weight`` and
``vocal_arousal_weight * f(age)``; valence is the circumplex valence of the fused distribution, so
an unvalidated voice model never moves it.

Feature level: the seed concatenated the two modalities and then dropped the vector. Here it is
kept in every fused event (``FusedEmotion.features``, order in ``FEATURE_NAMES``) and projected to
valence/arousal (fusion.circumplex), or fed to an optional trained fusion model.

Temporal encoding: the fused distribution is smoothed (rolling mean or EMA, as the face stream)
and a top probability below ``uncertain_below`` reads ``uncertain``.

Face-only operation is the normal state: until a voice clip arrives (and after it expires) the
fused result is the face result, re-smoothed, with ``modalities = {"face": 0.0}``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from emotiond.config import Config, FusionConfig
from emotiond.events import AudioEvent, EmotionEvent, Event, FusedEmotion
from emotiond.fusion.circumplex import FusionModel, project
from emotiond.fusion.labels import EMOTIONS, to_vector
from emotiond.fusion.smoothing import decide, make_smoother

log = logging.getLogger(__name__)

PROSODY_CUES = ("pitch_hz", "pitch_range_hz", "loudness_db", "speech_rate", "voiced_ratio")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"face_{e}" for e in EMOTIONS),
    *(f"audio_{e}" for e in EMOTIONS),
    *(f"coverage_{e}" for e in EMOTIONS),
    *PROSODY_CUES,
    "vocal_arousal",
    "audio_share",
)


def freshness(age: float, validity: float) -> float:
    """1 for a brand-new voice result, falling linearly to 0 at ``validity`` seconds."""
    return float(np.clip(1.0 - max(age, 0.0) / validity, 0.0, 1.0))


def fuse_scores(face: np.ndarray | None, audio: np.ndarray | None, coverage: np.ndarray | None,
                face_weight: float, audio_weight: float) -> np.ndarray | None:
    """Coverage-respecting weighted mean (see the module docstring); None if there is no input.

    The face's mass on classes the voice does not cover is never changed; if the face puts no mass
    on the covered classes, the voice has nothing to redistribute and the face is returned.
    """
    n = len(EMOTIONS)
    f = None if face is None or face_weight <= 0 else _normalised(np.asarray(face, np.float64))
    a = None if audio is None or audio_weight <= 0 else np.asarray(audio, np.float64)
    cov = np.ones(n, bool) if coverage is None else np.asarray(coverage, bool)
    if a is not None:
        a = np.where(cov, np.clip(a, 0.0, None), 0.0)
        if a.sum() <= 0:
            a = None
    if f is None:
        return None if a is None else a / a.sum()
    if a is None:
        return f
    mass = float(f[cov].sum())
    if mass <= 0:
        return f
    fused = f.copy()
    fused[cov] = mass * (face_weight * f[cov] / mass + audio_weight * a[cov] / a.sum()) / (face_weight + audio_weight)
    return fused


def _normalised(p: np.ndarray) -> np.ndarray | None:
    p = np.clip(p, 0.0, None)
    total = p.sum()
    return p / total if total > 0 else None


def mix_arousal(face_arousal: float, vocal_arousal: float | None, face_weight: float, vocal_weight: float) -> float:
    """Weighted mean of the face's circumplex arousal and the voice's ``tanh(index / 2)``, in [-1, 1]."""
    if vocal_arousal is None or vocal_weight <= 0:
        return float(np.clip(face_arousal, -1.0, 1.0))
    voice = float(np.tanh(vocal_arousal / 2.0))
    return float(np.clip((face_weight * face_arousal + vocal_weight * voice) / (face_weight + vocal_weight), -1.0, 1.0))


def feature_vector(face: np.ndarray | None, audio: np.ndarray | None, coverage: np.ndarray | None,
                   prosody: Mapping[str, float] | None, vocal_arousal: float | None, audio_share: float) -> np.ndarray:
    """The feature-level vector (FEATURE_NAMES order); absent parts are zeros."""
    n = len(EMOTIONS)
    cues = [float((prosody or {}).get(k, 0.0)) for k in PROSODY_CUES]
    return np.concatenate([
        np.zeros(n) if face is None else np.asarray(face, np.float64),
        np.zeros(n) if audio is None else np.asarray(audio, np.float64),
        np.zeros(n) if coverage is None else np.asarray(coverage, np.float64),
        cues,
        [0.0 if vocal_arousal is None else float(vocal_arousal), float(audio_share)],
    ])


class FusionStage:
    """Daemon stage: remembers the latest usable AudioEvent and fills ``EmotionEvent.fused``."""

    def __init__(self, config: FusionConfig, model_path: Path | None = None, backend: str = "auto", num_threads: int = 1) -> None:
        self.config = config
        self._smoother = make_smoother(config.smoothing, config.history, config.ema_alpha)
        self._audio: AudioEvent | None = None
        self.model = FusionModel.from_manifest(model_path, len(FEATURE_NAMES), backend, num_threads) if model_path else None

    @classmethod
    def from_config(cls, config: Config) -> FusionStage:
        path = config.models_dir / config.fusion.model if config.fusion.model else None
        return cls(config.fusion, path, config.models.backend, config.models.num_threads)

    def __call__(self, event: Event) -> list[Event]:
        if isinstance(event, AudioEvent):
            if event.status == "ok" and event.prediction is not None:
                self._audio = event
            return [event]
        if isinstance(event, EmotionEvent):
            return [dataclasses.replace(event, fused=self.fuse(event))]
        return [event]

    def categorical_weight(self, audio: AudioEvent) -> float:
        """The voice's unfaded categorical weight: full for a validated model, else the (default 0) unvalidated one."""
        return self.config.audio_weight if audio.validated else self.config.unvalidated_audio_weight

    def fuse(self, event: EmotionEvent) -> FusedEmotion | None:
        c = self.config
        face = to_vector(event.scene.prediction.probabilities) if event.scene.prediction is not None else None
        audio = coverage = None
        prosody: Mapping[str, float] | None = None
        vocal_arousal: float | None = None
        modalities: dict[str, float] = {}
        wa = wv = 0.0
        if face is not None and c.face_weight > 0:
            modalities["face"] = 0.0  # the event's own scene result
        if self._audio is not None:
            age = event.age_since(self._audio)  # monotonic in the daemon: immune to NTP steps
            fresh = freshness(age, c.audio_validity_s)
            if fresh > 0:
                a = self._audio
                if a.prediction is not None:
                    audio = to_vector(a.prediction.probabilities)
                    coverage = np.array([bool((a.coverage or {}).get(e, True)) for e in EMOTIONS])
                    wa = self.categorical_weight(a) * fresh
                prosody, vocal_arousal = a.prosody, a.arousal
                if vocal_arousal is not None:
                    wv = c.vocal_arousal_weight * fresh
                if wa > 0 or wv > 0:
                    modalities["audio"] = max(age, 0.0)
            else:
                self._audio = None  # expired: back to face-only
        # a scene of poorly seen faces (dark, blurred, ...) counts for less against the voice
        quality = event.scene.quality if event.scene.quality is not None else 1.0
        wf = c.face_weight * quality if face is not None else 0.0
        fused = fuse_scores(face, audio, coverage, wf, wa)
        if fused is None:
            self._smoother = make_smoother(c.smoothing, c.history, c.ema_alpha)
            return None
        share = wa / (wf + wa) if wf + wa > 0 else 0.0
        features = feature_vector(face, audio, coverage, prosody, vocal_arousal, share)
        smoothed = self._smoother.update(fused)
        prediction = decide(EMOTIONS, smoothed, c.uncertain_below)
        if self.model is not None:
            valence, arousal = self.model(features)
        else:
            valence, face_arousal = project(np.array([prediction.probabilities[e] for e in EMOTIONS]))
            arousal = mix_arousal(face_arousal, vocal_arousal, wf, wv)
        return FusedEmotion(prediction, valence, arousal, modalities, tuple(float(v) for v in features))
