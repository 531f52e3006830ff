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


def _standardisation(manifest: Manifest) -> tuple[np.ndarray, np.ndarray] | None:
    """``preprocessing.standardize`` {mean, std}: per-feature (x - mean) / std before int8 quantisation, so one
    input scale suits features whose raw ranges differ by orders of magnitude. None when absent."""
    block = manifest.preprocessing.get("standardize")
    if block is None:
        return None
    try:
        mean = np.asarray(block["mean"], dtype=np.float64).reshape(-1)
        std = np.asarray(block["std"], dtype=np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{manifest.path}: preprocessing.standardize needs numeric 'mean' and 'std' lists") from None
    if mean.size == 0 or mean.shape != std.shape or not (std > 0).all() or not np.isfinite(mean).all():
        raise ModelError(f"{manifest.path}: preprocessing.standardize needs equal-length 'mean' and positive 'std'")
    return mean, std


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
        self.standardize = _standardisation(manifest)
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
        """The pipeline's raw features (before standardisation and quantisation), shaped like the model input."""
        feats = self.pipeline.fn(np.asarray(samples, dtype=np.float32), int(sample_rate), self.feature_params)
        if self.standardize is not None and feats.shape[-1] != self.standardize[0].size \
                and feats.size != self.standardize[0].size:
            raise ModelError(f"{self.model.manifest.path}: 'standardize' has {self.standardize[0].size} values, "
                             f"the features are {list(feats.shape)}")
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

    def standardised(self, features: np.ndarray) -> np.ndarray:
        """The model's input: the features standardised per feature when the manifest asks for it."""
        if self.standardize is None:
            return features
        mean, std = self.standardize
        flat = np.asarray(features, np.float64).reshape(-1, mean.size) if features.shape[-1] != mean.size \
            else np.asarray(features, np.float64)
        return ((flat - mean) / std).reshape(features.shape).astype(np.float32)

    def classify_features(self, features: np.ndarray) -> np.ndarray:
        """Probabilities for raw pipeline features (as returned by ``features``)."""
        out = self.model.run(self.standardised(features).reshape(self.model.input_shape))[0].reshape(-1).astype(np.float64)
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
