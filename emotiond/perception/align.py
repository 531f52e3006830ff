"""Face alignment: cut a square face crop with its eye line made level.

Why: the expression model was trained on upright faces; a head rolled by 15 degrees moves the
mouth and brows to where the model expects other things. BlazeFace's eye keypoints give the roll;
the crop is rotated by it around the face centre. Haar gives no keypoints, so its faces are
cropped upright as they are (roll unknown, not corrected and not judged by quality).
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_ROLL_DEG = 2.0  # below this the plain crop is used: rotating would only resample the pixels


def square_crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float, size: tuple[int, int],
                roll_deg: float | None = None) -> np.ndarray:
    """The square around the box centre (side = max(w, h) * (1 + 2 * margin)), resized to ``size``
    (width, height), rotated by ``roll_deg`` so the eyes are level."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    fh, fw = image.shape[:2]
    if roll_deg is None or abs(roll_deg) < MIN_ROLL_DEG:
        x0, y0 = max(0, int(round(cx - side / 2))), max(0, int(round(cy - side / 2)))
        x1, y1 = min(fw, int(round(cx + side / 2))), min(fh, int(round(cy + side / 2)))
        face = image[y0:y1, x0:x1]
        if face.size == 0:
            return np.zeros((size[1], size[0]) + image.shape[2:], np.uint8)
        return cv2.resize(face, size, interpolation=cv2.INTER_AREA)
    # Shrink a region big enough for any rotation to the output scale first (area averaging, as
    # in the plain crop), then rotate at that scale: one small warp instead of a full-size one.
    big = side * 1.5
    x0, y0 = int(round(cx - big / 2)), int(round(cy - big / 2))
    x1, y1 = int(round(cx + big / 2)), int(round(cy + big / 2))
    px0, py0, px1, py1 = max(0, -x0), max(0, -y0), max(0, x1 - fw), max(0, y1 - fh)
    region = image[max(0, y0) : min(fh, y1), max(0, x0) : min(fw, x1)]
    if region.size == 0:
        return np.zeros((size[1], size[0]) + image.shape[2:], np.uint8)
    if px0 or py0 or px1 or py1:
        region = cv2.copyMakeBorder(region, py0, py1, px0, px1, cv2.BORDER_REPLICATE)
    scaled_w, scaled_h = int(round(size[0] * 1.5)), int(round(size[1] * 1.5))
    region = cv2.resize(region, (scaled_w, scaled_h), interpolation=cv2.INTER_AREA)
    m = cv2.getRotationMatrix2D((scaled_w / 2.0, scaled_h / 2.0), roll_deg, 1.0)
    m[0, 2] -= (scaled_w - size[0]) / 2.0
    m[1, 2] -= (scaled_h - size[1]) / 2.0
    return cv2.warpAffine(region, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
