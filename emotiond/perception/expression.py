"""Facial expression: crop each tracked face, feed the int8 mini-Xception, return probabilities.

Preprocessing (size, colour, margin, and the ordered ``preprocessing.steps``) comes from the
model's manifest so another model can be dropped in without code changes. Steps this code knows:

- ``align_roll``: rotate the crop so the eye line is level (needs eye keypoints; BlazeFace has
  them, Haar does not, and then the crop stays upright);
- ``clahe``: contrast-limited adaptive histogram equalisation of the crop (evening light);
- ``equalize_hist``: plain histogram equalisation of the crop;
- ``stretch``: linear contrast stretch of a flat crop (its 1st..99th percentile to 0..255, only
  when that range is under 160 grey levels, so a well-exposed face is left as it is): undoes a dim
  exposure without reshaping local contrast the way equalisation does. A crop stretched by more
  than 1.5x is first smoothed in proportion to the gain (sigma up to 0.8 px at 4x), since the
  stretch amplifies sensor noise too.

The shipped manifest asks for ``align_roll`` then ``stretch``: on benchmarks/robustness.py, CLAHE
and plain equalisation changed the clean labels of the harder (low-confidence) portrait and lowered
agreement under every perturbation; the conditional stretch kept them (see benchmarks/RESULTS.md).

Mirror averaging (classify the crop and its mirror image, average the probabilities) and crop-size
averaging (classify crops of several sizes around the face box and average) are run-time choices,
not the model's, so they are constructor arguments (``expression.mirror_average``,
``expression.crop_scales``). Both exist because this small model's reading of a low-confidence face
flips on a few pixels of crop difference (the detector's box moves that much between a clean and a
blurred, noisy, rolled or mirrored view of the same face); an average over nearby crops does not.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emotiond.models import Manifest, ModelError, TFLiteModel
from emotiond.perception.align import square_crop

STEPS = ("align_roll", "clahe", "equalize_hist", "stretch")
_CLAHE_CLIP, _CLAHE_TILES = 2.0, (4, 4)
_STRETCH_BELOW = 160.0  # grey levels: crops with a narrower 1..99 % range are stretched (120-200 measured alike)


_SMOOTH_FROM_GAIN, _SMOOTH_SIGMA_MAX, _SMOOTH_GAIN_MAX = 1.5, 0.8, 4.0


def _stretch(grey: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(grey, (1.0, 99.0))
    if hi - lo < 1.0 or hi - lo >= _STRETCH_BELOW:
        return grey
    gain = 255.0 / (hi - lo)
    if gain > _SMOOTH_FROM_GAIN:
        # The gain amplifies a dim sensor's noise as much as the face, and the model reads that
        # grain as a frown (dark noisy faces drifted to "angry"): smooth in proportion to the gain
        # first. robustness.py, dim + noise: agreement 0.893 -> 1.000 on the two portraits, 0.761 ->
        # 0.836 on all 129 faces with a confident clean label; a well-exposed crop is never touched.
        sigma = _SMOOTH_SIGMA_MAX * min(gain, _SMOOTH_GAIN_MAX) / _SMOOTH_GAIN_MAX
        grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    return cv2.convertScaleAbs(grey, alpha=gain, beta=-lo * gain)


class ExpressionClassifier:
    def __init__(self, model: TFLiteModel, face_margin: float | None = None, mirror_average: bool = False,
                 crop_scales: tuple[float, ...] = (1.0,)) -> None:
        self.model = model
        m = model.manifest
        if not m.labels:
            raise ValueError(f"{m.path}: expression manifest has no labels")
        self.labels: tuple[str, ...] = m.labels
        _, self.height, self.width, self.channels = model.input_shape
        self.gray = m.input.get("color", "gray") == "gray" or self.channels == 1
        self.margin = float(face_margin if face_margin is not None else m.preprocessing.get("face_margin", 0.0))
        self._lo, self._hi = m.input_range
        self.steps = m.preprocessing_steps
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise ModelError(f"{m.path}: unknown preprocessing step(s) {unknown} (known: {', '.join(STEPS)})")
        self.align = "align_roll" in self.steps
        self.mirror_average = mirror_average
        if not crop_scales:  # sizes and count are checked with the config (ExpressionConfig)
            raise ValueError("crop_scales must name at least one size")
        self.crop_scales = tuple(float(c) for c in crop_scales)
        self._clahe = cv2.createCLAHE(clipLimit=_CLAHE_CLIP, tileGridSize=_CLAHE_TILES)

    @classmethod
    def from_manifest(cls, path: Path, backend: str = "auto", num_threads: int = 1,
                      face_margin: float | None = None, mirror_average: bool = False,
                      crop_scales: tuple[float, ...] = (1.0,)) -> ExpressionClassifier:
        return cls(TFLiteModel(Manifest.load(path), backend, num_threads), face_margin, mirror_average, crop_scales)

    def crop(self, frame: np.ndarray, box: tuple[float, float, float, float], roll_deg: float | None = None) -> np.ndarray:
        """The face region grown by the margin, levelled (``align_roll``), resized to the model input,
        with the manifest's pixel steps applied. ``frame`` is BGR, or already grey (2-D) for a grey
        model, so the pipeline converts each frame once for every stage."""
        if frame.ndim == 2 and not self.gray:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        face = square_crop(frame, box, self.margin, (self.width, self.height), roll_deg if self.align else None)
        if face.ndim == 3:
            face = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY if self.gray else cv2.COLOR_BGR2RGB)
        for step in self.steps:
            if step == "clahe":
                face = self._per_channel(face, self._clahe.apply)
            elif step == "equalize_hist":
                face = self._per_channel(face, cv2.equalizeHist)
            elif step == "stretch":
                face = self._per_channel(face, _stretch)
        return face.reshape(self.height, self.width, self.channels)

    @staticmethod
    def _per_channel(face: np.ndarray, op: object) -> np.ndarray:
        assert callable(op)
        if face.ndim == 2:
            return op(face)
        lab = cv2.cvtColor(face, cv2.COLOR_RGB2LAB)  # equalise lightness only, keep colour
        lab[:, :, 0] = op(np.ascontiguousarray(lab[:, :, 0]))
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)

    def _run(self, crop: np.ndarray) -> np.ndarray:
        x = crop.astype(np.float32) * ((self._hi - self._lo) / 255.0) + self._lo
        probs = np.clip(self.model.run(x[None])[0].reshape(-1), 0.0, None)
        total = float(probs.sum())
        return probs / total if total > 0 else np.full(len(self.labels), 1.0 / len(self.labels), np.float32)

    def classify_crop(self, crop: np.ndarray) -> np.ndarray:
        """Probabilities for one crop already at the model's size (uint8 pixels); with mirror
        averaging, the mean of the crop's and its mirror image's (expressions are symmetric enough,
        lighting and pose are not)."""
        probs = self._run(crop)
        if self.mirror_average:
            probs = (probs + self._run(np.ascontiguousarray(crop[:, ::-1]))) / 2.0
        return probs

    def classify(self, frame: np.ndarray, box: tuple[float, float, float, float], roll_deg: float | None = None,
                 scales: tuple[float, ...] | None = None) -> np.ndarray:
        """The mean probabilities over the crops of every size in ``scales`` (default: all of
        ``crop_scales``; each crop mirror-averaged when that is on), all around the box centre."""
        sizes = self.crop_scales if scales is None else scales
        return np.mean([self.classify_crop(self.crop(frame, scaled_box(box, s), roll_deg)) for s in sizes], axis=0)


def scaled_box(box: tuple[float, float, float, float], scale: float) -> tuple[float, float, float, float]:
    """The box grown (scale > 1) or shrunk about its centre; float, since a crop is cut from it with
    sub-pixel resampling and rounding would make the sizes of a small face coincide."""
    x, y, w, h = box
    return x + w * (1.0 - scale) / 2.0, y + h * (1.0 - scale) / 2.0, w * scale, h * scale
