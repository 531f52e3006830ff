"""Fusing the four streams into group sentiment, two ways, both reported.

Feature level (seed 3.4): the streams' named feature vectors are concatenated and mapped by one
linear layer + softmax to positive / neutral / negative. The seed trains that layer; no labelled
group-emotion clips were available here, so ``models/analyze_fusion.json`` holds a transparent,
hand-set rule (``"trained": false``): each stream's sentiment masses vote for their own class with the
stream's weight, motion (share of moving pixels) raises both polar classes equally, every other
feature has weight 0. Swapping in trained weights means replacing that JSON, not code.

Score level: the per-stream sentiment distributions averaged with the configurable stream weights
(config ``[analyze]``), over the streams that produced one.

The voice follows the daemon's rule in both: an unvalidated voice model's sentiment is reported but
its stream weight (and its sentiment features) are scaled by ``unvalidated_audio_weight /
audio_weight`` of ``[fusion]`` (0 by default), so it sets no valence (see analyze.audio).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emotiond.analyze.sentiment import SENTIMENTS, valence
from emotiond.models import ModelError


@dataclass(frozen=True)
class FusionModel:
    path: Path
    classes: tuple[str, ...]
    weights: Mapping[str, Mapping[str, float]]  # class -> feature name -> weight (absent: 0)
    bias: Mapping[str, float]
    trained: bool
    raw: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> FusionModel:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ModelError(f"{path}: fusion manifest not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: fusion manifest is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("task") != "analyze_fusion":
            raise ModelError(f"{path}: not an analyze fusion manifest (task must be 'analyze_fusion')")
        classes = tuple(data.get("classes", ()))
        if classes != SENTIMENTS:
            raise ModelError(f"{path}: 'classes' must be {list(SENTIMENTS)}, got {list(classes)}")
        weights = data.get("weights", {})
        bias = data.get("bias", {})
        ok = isinstance(weights, dict) and isinstance(bias, dict) and all(
            c in SENTIMENTS and isinstance(w, dict) and all(isinstance(v, (int, float)) for v in w.values())
            for c, w in weights.items()) and all(isinstance(v, (int, float)) for v in bias.values())
        if not ok:
            raise ModelError(f"{path}: 'weights' must map each class to {{feature: number}} and 'bias' class to number")
        return cls(Path(path), classes, {c: dict(w) for c, w in weights.items()},
                   {c: float(bias.get(c, 0.0)) for c in classes}, bool(data.get("trained", False)), data)

    def matrix(self, names: list[str]) -> np.ndarray:
        """The (classes, features) weight matrix for a feature vector with these names."""
        return np.array([[float(self.weights.get(c, {}).get(n, 0.0)) for n in names] for c in self.classes])

    def unknown_features(self, names: list[str]) -> list[str]:
        """Weighted feature names the vector does not have (a manifest/code mismatch worth a warning)."""
        known = set(names)
        return sorted({n for w in self.weights.values() for n in w if n not in known})


def concatenate(streams: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], np.ndarray]:
    """The feature-level vector: every stream's named features in stream order."""
    names: list[str] = []
    values: list[float] = []
    for stream in streams.values():
        for name, value in stream["features"].items():
            names.append(name)
            values.append(float(value))
    return names, np.array(values, dtype=np.float64)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def feature_level(model: FusionModel, streams: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate, apply the linear layer, softmax; plus each stream's contribution to each logit."""
    names, x = concatenate(streams)
    w = model.matrix(names)
    bias = np.array([model.bias[c] for c in model.classes])
    logits = w @ x + bias
    probs = softmax(logits)
    contributions: dict[str, dict[str, float]] = {}
    offset = 0
    for stream_name, stream in streams.items():
        k = len(stream["features"])
        part = w[:, offset:offset + k] @ x[offset:offset + k]
        contributions[stream_name] = {c: round(float(v), 4) for c, v in zip(model.classes, part)}
        offset += k
    return {
        "method": "feature-level: concatenated stream features -> linear layer -> softmax",
        "model": str(model.path.name), "trained": model.trained,
        "feature_count": len(names),
        "logits": {c: round(float(v), 4) for c, v in zip(model.classes, logits)},
        "bias": {c: round(float(v), 4) for c, v in zip(model.classes, bias)},
        "probabilities": {c: round(float(p), 4) for c, p in zip(model.classes, probs)},
        "label": model.classes[int(np.argmax(probs))],
        "valence": round(valence(probs), 4),
        "contributions": contributions,
    }


def score_level(streams: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float]) -> dict[str, Any]:
    """Weighted mean of the per-stream sentiment distributions (streams without one are skipped)."""
    used = {name: float(weights.get(name, 0.0)) for name, s in streams.items()
            if s.get("sentiment") is not None and float(weights.get(name, 0.0)) > 0}
    total = sum(used.values())
    if total <= 0:
        return {"method": "score-level: weighted mean of per-stream sentiment", "available": False,
                "reason": "no stream with a weight produced a sentiment", "weights_used": {},
                "probabilities": None, "label": None, "valence": None}
    probs = np.sum([w * np.asarray(streams[n]["sentiment"], dtype=np.float64) for n, w in used.items()], axis=0) / total
    return {
        "method": "score-level: weighted mean of per-stream sentiment", "available": True,
        "weights_used": {n: round(w / total, 4) for n, w in used.items()},
        "probabilities": {c: round(float(p), 4) for c, p in zip(SENTIMENTS, probs)},
        "label": SENTIMENTS[int(np.argmax(probs))],
        "valence": round(valence(probs), 4),
    }
