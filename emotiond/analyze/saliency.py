"""Spatial weighting toward salient regions: the seed's spatial attention in a form a Pi can carry.

The seed weights 3D-ResNet feature maps with a learned 1x1-conv + softmax spatial attention. We have
no trained attention, so the weight map is the spectral-residual saliency of Hou & Zhang (CVPR 2007):
the part of the log-amplitude spectrum that a local average does not explain marks the "unexpected"
regions of an image. It is pure numpy + OpenCV, a 64x64 FFT per frame, and like a softmax map it is
non-negative and sums to 1, so it can weight any per-pixel quantity.
"""

from __future__ import annotations

import cv2
import numpy as np

MAP_SIZE = 64  # Hou & Zhang work at this scale: saliency is a coarse, low-frequency property


def spectral_residual(frame_bgr: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """A (size, size) saliency map, non-negative, summing to 1 (uniform for a flat image)."""
    gray = frame_bgr if frame_bgr.ndim == 2 else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
    spectrum = np.fft.fft2(small)
    log_amp = np.log(np.abs(spectrum) + 1e-9)
    residual = log_amp - cv2.blur(log_amp, (3, 3), borderType=cv2.BORDER_REPLICATE)
    recon = np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))
    sal = cv2.GaussianBlur(np.abs(recon) ** 2, (0, 0), sigmaX=size / 25.0, borderType=cv2.BORDER_REPLICATE)
    total = float(sal.sum())
    if not np.isfinite(total) or total <= 1e-12 or float(small.std()) < 1e-6:
        return np.full((size, size), 1.0 / (size * size))
    return sal / total


def box_mass(saliency: np.ndarray, box: tuple[int, int, int, int], width: int, height: int) -> float:
    """Share of the saliency mass inside a frame-pixel box (x, y, w, h), in [0, 1]."""
    sh, sw = saliency.shape
    x, y, w, h = box
    x0 = int(np.clip(np.floor(x / width * sw), 0, sw))
    y0 = int(np.clip(np.floor(y / height * sh), 0, sh))
    x1 = int(np.clip(np.ceil((x + w) / width * sw), 0, sw))
    y1 = int(np.clip(np.ceil((y + h) / height * sh), 0, sh))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(saliency[y0:y1, x0:x1].sum())


def box_ratio(saliency: np.ndarray, box: tuple[int, int, int, int], width: int, height: int) -> float:
    """Saliency density in the box relative to the frame average (1 = as salient as the average)."""
    x, y, w, h = box
    area = max(0, min(x + w, width) - max(x, 0)) * max(0, min(y + h, height) - max(y, 0))
    if area <= 0:
        return 0.0
    return box_mass(saliency, box, width, height) / (area / float(width * height))


def upsample(saliency: np.ndarray, width: int, height: int) -> np.ndarray:
    """The map at frame size, renormalised to sum to 1."""
    big = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)
    return big / max(float(big.sum()), 1e-12)
