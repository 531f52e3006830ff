"""Valence and arousal from class probabilities (Russell's circumplex) plus the vocal arousal index.

COORDINATES places each of the 7 classes on the valence (x) / arousal (y) plane, both in [-1, 1].
They are our reading of where these words fall on Russell's (1980) circumplex diagram (quadrants
and rough angles: happy pleasant and somewhat aroused, surprise highly aroused and mildly pleasant,
fear and anger aroused and unpleasant, disgust unpleasant and moderately aroused, sadness
unpleasant and deactivated, neutral at the origin). They are a convention for turning a
distribution into a point, not a measurement, and not fitted to data.

The projection is the probability-weighted mean of these points; when a voice clip has an arousal
index (see perception.prosody), the arousal axis moves toward ``tanh(index / 2)`` by the audio's
current fusion weight share. ``FusionModel`` lets a trained model (a TFLite file with a manifest of
task ``fusion_va`` taking the feature vector and returning [valence, arousal]) replace this
projection; none is trained or shipped with emotiond.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotiond.fusion.labels import EMOTIONS
from emotiond.models import Manifest, ModelError, TFLiteModel

COORDINATES: dict[str, tuple[float, float]] = {
    "angry": (-0.6, 0.7),
    "disgust": (-0.7, 0.3),
    "fear": (-0.6, 0.8),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.5),
    "surprise": (0.2, 0.85),
    "neutral": (0.0, 0.0),
}
_XY = np.array([COORDINATES[e] for e in EMOTIONS])


def project(probs: np.ndarray, vocal_arousal: float | None = None, vocal_share: float = 0.0) -> tuple[float, float]:
    """(valence, arousal) in [-1, 1] for a distribution over EMOTIONS.

    ``vocal_share`` (0..1) is how much of the arousal comes from the voice's arousal index
    (the fusion stage passes the audio's faded weight share).
    """
    p = np.asarray(probs, dtype=np.float64)
    total = p.sum()
    p = p / total if total > 0 else p
    valence, arousal = (p @ _XY).tolist()
    if vocal_arousal is not None and vocal_share > 0:
        share = float(np.clip(vocal_share, 0.0, 1.0))
        arousal = (1.0 - share) * arousal + share * float(np.tanh(vocal_arousal / 2.0))
    return float(np.clip(valence, -1, 1)), float(np.clip(arousal, -1, 1))


class FusionModel:
    """An optional trained projection: feature vector -> (valence, arousal). None ships with emotiond."""

    def __init__(self, model: TFLiteModel, n_features: int) -> None:
        manifest = model.manifest
        if manifest.task != "fusion_va":
            raise ModelError(f"{manifest.path}: task is {manifest.task!r}, expected 'fusion_va'")
        if int(np.prod(model.input_shape)) != n_features:
            raise ModelError(f"{manifest.path}: model takes {list(model.input_shape)} inputs, "
                             f"the fusion feature vector has {n_features}")
        self.model = model

    @classmethod
    def from_manifest(cls, path: Path, n_features: int, backend: str = "auto", num_threads: int = 1) -> FusionModel:
        return cls(TFLiteModel(Manifest.load(path), backend, num_threads), n_features)

    def __call__(self, features: np.ndarray) -> tuple[float, float]:
        out = self.model.run(np.asarray(features, np.float32).reshape(self.model.input_shape))[0].reshape(-1)
        if out.size < 2:
            raise ModelError(f"{self.model.manifest.path}: expected 2 outputs (valence, arousal), got {out.size}")
        return float(np.clip(out[0], -1, 1)), float(np.clip(out[1], -1, 1))
