"""Per-frame face observations (detector + expression model) and the face stream over keyframes.

A sampled frame becomes a ``FrameObs``: every detected face with its expression probabilities and
sentiment, the frame's saliency map, and the frame sentiment used to score keyframes (faces weighted
by detector confidence and by how salient their region is). The face stream then keeps up to
``max_faces`` faces across the keyframes (seed: 16 faces per video) and aggregates them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotiond.analyze.saliency import box_mass, box_ratio, spectral_residual
from emotiond.analyze.sentiment import (
    NEUTRAL,
    SENTIMENTS,
    intensity,
    label_of,
    to_sentiment,
    valence,
)
from emotiond.perception.expression import ExpressionClassifier
from emotiond.perception.face_detect import FaceDetector, clip_box, levelling_roll


@dataclass(frozen=True)
class FaceObs:
    box: tuple[int, int, int, int]
    score: float  # detector confidence
    probs: np.ndarray  # expression probabilities in the classifier's label order
    sentiment: np.ndarray  # positive, neutral, negative
    saliency_ratio: float  # saliency density in the box relative to the frame average

    @property
    def weight(self) -> float:
        """Weight in the frame sentiment: confident faces in salient regions count more."""
        return self.score * self.saliency_ratio


@dataclass(frozen=True)
class FrameObs:
    index: int  # frame index in the clip
    time: float  # seconds
    faces: tuple[FaceObs, ...]
    sentiment: np.ndarray  # face sentiment of the frame (neutral when no face)
    face_share: float  # share of the frame's saliency mass inside face boxes, [0, 1]
    diff: float  # mean absolute grey change from the previous decoded frame, [0, 1]

    @property
    def score(self) -> float:
        """Keyframe score: sentiment intensity (0 for a frame without faces)."""
        return intensity(self.sentiment) if self.faces else 0.0


def frame_sentiment(faces: Sequence[FaceObs]) -> np.ndarray:
    """Weighted mean of the faces' sentiments (weights ``FaceObs.weight``); neutral when no face."""
    weights = np.array([f.weight for f in faces], dtype=np.float64)
    if len(faces) == 0 or weights.sum() <= 0:
        return NEUTRAL.copy()
    return (weights[:, None] * np.stack([f.sentiment for f in faces])).sum(axis=0) / weights.sum()


def observe_frame(index: int, time: float, frame_bgr: np.ndarray, diff: float, detector: FaceDetector,
                  classifier: ExpressionClassifier, zoomer: object | None = None) -> FrameObs:
    """Detect and classify every face, weight them by saliency, and sum up the frame. Each crop is
    levelled by the face's eye line as the daemon's are (when the manifest asks for ``align_roll``):
    measured in a view zoomed on the face when ``zoomer`` (a BlazeFace detector, with
    ``expression.zoom_align``) is given, since the whole-frame keypoints of a small face are tens of
    degrees off; else the detection's own (Haar: none, the crop stays upright)."""
    height, width = frame_bgr.shape[:2]
    saliency = spectral_residual(frame_bgr)
    faces = []
    for det in detector.detect(frame_bgr):
        box = clip_box(det.box, width, height)
        if box is None:
            continue
        roll = levelling_roll(zoomer, frame_bgr, det.box, det.roll)
        probs = np.asarray(classifier.classify(frame_bgr, box, roll), dtype=np.float64)
        faces.append(FaceObs(box, float(det.score), probs, to_sentiment(classifier.labels, probs),
                             box_ratio(saliency, box, width, height)))
    share = min(1.0, sum(box_mass(saliency, f.box, width, height) for f in faces))
    return FrameObs(index, time, tuple(faces), frame_sentiment(faces), share, diff)


def pick_faces(frames: Sequence[FrameObs], max_faces: int) -> list[tuple[FrameObs, FaceObs]]:
    """Up to max_faces faces across the given frames, largest-confidence-times-area first."""
    every = [(fr, f) for fr in frames for f in fr.faces]
    every.sort(key=lambda p: -(p[1].score * p[1].box[2] * p[1].box[3]))
    return every[:max_faces]


def face_stream(frames: Sequence[FrameObs], labels: Sequence[str], max_faces: int) -> dict[str, Any]:
    """The face stream: features, sentiment and valence from up to max_faces keyframe faces."""
    chosen = pick_faces(frames, max_faces)
    features: dict[str, float] = {"faces.count": len(chosen) / float(max_faces)}
    if not chosen:
        features.update({f"faces.p_{label}": 0.0 for label in labels})
        features.update({"faces.pos": 0.0, "faces.neu": 0.0, "faces.neg": 0.0, "faces.agreement": 0.0,
                         "faces.detector_score": 0.0})
        return {"available": False, "reason": "no faces found on the keyframes", "features": features,
                "sentiment": None, "valence": None, "faces": []}
    probs = np.mean([f.probs for _, f in chosen], axis=0)
    sentiment = np.mean([f.sentiment for _, f in chosen], axis=0)
    votes = Counter(label_of(f.sentiment) for _, f in chosen)
    features.update({f"faces.p_{label}": float(p) for label, p in zip(labels, probs)})
    features.update({"faces.pos": float(sentiment[0]), "faces.neu": float(sentiment[1]),
                     "faces.neg": float(sentiment[2]),
                     "faces.agreement": votes.most_common(1)[0][1] / len(chosen),
                     "faces.detector_score": float(np.mean([f.score for _, f in chosen]))})
    faces = [{
        "frame": fr.index, "time": round(fr.time, 3), "box": list(f.box), "detector_score": round(f.score, 4),
        "label": labels[int(np.argmax(f.probs))],
        "probabilities": {label: round(float(p), 4) for label, p in zip(labels, f.probs)},
        "sentiment": {s: round(float(v), 4) for s, v in zip(SENTIMENTS, f.sentiment)},
        "saliency_ratio": round(f.saliency_ratio, 3),
    } for fr, f in chosen]
    return {"available": True, "features": features, "sentiment": sentiment, "valence": valence(sentiment),
            "faces": faces}
