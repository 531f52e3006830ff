"""Face detection: MediaPipe BlazeFace (our own anchor decoder + weighted NMS) or OpenCV Haar.

Both detectors take a BGR frame and return ``Detection`` boxes in frame pixels, so the tracker does
not care which one ran.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from emotiond.models import Manifest, ModelError, TFLiteModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    score: float
    # BlazeFace's six keypoints (right eye, left eye, nose, mouth, right ear, left ear) in frame
    # pixels; empty for detectors without keypoints (Haar)
    keypoints: tuple[tuple[float, float], ...] = ()

    @property
    def roll(self) -> float | None:
        """Eye-line roll in degrees (positive: the eye line falls to the right in the image), None without eyes."""
        if len(self.keypoints) < 2:
            return None
        (ax, ay), (bx, by) = sorted(self.keypoints[:2])  # left-most eye first, whichever eye it is
        return float(np.degrees(np.arctan2(by - ay, bx - ax)))


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


def ssd_anchors(input_size: int, strides: Sequence[int], per_layer: int = 2, offset: float = 0.5,
                offset_y: float | None = None) -> np.ndarray:
    """SSD anchor centres (N, 2) in [0, 1]; consecutive layers of equal stride share one grid.

    ``per_layer`` is MediaPipe's anchors per location per layer: 2 when
    ``interpolated_scale_aspect_ratio`` is 1.0 (short-range), 1 when it is 0 (full-range).
    """
    oy = offset if offset_y is None else offset_y
    centres: list[tuple[float, float]] = []
    i = 0
    while i < len(strides):
        stride = strides[i]
        repeats = 0
        while i < len(strides) and strides[i] == stride:
            repeats += per_layer
            i += 1
        grid = int(np.ceil(input_size / stride))
        for y in range(grid):
            for x in range(grid):
                centres.extend([((x + offset) / grid, (y + oy) / grid)] * repeats)
    return np.asarray(centres, dtype=np.float32)


def anchors_from_manifest(anchors: dict, model_size: int, where: object = "manifest") -> np.ndarray:
    """Anchor centres from a manifest's ``anchors`` section, checked against its stated counts.

    Reads input size, strides, offsets and ``interpolated_scale_aspect_ratio`` (1.0 -> 2 anchors per
    location per layer, else 1); ``anchors_per_location`` (per stride, summed over equal-stride
    layers) and ``num_anchors`` are cross-checked so a manifest that disagrees with itself fails at load.
    """
    input_size = anchors.get("input_size", model_size)
    size = int(input_size[0] if isinstance(input_size, list) else input_size)
    if size != model_size:
        raise ModelError(f"{where}: anchors are for a {size}px input, the model takes {model_size}px")
    strides = [int(s) for s in anchors.get("strides", [8, 16, 16, 16])]
    per_layer = 2 if float(anchors.get("interpolated_scale_aspect_ratio", 1.0)) == 1.0 else 1
    offset_x = float(anchors.get("anchor_offset_x", 0.5))
    result = ssd_anchors(size, strides, per_layer, offset_x, float(anchors.get("anchor_offset_y", offset_x)))
    for stride, count in (anchors.get("anchors_per_location") or {}).items():
        got = per_layer * sum(1 for s in strides if s == int(stride))
        if got != int(count):
            raise ModelError(f"{where}: manifest says {count} anchors per location at stride {stride}, "
                             f"its parameters give {got}")
    expected = anchors.get("num_anchors")
    if expected is not None and int(expected) != len(result):
        raise ModelError(f"{where}: manifest says {expected} anchors, its parameters give {len(result)}")
    return result


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[tuple[np.ndarray, float]]:
    """Blend overlapping boxes weighted by score (MediaPipe's choice: steadier than hard NMS)."""
    order = list(np.argsort(-scores))
    kept: list[tuple[np.ndarray, float]] = []
    while order:
        top = order[0]
        overlaps = [j for j in order if iou(tuple(boxes[top]), tuple(boxes[j])) >= iou_threshold]
        weights = scores[overlaps]
        blended = (boxes[overlaps] * weights[:, None]).sum(axis=0) / weights.sum()
        kept.append((blended, float(scores[top])))
        order = [j for j in order if j not in overlaps]
    return kept


LOW_LIGHT_MEAN = 70.0  # a frame darker than this (mean grey level) is brightened for the detector
_LOW_LIGHT_TARGET, _LOW_LIGHT_MAX_GAIN = 110.0, 4.0


def _low_light_gain(small: np.ndarray, frame_mean: float) -> np.ndarray:
    """Brighten a dark frame's detector input (only the 128 px copy): measured on the robustness
    benchmark, BlazeFace found the face in 7 of 24 frames at a quarter of the light, 14 with this
    gain, and the same 17 of 24 on the clean frames (which are never touched)."""
    if frame_mean >= LOW_LIGHT_MEAN:
        return small
    gain = min(_LOW_LIGHT_MAX_GAIN, _LOW_LIGHT_TARGET / max(frame_mean, 1.0))
    return cv2.convertScaleAbs(small, alpha=gain)


ZOOM_CONTEXT = 2.5  # the zoomed view is this many face sides wide (the steadiest roll of 1.6, 2.0 and 2.5)
_ZOOM_GAIN_MIN = 1.25  # a view this close to the whole frame would see no more than the first pass did
_ZOOM_MIN_IOU = 0.3  # the re-detected face must be the one asked about


class BlazeFaceDetector:
    """BlazeFace (short- or full-range, per its manifest): letterbox, decode anchors, NMS, unletterbox."""

    def __init__(self, model: TFLiteModel, min_score: float | None = None, max_faces: int = 16) -> None:
        self.model = model
        m = model.manifest
        anchors = m.raw.get("anchors", {})
        self.size = int(model.input_shape[1])
        self.anchors = anchors_from_manifest(anchors, self.size, m.path)
        self.box_scale = float(anchors.get("box_decode_scale", self.size))
        self.clip = float(m.thresholds.get("raw_score_clip", 100.0))
        self.min_score = float(min_score if min_score is not None else m.thresholds.get("min_score", 0.5))
        self.iou = float(m.thresholds.get("iou", 0.3))
        self.max_faces = max_faces
        outputs = model.output_by_shape()
        n = len(self.anchors)
        reg_idx = next((i for s, i in outputs.items() if s[-2:] == (n, 16)), None)
        cls_idx = next((i for s, i in outputs.items() if s[-2:] == (n, 1)), None)
        if reg_idx is None or cls_idx is None:
            raise ModelError(f"{m.model_path}: outputs {list(outputs)} do not match {n} BlazeFace anchors")
        self._reg_idx, self._cls_idx = reg_idx, cls_idx
        lo, hi = m.input_range
        self._lo, self._hi = lo, hi

    def _letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, int, int]:
        h, w = rgb.shape[:2]
        side = max(h, w)
        pad_y, pad_x = (side - h) // 2, (side - w) // 2
        square = cv2.copyMakeBorder(rgb, pad_y, side - h - pad_y, pad_x, side - w - pad_x, cv2.BORDER_CONSTANT)
        return cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA), side, pad_x, pad_y

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        small, side, pad_x, pad_y = self._letterbox(rgb)
        small = _low_light_gain(small, float(frame_bgr[::8, ::8].mean()))
        x = small.astype(np.float32) * ((self._hi - self._lo) / 255.0) + self._lo
        outputs = self.model.run(x[None])
        raw = outputs[self._reg_idx].reshape(-1, 16)
        logits = np.clip(outputs[self._cls_idx].reshape(-1).astype(np.float64), -self.clip, self.clip)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        cx = raw[:, 0] / self.box_scale + anchors[:, 0]
        cy = raw[:, 1] / self.box_scale + anchors[:, 1]
        bw = raw[:, 2] / self.box_scale
        bh = raw[:, 3] / self.box_scale
        kx = raw[:, 4:16:2] / self.box_scale + anchors[:, :1]
        ky = raw[:, 5:16:2] / self.box_scale + anchors[:, 1:2]
        # keypoints ride along in the box array: weighted NMS blends them like the box (iou reads [:4])
        boxes = np.concatenate([np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1), kx, ky], axis=1)
        detections = []
        for box, score in weighted_nms(boxes, scores, self.iou)[: self.max_faces]:
            x0, y0, bw_, bh_ = box[:4] * side
            points = tuple((float(x * side - pad_x), float(y * side - pad_y)) for x, y in zip(box[4:10], box[10:16]))
            detections.append(
                Detection((int(round(x0 - pad_x)), int(round(y0 - pad_y)), int(round(bw_)), int(round(bh_))), score,
                          points)
            )
        return detections

    def zoomed(self, frame_bgr: np.ndarray, box: tuple[float, float, float, float]) -> Detection | None:
        """The face in ``box`` detected again in a view zoomed on it, in frame pixels; None when the
        first pass already saw it about this close, or the zoomed view does not find it.

        Why: in the whole-frame pass a face 90 px wide at 640x480 is 18 px of the 128 px input, and
        its eye keypoints fall on the anchor grid: the same upright portrait moved sideways in 30 px
        steps read rolls from -50 to +8 degrees, and alignment then turned an upright face by that
        much before the expression model saw it. In a view of 2.5 face sides the same positions read
        +1.5 to +3.7 degrees (``benchmarks/robustness.py`` prints both)."""
        fh, fw = frame_bgr.shape[:2]
        x, y, w, h = box
        side = int(round(max(w, h) * ZOOM_CONTEXT))
        if side * _ZOOM_GAIN_MIN > max(fh, fw):
            return None
        x0, y0 = int(round(x + w / 2.0 - side / 2.0)), int(round(y + h / 2.0 - side / 2.0))
        x1, y1 = x0 + side, y0 + side
        region = frame_bgr[max(0, y0) : min(fh, y1), max(0, x0) : min(fw, x1)]
        if region.size == 0:
            return None
        region = cv2.copyMakeBorder(region, max(0, -y0), max(0, y1 - fh), max(0, -x0), max(0, x1 - fw),
                                    cv2.BORDER_CONSTANT)  # black, like the letterbox
        grow = side < self.size
        view = cv2.resize(region, (self.size, self.size), interpolation=cv2.INTER_LINEAR if grow else cv2.INTER_AREA)
        scale = side / self.size  # view pixels -> frame pixels
        wanted = (int(round(x)), int(round(y)), int(round(w)), int(round(h)))
        best, overlap = None, _ZOOM_MIN_IOU
        for d in self.detect(view):
            bx, by, bw, bh = d.box
            back = Detection((int(round(x0 + bx * scale)), int(round(y0 + by * scale)), int(round(bw * scale)),
                              int(round(bh * scale))), d.score,
                             tuple((x0 + px * scale, y0 + py * scale) for px, py in d.keypoints))
            o = iou(back.box, wanted)
            if o >= overlap:
                best, overlap = back, o
        return best


