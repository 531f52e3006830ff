"""Find the small faces of a group shot with a close-range detector: run it on overlapping tiles too.

BlazeFace short-range sees a 128x128 letterboxed copy of the frame, so in a 640-pixel-wide group shot
a face narrower than about 90 pixels shrinks below what it can find. Offline analysis can afford a
few more detector runs per scored frame: the whole frame plus a grid x grid set of overlapping tiles,
each at the model's input size, then one merge of the boxes (overlapping boxes: the best-scoring
one is kept).
"""

from __future__ import annotations

import numpy as np

from emotiond.perception.face_detect import Detection, FaceDetector, iou


def tile_boxes(width: int, height: int, grid: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """grid x grid tiles (x, y, w, h) covering the frame, neighbours overlapping by ``overlap`` of a tile."""
    if grid <= 1:
        return []
    tw = int(np.ceil(width / (grid - (grid - 1) * overlap)))
    th = int(np.ceil(height / (grid - (grid - 1) * overlap)))
    xs = np.linspace(0, max(0, width - tw), grid).round().astype(int)
    ys = np.linspace(0, max(0, height - th), grid).round().astype(int)
    return [(int(x), int(y), min(tw, width - int(x)), min(th, height - int(y))) for y in ys for x in xs]


def merge(detections: list[Detection], iou_threshold: float = 0.3, max_faces: int = 16) -> list[Detection]:
    """Keep the best-scoring box of each overlapping group; a box mostly inside a kept one also goes."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if any(iou(det.box, k.box) >= iou_threshold or _inside(det.box, k.box) for k in kept):
            continue
        kept.append(det)
    return kept[:max_faces]


def _inside(a: tuple[int, int, int, int], b: tuple[int, int, int, int], share: float = 0.7) -> bool:
    """Whether at least ``share`` of box a lies inside box b (a tile cut a face that b holds whole)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    area = a[2] * a[3]
    return area > 0 and ix * iy / area >= share


class TiledDetector:
    """Wraps any FaceDetector: whole frame + tiles, boxes merged, in frame pixels."""

    def __init__(self, detector: FaceDetector, grid: int = 2, overlap: float = 0.25, max_faces: int = 16) -> None:
        self.detector = detector
        self.grid = grid
        self.overlap = overlap
        self.max_faces = max_faces

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        found = list(self.detector.detect(frame_bgr))
        h, w = frame_bgr.shape[:2]
        for x, y, tw, th in tile_boxes(w, h, self.grid, self.overlap):
            for d in self.detector.detect(frame_bgr[y:y + th, x:x + tw]):
                bx, by, bw, bh = d.box
                found.append(Detection((bx + x, by + y, bw, bh), d.score))
        return merge(found, max_faces=self.max_faces)
