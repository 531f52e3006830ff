"""Vocal emotion: features (named by the manifest) -> TFLite model -> probabilities, plus the mapping
of the model's own labels onto the common 7-class space with a coverage mask.

The manifest decides everything model-specific: ``features`` (a pipeline in audio_features),
``feature_params`` (its rate and sizes), ``labels`` and ``label_map`` (model label -> common label;
a label mapped to nothing is dropped from the common-space result).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from emotiond.fusion.labels import EMOTIONS
from emotiond.models import Manifest, ModelError, TFLiteModel
from emotiond.perception.audio_features import get_pipeline


class AudioEmotionClassifier:
    def __init__(self, model: TFLiteModel) -> None:
        manifest = model.manifest
        if manifest.task != "audio_emotion":
            raise ModelError(f"{manifest.path}: task is {manifest.task!r}, expected 'audio_emotion'")
        self.model = model
        self.labels: tuple[str, ...] = manifest.labels
        if not self.labels:
            raise ModelError(f"{manifest.path}: manifest has no 'labels'")
        raw = manifest.raw
        try:
            self.pipeline = get_pipeline(str(raw.get("features", "")))
        except KeyError as exc:
            raise ModelError(f"{manifest.path}: {exc.args[0]}") from None
        self.feature_params: dict = dict(raw.get("feature_params", {}))
        self.sample_rate = int(self.feature_params.get("sample_rate", self.pipeline.default_rate))
        label_map = raw.get("label_map", {label: label for label in self.labels})
        if not isinstance(label_map, Mapping):
            raise ModelError(f"{manifest.path}: 'label_map' must be an object")
        bad = {k: v for k, v in label_map.items() if v not in EMOTIONS or k not in self.labels}
        if bad:
            raise ModelError(f"{manifest.path}: label_map entries {bad} do not map a model label onto {list(EMOTIONS)}")
        self.label_map: dict[str, str] = dict(label_map)
        # [len(labels), 7] 0/1 matrix: model label i contributes to common class j
        self._projection = np.zeros((len(self.labels), len(EMOTIONS)))
        for i, label in enumerate(self.labels):
            if label in self.label_map:
                self._projection[i, EMOTIONS.index(self.label_map[label])] = 1.0
        self.coverage = self._projection.any(axis=0)

    @classmethod
    def from_manifest(cls, path: Path | str, backend: str = "auto", num_threads: int = 1) -> AudioEmotionClassifier:
        return cls(TFLiteModel(Manifest.load(Path(path)), backend, num_threads))

    def features(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The model's input features (float, before quantisation), shaped like the model input."""
        feats = self.pipeline.fn(np.asarray(samples, dtype=np.float32), int(sample_rate), self.feature_params)
        shape = self.model.input_shape
        if int(np.prod(shape)) != feats.size:
            raise ModelError(
                f"{self.model.manifest.path}: feature pipeline {self.pipeline.name!r} gives {feats.size} values, "
                f"the model expects {list(shape)}"
            )
        return feats.reshape(shape).astype(np.float32)

    def classify(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Probabilities over ``self.labels`` for one mono clip (any rate; resampled as needed)."""
        return self.classify_features(self.features(samples, sample_rate))

    def classify_features(self, features: np.ndarray) -> np.ndarray:
        out = self.model.run(features.reshape(self.model.input_shape))[0].reshape(-1).astype(np.float64)
        out = np.clip(out, 0.0, None)
        total = out.sum()
        return out / total if total > 0 else np.full(len(self.labels), 1.0 / len(self.labels))

    def to_common(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities over EMOTIONS, coverage mask): unmapped classes get 0 and coverage False;
        the mapped mass is renormalised to 1."""
        common = np.asarray(probs, dtype=np.float64) @ self._projection
        total = common.sum()
        if total > 0:
            common = common / total
        return common, np.array(self.coverage, dtype=bool)