def levelling_roll(zoomer: object | None, frame_bgr: np.ndarray, box: tuple[float, float, float, float],
                   fallback: float | None) -> float | None:
    """The roll that levels a face's crop: the eye line measured in a view zoomed on the face when
    ``zoomer`` can (``BlazeFaceDetector.zoomed``; None: zoom off), else ``fallback`` (the roll of the
    face's last whole-frame detection; None for Haar, whose crops stay upright)."""
    zoomed = getattr(zoomer, "zoomed", None)
    closer: Detection | None = zoomed(frame_bgr, box) if zoomed is not None else None
    return closer.roll if closer is not None else fallback


class HaarDetector:
    """OpenCV's frontal-face cascade: no model file, no scores (reported as 1.0)."""

    def __init__(self, min_face_px: int = 24, max_faces: int = 16) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined, unused-ignore]  # not in every OpenCV's stubs
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ModelError(f"{path}: OpenCV Haar cascade could not be loaded")
        self.min_face_px = min_face_px
        self.max_faces = max_faces

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_face_px, self.min_face_px)
        )
        boxes = sorted((tuple(int(v) for v in b) for b in found), key=lambda b: -b[2] * b[3])
        return [Detection(b, 1.0) for b in boxes[: self.max_faces]]  # type: ignore[arg-type]


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Clip a box to the frame; None when nothing of it is left."""
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(width, box[0] + box[2]), min(height, box[1] + box[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def make_detector(kind: str, manifest_path: Path, *, min_score: float, max_faces: int, min_face_px: int,
                  backend: str = "auto", num_threads: int = 1, full_manifest_path: Path | None = None) -> FaceDetector:
    """The configured detector: "haar", "blazeface" (``manifest_path``) or "blazeface_full" (``full_manifest_path``)."""
    if kind == "haar":
        return HaarDetector(min_face_px, max_faces)
    if kind == "blazeface_full":
        if full_manifest_path is None:
            raise ModelError('faces.detector = "blazeface_full" needs the full-range manifest '
                             "(models.face_detector_full)")
        manifest_path = full_manifest_path
    return BlazeFaceDetector(TFLiteModel(Manifest.load(manifest_path), backend, num_threads), min_score, max_faces)
