"""One voice clip -> AudioEvent: VAD, then (if there is speech) features -> model -> common space,
and prosody -> arousal index. Pure: samples in, event out (used by the daemon's audio capture,
``emotiond classify-audio`` and the offline analysis)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotiond.config import Config
from emotiond.events import AudioEvent
from emotiond.fusion.labels import EMOTIONS, to_mapping
from emotiond.fusion.smoothing import decide
from emotiond.perception.audio_emotion import AudioEmotionClassifier
from emotiond.perception.prosody import ArousalBaseline, analyse_prosody
from emotiond.perception.vad import VadResult, VoiceActivityDetector

MIN_SAMPLES_S = 0.1


@dataclass
class AudioAnalyzer:
    classifier: AudioEmotionClassifier
    vad: VoiceActivityDetector
    baseline: ArousalBaseline | None = None
    uncertain_below: float = 0.4
    last_vad: VadResult | None = None

    @classmethod
    def from_config(cls, config: Config, baseline: bool = True) -> AudioAnalyzer:
        a = config.audio
        classifier = AudioEmotionClassifier.from_manifest(
            config.models_dir / config.models.audio_emotion, config.models.backend, config.models.num_threads)
        vad = VoiceActivityDetector(a.vad_aggressiveness, a.min_voiced_ratio)
        base = ArousalBaseline(config.device_id, a.baseline_size, a.baseline_min_clips,
                               Path(a.baseline_file) if a.baseline_file else None) if baseline else None
        return cls(classifier, vad, base, a.uncertain_below)

    def analyse(self, samples: np.ndarray, sample_rate: int, trigger: str, timestamp: float | None = None) -> AudioEvent:
        ts = time.time() if timestamp is None else timestamp
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        duration = len(samples) / float(sample_rate)
        if duration < MIN_SAMPLES_S or not np.isfinite(samples).all():
            why = "clip shorter than 0.1 s" if duration < MIN_SAMPLES_S else "clip contains NaN or infinite samples"
            return AudioEvent(trigger, "error", duration, error=why, timestamp=ts)
        vad = self.vad.analyse(samples, sample_rate)
        self.last_vad = vad
        prosody = analyse_prosody(samples, sample_rate)
        validated = self.classifier.model.manifest.validated
        if not vad.speech:
            return AudioEvent(trigger, "no_speech", duration, prosody=prosody.to_dict(), validated=validated, timestamp=ts)
        probs = self.classifier.classify(samples, sample_rate)
        common, coverage = self.classifier.to_common(probs)
        arousal = self.baseline.score(prosody) if self.baseline is not None else None
        return AudioEvent(
            trigger, "ok", duration,
            prediction=decide(EMOTIONS, common, self.uncertain_below),
            model_probabilities=to_mapping(self.classifier.labels, probs),
            coverage={e: bool(c) for e, c in zip(EMOTIONS, coverage)},
            prosody=prosody.to_dict(),
            arousal=arousal,
            validated=validated,
            timestamp=ts,
        )
