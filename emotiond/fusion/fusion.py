"""Hybrid fusion of the face stream with the latest voice result (the seed's "Hybrid Fusion", fixed).

Score level, per class of the common 7-class space: a weighted mean over the modalities that know
the class: ``(wf * face + wa * f(age) * audio) / (wf + wa * f(age))`` where the audio's coverage
mask says which classes its model can express; a class the audio model cannot say keeps the face's
score (decided by the face alone). ``f(age) = max(0, 1 - age / audio_validity_s)`` fades a voice
result out linearly; at the end of the window it no longer contributes. The result is renormalised
to sum to 1: the seed applied a softmax to probabilities, which flattens them toward uniform.

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
    """Per-class weighted mean over the modalities that cover each class, renormalised; None if no input."""
    n = len(EMOTIONS)
    num, den = np.zeros(n), np.zeros(n)
    if face is not None and face_weight > 0:
        num += face_weight * np.asarray(face, np.float64)
        den += face_weight
    if audio is not None and audio_weight > 0:
        cov = np.ones(n, bool) if coverage is None else np.asarray(coverage, bool)
        num += audio_weight * cov * np.asarray(audio, np.float64)
        den += audio_weight * cov
    if not den.any():
        return None
    fused = np.divide(num, den, out=np.zeros(n), where=den > 0)
    total = fused.sum()
    return fused / total if total > 0 else None


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

    def fuse(self, event: EmotionEvent) -> FusedEmotion | None:
        c = self.config
        face = to_vector(event.scene.prediction.probabilities) if event.scene.prediction is not None else None
        audio = coverage = None
        prosody: Mapping[str, float] | None = None
        vocal_arousal: float | None = None
        modalities: dict[str, float] = {}
        wa = 0.0
        if face is not None and c.face_weight > 0:
            modalities["face"] = 0.0  # the event's own scene result
        if self._audio is not None:
            age = event.timestamp - self._audio.timestamp
            fresh = freshness(age, c.audio_validity_s)
            if fresh > 0:
                a = self._audio
                audio = to_vector(a.prediction.probabilities)
                coverage = np.array([bool((a.coverage or {}).get(e, True)) for e in EMOTIONS])
                prosody, vocal_arousal = a.prosody, a.arousal
                wa = c.audio_weight * fresh
                if wa > 0:
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
            valence, arousal = project(np.array([prediction.probabilities[e] for e in EMOTIONS]), vocal_arousal, share)
        return FusedEmotion(prediction, valence, arousal, modalities, tuple(float(v) for v in features))
