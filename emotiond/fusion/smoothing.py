"""Temporal smoothing of probability vectors (the seed's "temporal encoding").

A rolling mean over the last N results (seed: deque of 5) or an exponential moving average. Both
keep the output a probability distribution; a decision below ``uncertain_below`` is reported as
``uncertain`` instead of a guess.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from emotiond.events import UNCERTAIN, Prediction
from emotiond.fusion.labels import to_mapping


class Smoother(Protocol):
    def update(self, probs: np.ndarray) -> np.ndarray: ...


class RollingMean:
    def __init__(self, history: int) -> None:
        self._buf: deque[np.ndarray] = deque(maxlen=history)

    def update(self, probs: np.ndarray) -> np.ndarray:
        self._buf.append(np.asarray(probs, dtype=np.float64))
        return np.mean(self._buf, axis=0)


class ExponentialAverage:
    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self._state: np.ndarray | None = None

    def update(self, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float64)
        self._state = p if self._state is None else self.alpha * p + (1.0 - self.alpha) * self._state
        return self._state


def make_smoother(kind: str, history: int, alpha: float) -> Smoother:
    return ExponentialAverage(alpha) if kind == "ema" else RollingMean(history)


def decide(labels: Sequence[str], probs: np.ndarray, uncertain_below: float) -> Prediction:
    """Renormalise (never softmax probabilities) and pick the top label, or ``uncertain``."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, None)
    total = p.sum()
    p = p / total if total > 0 else np.full(len(labels), 1.0 / len(labels))
    top = int(np.argmax(p))
    confidence = float(p[top])
    label = labels[top] if confidence >= uncertain_below else UNCERTAIN
    return Prediction(to_mapping(labels, p), label, confidence)
