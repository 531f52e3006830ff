"""Facial expression: crop each tracked face, feed the int8 mini-Xception, return probabilities.

Preprocessing (size, colour, margin) comes from the model's manifest so another model can be
dropped in without code changes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emotiond.models import Manifest, TFLiteModel


class ExpressionClassifier:
    def __init__(self, model: TFLiteModel, face_margin: float | None = None) -> None:
        self.model = model
        m = model.manifest
        if not m.labels:
            raise ValueError(f"{m.path}: expression manifest has no labels")
        self.labels: tuple[str, ...] = m.labels
        _, self.height, self.width, self.channels = model.input_shape
        self.gray = m.input.get("color", "gray") == "gray" or self.channels == 1
        self.margin = float(face_margin if face_margin is not None else m.preprocessing.get("face_margin", 0.0))
        self._lo, self._hi = m.input_range

    @classmethod
    def from_manifest(cls, path: Path, backend: str = "auto", num_threads: int = 1,
                      face_margin: float | None = None) -> ExpressionClassifier:
        return cls(TFLiteModel(Manifest.load(path), backend, num_threads), face_margin)

    def crop(self, frame_bgr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The face region grown by the margin, clipped to the frame, resized to the model input."""
        x, y, w, h = box
        side = max(w, h) * (1.0 + 2.0 * self.margin)  # square around the centre, as the model was trained
        cx, cy = x + w / 2.0, y + h / 2.0
        fh, fw = frame_bgr.shape[:2]
        x0, y0 = max(0, int(round(cx - side / 2))), max(0, int(round(cy - side / 2)))
        x1, y1 = min(fw, int(round(cx + side / 2))), min(fh, int(round(cy + side / 2)))
        face = frame_bgr[y0:y1, x0:x1]
        if face.size == 0:
            face = np.zeros((self.height, self.width, 3), np.uint8)
        face = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY if self.gray else cv2.COLOR_BGR2RGB)
        face = cv2.resize(face, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return face.reshape(self.height, self.width, self.channels)

    def classify_crop(self, crop: np.ndarray) -> np.ndarray:
        """Probabilities for one crop already at the model's size (uint8 pixels)."""
        x = crop.astype(np.float32) * ((self._hi - self._lo) / 255.0) + self._lo
        probs = self.model.run(x[None])[0].reshape(-1)
        probs = np.clip(probs, 0.0, None)
        total = float(probs.sum())
        return probs / total if total > 0 else np.full(len(self.labels), 1.0 / len(self.labels), np.float32)

    def classify(self, frame_bgr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        return self.classify_crop(self.crop(frame_bgr, box))
