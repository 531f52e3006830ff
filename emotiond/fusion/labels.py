"""The common 7-class label space (FER2013 order) that face, audio and fused results share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def to_mapping(labels: Sequence[str], probs: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probs)}


def to_vector(probabilities: Mapping[str, float], labels: Sequence[str] = EMOTIONS) -> np.ndarray:
    return np.array([float(probabilities.get(label, 0.0)) for label in labels], dtype=np.float64)
