"""The scene (visual) stream: whole-frame descriptors of the keyframes, weighted toward salient regions.

The seed runs a 3D ResNet-101 with spatial and channel attention over the keyframes. Here each
keyframe gives (a) its face sentiment, counted in proportion to the share of the frame's saliency that
falls on faces — a frame whose salient content is not faces says little about the group — and (b)
global image statistics (brightness, contrast, saturation, colourfulness, warmth, edge density),
each averaged with the saliency map as spatial weights. We have no model that turns image statistics
into sentiment, so they are reported and carried in the feature vector but the shipped fusion
manifest gives them weight 0 (see docs/analyze.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from emotiond.analyze.saliency import spectral_residual, upsample
from emotiond.analyze.sentiment import valence

STAT_WIDTH = 160  # statistics are computed on a small copy: global descriptors need no detail
STATS: tuple[str, ...] = ("brightness", "contrast", "saturation", "colourfulness", "warmth", "edges",
                          "saliency_spread")


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    return float((x * w).sum())


def _wstd(x: np.ndarray, w: np.ndarray) -> float:
    m = _wmean(x, w)
    return float(np.sqrt(max(0.0, _wmean((x - m) ** 2, w))))


def image_stats(frame_bgr: np.ndarray, saliency: np.ndarray | None = None) -> dict[str, float]:
    """Saliency-weighted global descriptors, each scaled to about [0, 1] (warmth to [-1, 1])."""
    h, w = frame_bgr.shape[:2]
    scale = min(1.0, STAT_WIDTH / float(w))
    small = cv2.resize(frame_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    sal = spectral_residual(frame_bgr) if saliency is None else saliency
    weights = upsample(sal, small.shape[1], small.shape[0])
    b, g, r = (small[..., i].astype(np.float64) / 255.0 for i in range(3))
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    rg, yb = r - g, 0.5 * (r + g) - b
    # Hasler & Suesstrunk (2003) colourfulness, with saliency weights in place of plain means
    colourful = np.hypot(_wstd(rg, weights), _wstd(yb, weights)) + 0.3 * np.hypot(_wmean(rg, weights), _wmean(yb, weights))
    edges = cv2.Canny(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), 100, 200) > 0
    p = sal.reshape(-1)
    p = p[p > 0]
    spread = float(-(p * np.log(p)).sum() / np.log(sal.size))  # 1: saliency everywhere, 0: one spot
    return {
        "brightness": _wmean(luma, weights),
        "contrast": _wstd(luma, weights),
        "saturation": _wmean(hsv[..., 1].astype(np.float64) / 255.0, weights),
        "colourfulness": float(colourful),
        "warmth": _wmean(r - b, weights),
        "edges": _wmean(edges.astype(np.float64), weights),
        "saliency_spread": spread,
    }


def scene_stream(sentiments: Sequence[np.ndarray], face_shares: Sequence[float],
                 stats: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Aggregate keyframes: sentiment weighted by each frame's face share of saliency; mean stats."""
    shares = np.asarray(face_shares, dtype=np.float64)
    features: dict[str, float] = {"scene.face_share": float(shares.mean()) if len(shares) else 0.0}
    for name in STATS:
        features[f"scene.{name}"] = float(np.mean([s[name] for s in stats])) if stats else 0.0
    if len(shares) == 0 or shares.sum() <= 0:
        features.update({"scene.pos": 0.0, "scene.neu": 0.0, "scene.neg": 0.0})
        return {"available": False, "reason": "no keyframe shows a face in a salient region",
                "features": features, "sentiment": None, "valence": None}
    sentiment = (shares[:, None] * np.stack(sentiments)).sum(axis=0) / shares.sum()
    features.update({"scene.pos": float(sentiment[0]), "scene.neu": float(sentiment[1]),
                     "scene.neg": float(sentiment[2])})
    return {"available": True, "features": features, "sentiment": sentiment, "valence": valence(sentiment)}
