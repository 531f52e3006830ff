"""The optical-flow stream: x/y Farneback flow at evenly spaced points of the clip, summarised.

The seed feeds x/y flow from 8 evenly spaced frames to a 3D ResNet-50. We compute the same flow
fields (each between a frame and the next one, on a 320-pixel-wide grey copy) and summarise them
into motion features: speed statistics in frame widths per second (so resolution and frame rate do
not change them), the share of moving pixels (more than 0.25 px per frame on the 320-px copy), and a
magnitude-weighted 8-bin direction histogram.
Motion says how lively a scene is, not whether it is pleasant, so this stream has no valence of its
own; the fusion manifest uses it only to make a neutral reading less likely.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import cv2
import numpy as np

FLOW_WIDTH = 320
MOVING_PX = 0.25  # a pixel moving more than this per frame (on the 320-px copy) counts as moving: above
# the sub-pixel jitter Farneback reports on compressed still video, below any visible motion
DIRECTION_BINS = 8  # bin 0 is rightward motion, counting counter-clockwise (bin 2 is upward)


def flow_positions(frame_count: int, k: int) -> list[int]:
    """k evenly spaced frame indices i (each paired with i + 1), fewer when the clip is shorter."""
    last = frame_count - 2
    if last < 0 or k <= 0:
        return []
    return sorted({round(float(v)) for v in np.linspace(0, last, num=k)})


def _gray(frame_bgr: np.ndarray) -> np.ndarray:
    h, w = frame_bgr.shape[:2]
    scale = min(1.0, FLOW_WIDTH / float(w))
    gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return gray


def flow_field(a_bgr: np.ndarray, b_bgr: np.ndarray) -> tuple[np.ndarray, int]:
    """Farneback flow (H, W, 2) from a to b in pixels of the grey copy, and that copy's width."""
    ga, gb = _gray(a_bgr), _gray(b_bgr)
    # OpenCV's stubs do not allow None for the optional output array; OpenCV itself does
    flow = cv2.calcOpticalFlowFarneback(
        ga, gb, cast(np.ndarray, None), pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return flow, ga.shape[1]


def summarise(flows: Sequence[tuple[np.ndarray, int]], fps: float) -> dict[str, float]:
    """Motion features over all flow fields (speeds in frame widths per second)."""
    speeds, moving, per_pair, hist = [], [], [], np.zeros(DIRECTION_BINS)
    for flow, width in flows:
        dx, dy = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
        pixels = np.hypot(dx, dy)
        speed = pixels / width * fps
        moving.append(pixels.reshape(-1) > MOVING_PX * width / FLOW_WIDTH)
        angle = np.mod(np.arctan2(-dy, dx), 2 * np.pi)  # image y points down; make "up" positive
        bins = np.minimum((angle / (2 * np.pi) * DIRECTION_BINS + 0.5).astype(int) % DIRECTION_BINS,
                          DIRECTION_BINS - 1)
        hist += np.bincount(bins.reshape(-1), weights=speed.reshape(-1), minlength=DIRECTION_BINS)
        speeds.append(speed.reshape(-1))
        per_pair.append(float(speed.mean()))
    allspeed = np.concatenate(speeds)
    total = hist.sum()
    features = {
        "flow.speed_mean": float(allspeed.mean()),
        "flow.speed_p90": float(np.percentile(allspeed, 90)),
        "flow.speed_std_over_time": float(np.std(per_pair)),
        "flow.moving": float(np.concatenate(moving).mean()),
    }
    for i in range(DIRECTION_BINS):
        features[f"flow.dir_{i}"] = float(hist[i] / total) if total > 0 else 0.0
    return features


def flow_stream(pairs: Sequence[tuple[np.ndarray, np.ndarray]], fps: float) -> dict[str, Any]:
    """The stream dict for analyze; pairs are (frame, next frame)."""
    if not pairs:
        empty = {"flow.speed_mean": 0.0, "flow.speed_p90": 0.0, "flow.speed_std_over_time": 0.0, "flow.moving": 0.0}
        empty.update({f"flow.dir_{i}": 0.0 for i in range(DIRECTION_BINS)})
        return {"available": False, "reason": "the clip has fewer than 2 frames", "features": empty,
                "sentiment": None, "valence": None, "pairs": 0}
    features = summarise([flow_field(a, b) for a, b in pairs], fps)
    return {"available": True, "features": features, "sentiment": None, "valence": None,
            "arousal": features["flow.moving"], "pairs": len(pairs)}
