"""Face quality: can this crop be read at all? A score in 0..1 and, when it is low, why.

Why: a classifier guesses something for any crop, so a dark, blurred, tiny or strongly rolled face
would be reported as a confident emotion. Each factor maps a cheap measurement of the grey face to
0..1; the score is the weakest factor (one bad factor is enough to spoil a reading) and the reason
names it. Below ``min_quality`` the pipeline reports ``uncertain`` with that reason, unless the
reading is sure enough for how poor the view is (``FacePipeline.needed_confidence``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TOO_SMALL, TOO_DARK, LOW_CONTRAST, TOO_BLURRY, TURNED = "too_small", "too_dark", "low_contrast", "too_blurry", "turned"
_SHARPNESS_SIDE = 96  # px: sharpness is measured on the face resized to this, so it does not depend on face size


@dataclass(frozen=True)
class QualityLimits:
    """Where each factor reaches 0 (``*_bad``) and 1 (``*_good``), linear in between; and the
    exposure at which sharpness is judged (``exposure_gain``)."""

    size_bad: float = 24.0  # face side, px
    size_good: float = 48.0
    brightness_bad: float = 12.0  # mean grey level of the face, 0-255
    brightness_good: float = 40.0
    contrast_bad: float = 4.0  # grey standard deviation of the face
    contrast_good: float = 14.0
    sharpness_bad: float = 4.0  # variance of the Laplacian at _SHARPNESS_SIDE px, at a normal exposure
    sharpness_good: float = 24.0
    normal_grey: float = 100.0  # a face's mean grey in a normally exposed frame (sharpness is judged as if there)
    max_exposure_gain: float = 4.0  # a dimmer face is judged as if this much brighter, no more
    roll_good: float = 30.0  # degrees of eye-line roll (alignment levels this much)
    roll_bad: float = 50.0


@dataclass(frozen=True)
class FaceQuality:
    score: float  # 0 (unreadable) .. 1 (good)
    reason: str | None  # the weakest factor when it is below 1, else None
    factors: dict[str, float]  # each factor's 0..1 value, for debugging and benchmarks


def _ramp(value: float, bad: float, good: float) -> float:
    return float(np.clip((value - bad) / (good - bad), 0.0, 1.0))


def face_region(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The inner part of the box (the face, without background at the corners)."""
    x, y, w, h = box
    fh, fw = gray.shape[:2]
    x0, y0 = max(0, x + w // 8), max(0, y + h // 8)
    x1, y1 = min(fw, x + w - w // 8), min(fh, y + h - h // 8)
    return gray[y0:y1, x0:x1]


def exposure_gain(mean_grey: float, limits: QualityLimits) -> float:
    """How much brighter a normally exposed view of this face would be. Why: the Laplacian's
    variance falls with the square of the light, so a sharp face at a third of it looked as soft
    as a blurred one. On benchmarks/robustness.py's two portraits with a 1 px blur, quality refused
    as too_blurry 12 of 29 faces at 0.4 of the light and all 29 at 0.25, while the model read every
    one as it reads the clean face (``--sweep``); judged at a normal exposure, all 58 are read and
    agree. Darkness itself is judged by the brightness and contrast factors."""
    return min(limits.max_exposure_gain, max(1.0, limits.normal_grey / max(mean_grey, 1.0)))


def assess(gray: np.ndarray, box: tuple[int, int, int, int], roll_deg: float | None,
           limits: QualityLimits = QualityLimits()) -> FaceQuality:
    """Quality of one face in a grey frame; ``roll_deg`` None (no keypoints, e.g. Haar) is not judged."""
    region = face_region(gray, box)
    if region.size < 16:
        return FaceQuality(0.0, TOO_SMALL, {TOO_SMALL: 0.0})
    side = min(box[2], box[3])
    mean, std = cv2.meanStdDev(region)
    grey = float(mean[0, 0])
    resized = cv2.resize(region, (_SHARPNESS_SIDE, _SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    sharpness = float(cv2.Laplacian(resized, cv2.CV_32F).var()) * exposure_gain(grey, limits) ** 2
    factors = {
        TOO_SMALL: _ramp(side, limits.size_bad, limits.size_good),
        TOO_DARK: _ramp(grey, limits.brightness_bad, limits.brightness_good),
        LOW_CONTRAST: _ramp(float(std[0, 0]), limits.contrast_bad, limits.contrast_good),
        TOO_BLURRY: _ramp(sharpness, limits.sharpness_bad, limits.sharpness_good),
        TURNED: 1.0 if roll_deg is None else 1.0 - _ramp(abs(roll_deg), limits.roll_good, limits.roll_bad),
    }
    reason = min(factors, key=lambda k: factors[k])
    score = factors[reason]
    return FaceQuality(score, reason if score < 1.0 else None, factors)
