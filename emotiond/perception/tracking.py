"""Face tracking between detections: sparse Lucas-Kanade optical flow, stable IDs, and face hold.

The detector runs every N frames; in between, each box follows the median motion of corner points
inside it. A face the detector misses is held (box and ID kept) for ``hold_frames`` frames, counted
from the first frame it was missed, and then dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np

from emotiond.perception.face_detect import Detection, clip_box, iou

_LK_WINDOW = (15, 15)
_LK_LEVELS = 2
_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)


@dataclass
class Track:
    face_id: int
    box: tuple[int, int, int, int]
    score: float
    first_frame: int
    missed_since: int | None = None  # frame the detector first missed this face
    points: np.ndarray | None = field(default=None, repr=False)

    @property
    def held(self) -> bool:
        return self.missed_since is not None


@dataclass(frozen=True)
class TrackUpdate:
    """What changed on one frame: the live tracks, and the IDs that appeared or were dropped."""

    tracks: tuple[Track, ...]
    appeared: tuple[Track, ...]
    lost: tuple[Track, ...]


_CORNER_CONTEXT = 8  # px around a box: corner scores inside it then equal the whole-frame ones


def _corner_points(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Corners inside the box, searched in the box plus a small margin rather than the whole frame
    (same points, a fraction of the cost: the corner response is local)."""
    x, y, w, h = box
    fh, fw = gray.shape
    x0, y0 = max(0, x - _CORNER_CONTEXT), max(0, y - _CORNER_CONTEXT)
    x1, y1 = min(fw, x + w + _CORNER_CONTEXT), min(fh, y + h + _CORNER_CONTEXT)
    roi = gray[y0:y1, x0:x1]
    mask = np.zeros_like(roi)
    mask[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = 255
    pts = cv2.goodFeaturesToTrack(roi, maxCorners=30, qualityLevel=0.01, minDistance=3, mask=mask)
    if pts is None or len(pts) < 3:
        return None
    return pts + np.array([x0, y0], np.float32)


class FaceTracker:
    def __init__(self, hold_frames: int, match_iou: float = 0.3) -> None:
        self.hold_frames = hold_frames
        self.match_iou = match_iou
        self._tracks: list[Track] = []
        self._next_id = 1
        self._prev_gray: np.ndarray | None = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        return tuple(self._tracks)

    def _follow(self, gray: np.ndarray) -> None:
        """Shift each box by the median flow of its points; boxes without good points stay put."""
        if self._prev_gray is None or self._prev_gray.shape != gray.shape:
            return
        h, w = gray.shape
        # a held face keeps its box
        moving = [(t, t.points) for t in self._tracks if t.points is not None and not t.held]
        if not moving:
            return
        # One flow call for every face's points: each point is tracked on its own, so this equals a
        # call per face, but the image pyramids are built once per frame instead of once per face.
        # (OpenCV's stubs do not allow None for the optional output array; OpenCV itself does.)
        points = np.concatenate([p for _, p in moving]).astype(np.float32, copy=False)
        no_output = cast(np.ndarray, None)
        new_all, status_all, _err = cv2.calcOpticalFlowPyrLK(self._prev_gray, gray, points, no_output, winSize=_LK_WINDOW,
                                                             maxLevel=_LK_LEVELS, criteria=_LK_CRITERIA)
        back_all, status_back_all, _err = cv2.calcOpticalFlowPyrLK(gray, self._prev_gray, new_all, no_output,
                                                                   winSize=_LK_WINDOW, maxLevel=_LK_LEVELS,
                                                                   criteria=_LK_CRITERIA)
        start = 0
        for track, old in moving:
            end = start + len(old)
            new, back = new_all[start:end], back_all[start:end]
            status, status_back = status_all[start:end], status_back_all[start:end]
            start = end
            # forward-backward check: a point that does not come back where it started was lost
            round_trip = np.linalg.norm((back - old).reshape(-1, 2), axis=1)
            good = (status.reshape(-1) == 1) & (status_back.reshape(-1) == 1) & (round_trip < 1.0)
            if good.sum() < 3:
                track.points = None
                continue
            dx, dy = np.median((new[good] - old[good]).reshape(-1, 2), axis=0)
            x, y, bw, bh = track.box
            moved = clip_box((int(round(x + dx)), int(round(y + dy)), bw, bh), w, h)
            if moved is None:
                track.points = None
                continue
            track.box = moved
            track.points = new[good].reshape(-1, 1, 2)

    def update(self, frame_index: int, gray: np.ndarray, detections: Sequence[Detection] | None) -> TrackUpdate:
        """Advance one frame; ``detections`` is None on frames where the detector did not run."""
        self._follow(gray)
        appeared: list[Track] = []
        lost: list[Track] = []
        h, w = gray.shape
        if detections is not None:
            pairs = sorted(
                ((iou(t.box, d.box), ti, di) for ti, t in enumerate(self._tracks) for di, d in enumerate(detections)),
                reverse=True,
            )
            used_t: set[int] = set()
            used_d: set[int] = set()
            for overlap, ti, di in pairs:
                if overlap < self.match_iou or ti in used_t or di in used_d:
                    continue
                used_t.add(ti)
                used_d.add(di)
                track = self._tracks[ti]
                box = clip_box(detections[di].box, w, h)
                if box is not None:
                    track.box = box
                track.score = detections[di].score
                track.missed_since = None
                track.points = _corner_points(gray, track.box)
            for ti, track in enumerate(self._tracks):
                if ti not in used_t and track.missed_since is None:
                    track.missed_since = frame_index
            for di, det in enumerate(detections):
                box = clip_box(det.box, w, h)
                if di in used_d or box is None:
                    continue
                track = Track(self._next_id, box, det.score, frame_index, points=_corner_points(gray, box))
                self._next_id += 1
                self._tracks.append(track)
                appeared.append(track)
        keep: list[Track] = []
        for track in self._tracks:
            if track.missed_since is not None and frame_index - track.missed_since >= self.hold_frames:
                lost.append(track)
            else:
                keep.append(track)
        self._tracks = keep
        self._prev_gray = gray
        return TrackUpdate(tuple(keep), tuple(appeared), tuple(lost))
