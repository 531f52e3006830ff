"""Face tracking between detections: optical flow, constant-velocity prediction, stable IDs, face hold.

The detector runs every N frames. In between, each box follows the median Lucas-Kanade motion of
corner points inside it, measured on a half-size grey image (a quarter of the pixels; faces are
large enough that half resolution loses nothing a box needs). A face whose patch did not change
since the last frame skips flow altogether.

Each track keeps a velocity (pixels per frame) from its recent motion. A face the detector misses
is held for ``hold_frames`` frames, counted from the first missed frame, and while held its box
moves at that velocity (no flow, no classification; the pipeline detects on every frame until the
face is found again or dropped). A held box whose prediction leaves the frame is clearly gone and
is dropped at once instead of lingering as a ghost; one whose predicted box sits behind another
visible tracked face is held up to three hold periods (people crossing slowly hide each other for
longer). Detections are associated with tracks by overlap with the predicted box and centre
distance, with a small colour histogram of the box settling ambiguous cases (two people crossing).
A face followed only by prediction since its last detection (held, or its flow lost or rejected)
may have stopped or turned back meanwhile; a detection that looks the same and lies within walking
reach of where the face was last detected is still that face, however far from the prediction
(``FaceTracker._within_reach``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from emotiond.perception.face_detect import Detection, clip_box, iou

_LK_WINDOW, _LK_LEVELS = (11, 11), 2
_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)


def _flow(prev: np.ndarray, nxt: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade: where each point went, and whether it was found."""
    moved, status, _err = cv2.calcOpticalFlowPyrLK(prev, nxt, points, np.empty_like(points), winSize=_LK_WINDOW,
                                                   maxLevel=_LK_LEVELS, criteria=_LK_CRITERIA)
    return np.asarray(moved), np.asarray(status)
_FLOW_SCALE = 2  # flow runs on the grey frame downscaled by this factor
_MAX_CORNERS = 16  # per face (30 at full size before: half the points, a quarter of the pixels)
_STILL_DIFF = 2.0  # mean abs grey change (0-255) on the box's thumbnail below which a face "has not moved"
_MIN_GOOD_FRACTION = 0.5  # fewer surviving points than this means the face was covered: predict instead
_VELOCITY_GAIN = 0.5  # weight of a new motion measurement in the velocity estimate
_FLOW_TOLERANCE = 4.0  # px/frame: flow further than this (or half the speed) from the detections' velocity
#                        means the points were dragged by something else (a person passing in front)
_HIST_BINS = (8, 4)  # hue x saturation: small, cheap, and different people rarely share one
_APPEARANCE_WEIGHT = 0.5  # how much histogram similarity adds to an association score
_BEHIND_HOLD_FACTOR = 3  # a held face behind a visible tracked one is kept up to this many hold periods
_CLEARLY_GONE = 0.4  # a held box with less than this fraction inside the frame is dropped at once
# px per frame a person may move at most (a brisk walk 2 m away at 640x480 and 30 fps is ~16): how far
# from its last detection a face followed only by prediction may be found again
_REACH_PER_FRAME = 20.0
_REACH_MAX_WIDTHS = 2.5  # ... and never further than this many box widths: faces of different people can
#                           look alike to a colour histogram, so a long hold must not reach across the room
_SAME_LOOK = 0.85  # histogram similarity (Bhattacharyya) for a match by reach; on benchmarks/tracking.py's
#                    drawn clips the same person scores 1.0 and the second person 0.742


@dataclass
class Track:
    face_id: int
    box: tuple[int, int, int, int]
    score: float
    first_frame: int
    missed_since: int | None = None  # frame the detector first missed this face
    points: np.ndarray | None = field(default=None, repr=False)  # corner points, half-size frame coordinates
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre motion, px per frame (what prediction uses)
    # velocity measured between detections: trusted over flow, which a face passing in front can drag
    detected_velocity: tuple[float, float] | None = None
    histogram: np.ndarray | None = field(default=None, repr=False)
    roll: float | None = None  # eye-line roll at the last detection, degrees (None: detector has no keypoints)
    centre: tuple[float, float] = (0.0, 0.0)  # sub-pixel centre, so slow motion does not round away
    coasting: bool = False  # its flow was lost or rejected since the last detection: followed by prediction only
    _detected_at: tuple[int, float, float] | None = field(default=None, repr=False)  # frame, cx, cy

    @property
    def held(self) -> bool:
        return self.missed_since is not None

    def set_box(self, box: tuple[int, int, int, int]) -> None:
        self.box = box
        self.centre = (box[0] + box[2] / 2.0, box[1] + box[3] / 2.0)

    def shift(self, dx: float, dy: float) -> None:
        """Move the box by a sub-pixel amount, keeping its size; the rounded box follows the exact centre."""
        cx, cy = self.centre[0] + dx, self.centre[1] + dy
        self.centre = (cx, cy)
        w, h = self.box[2], self.box[3]
        self.box = (int(round(cx - w / 2.0)), int(round(cy - h / 2.0)), w, h)


@dataclass(frozen=True)
class TrackUpdate:
    """What changed on one frame: the live tracks, and the IDs that appeared or were dropped."""

    tracks: tuple[Track, ...]
    appeared: tuple[Track, ...]
    lost: tuple[Track, ...]


_CORNER_CONTEXT = 4  # px (half-size frame) around a box: corner scores inside it then equal the whole-frame ones


def _corner_points(small: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Corners inside the box on the half-size grey frame, searched in the box plus a small margin."""
    x, y, w, h = (v // _FLOW_SCALE for v in box)
    fh, fw = small.shape
    x0, y0 = max(0, x - _CORNER_CONTEXT), max(0, y - _CORNER_CONTEXT)
    x1, y1 = min(fw, x + w + _CORNER_CONTEXT), min(fh, y + h + _CORNER_CONTEXT)
    roi = small[y0:y1, x0:x1]
    if roi.size == 0:
        return None
    mask = np.zeros_like(roi)
    mask[max(0, y - y0) : y - y0 + h, max(0, x - x0) : x - x0 + w] = 255
    pts = cv2.goodFeaturesToTrack(roi, maxCorners=_MAX_CORNERS, qualityLevel=0.01, minDistance=2, mask=mask)
    if pts is None or len(pts) < 3:
        return None
    return pts + np.array([x0, y0], np.float32)


def _thumbnail(small: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    x, y, w, h = (v // _FLOW_SCALE for v in box)
    roi = small[max(0, y) : y + h, max(0, x) : x + w]
    if roi.size == 0:
        return None
    return cv2.resize(roi, (12, 12), interpolation=cv2.INTER_AREA).astype(np.int16)


def colour_histogram(frame_bgr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Normalised hue-saturation histogram of the box's central part (every other pixel: it is a cue, not a measurement)."""
    x, y, w, h = box
    fh, fw = frame_bgr.shape[:2]
    x0, y0 = max(0, x + w // 6), max(0, y + h // 6)
    x1, y1 = min(fw, x + w - w // 6), min(fh, y + h - h // 6)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    hsv = cv2.cvtColor(frame_bgr[y0:y1:2, x0:x1:2], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_HIST_BINS), [0, 180, 0, 256]).reshape(-1)
    total = float(hist.sum())
    return hist / total if total > 0 else None


def _similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya coefficient of two normalised histograms (1 same, 0 disjoint); 0.5 when unknown."""
    if a is None or b is None:
        return 0.5
    return float(np.sum(np.sqrt(a * b)))


def _visible_fraction(box: tuple[int, int, int, int], width: int, height: int) -> float:
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(width, box[0] + box[2]), min(height, box[1] + box[3])
    area = box[2] * box[3]
    return max(0, x1 - x0) * max(0, y1 - y0) / area if area > 0 else 0.0


class FaceTracker:
    def __init__(self, hold_frames: int, match_iou: float = 0.3, max_centre_distance: float = 0.6) -> None:
        self.hold_frames = hold_frames
        self.match_iou = match_iou
        # a detection whose centre is within this many box widths of the prediction may match even
        # without overlap (a fast face the prediction slightly misplaced)
        self.max_centre_distance = max_centre_distance
        self._tracks: list[Track] = []
        self._next_id = 1
        self._prev_small: np.ndarray | None = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        return tuple(self._tracks)

    def _predict(self, track: Track) -> None:
        track.shift(*track.velocity)

    def _coast(self, track: Track) -> None:
        """Give up the face's flow until its next detection and move it by prediction."""
        track.points = None
        track.coasting = True
        self._predict(track)

    def _follow(self, small: np.ndarray, frame_index: int) -> None:
        """Advance every box one frame: held faces by their velocity; the others by optical flow,
        by nothing when their patch is unchanged, or by their velocity when their points were lost
        or covered."""
        prev = self._prev_small
        if prev is None or prev.shape != small.shape:
            return
        flowing: list[Track] = []
        for track in self._tracks:
            if track.held or track.points is None:
                self._predict(track)
                continue
            if self._overlaps_other(track):  # points may jump to the face in front: trust the motion model
                self._coast(track)
                continue
            before, now = _thumbnail(prev, track.box), _thumbnail(small, track.box)
            if before is not None and now is not None and float(np.abs(before - now).mean()) < _STILL_DIFF:
                if track.detected_velocity is None:
                    track.velocity = (track.velocity[0] * (1 - _VELOCITY_GAIN), track.velocity[1] * (1 - _VELOCITY_GAIN))
                continue
            flowing.append(track)
        if not flowing:
            return
        # One flow call for every face's points (pyramids built once per frame, not once per face).
        points = np.concatenate([t.points for t in flowing if t.points is not None]).astype(np.float32, copy=False)
        new_all, status_all = _flow(prev, small, points)
        back_all, status_back_all = _flow(small, prev, new_all)
        start = 0
        for track in flowing:
            assert track.points is not None
            end = start + len(track.points)
            new, back = new_all[start:end], back_all[start:end]
            status, status_back = status_all[start:end], status_back_all[start:end]
            start = end
            # forward-backward check: a point that does not come back where it started was lost
            round_trip = np.linalg.norm((back - track.points).reshape(-1, 2), axis=1)
            good = (status.reshape(-1) == 1) & (status_back.reshape(-1) == 1) & (round_trip < 0.5)
            if good.sum() < 3 or good.mean() < _MIN_GOOD_FRACTION:
                self._coast(track)
                continue
            dx, dy = (float(v) for v in np.median((new[good] - track.points[good]).reshape(-1, 2), axis=0) * _FLOW_SCALE)
            if track.detected_velocity is not None:
                vx, vy = track.detected_velocity
                if np.hypot(dx - vx, dy - vy) > max(_FLOW_TOLERANCE, 0.5 * float(np.hypot(vx, vy))):
                    self._coast(track)  # dragged: follow the detections' motion until the next detection
                    continue
            else:
                vx, vy = track.velocity
                track.velocity = (vx + _VELOCITY_GAIN * (dx - vx), vy + _VELOCITY_GAIN * (dy - vy))
            track.shift(dx, dy)
            track.points = new[good].reshape(-1, 1, 2)

    def _covered_by_other(self, track: Track) -> bool:
        """A visible tracked face close enough that its head and shoulders may cover this one."""
        cx, cy = track.centre
        return any(o is not track and not o.held
                   and np.hypot(o.centre[0] - cx, o.centre[1] - cy) < 1.5 * max(o.box[2], track.box[2])
                   for o in self._tracks)

    def _overlaps_other(self, track: Track) -> bool:
        return any(o is not track and iou(o.box, track.box) > 0.1 for o in self._tracks)

    def _pair_score(self, track: Track, det: Detection, hist: np.ndarray | None, frame_index: int) -> float | None:
        """How well a detection fits a track's predicted box; None when it cannot be the same face."""
        overlap = iou(track.box, det.box)
        tw, dw = max(1, track.box[2]), max(1, det.box[2])
        if not 0.5 <= dw / tw <= 2.0:
            return None
        tcx, tcy = track.centre
        dcx, dcy = det.box[0] + det.box[2] / 2.0, det.box[1] + det.box[3] / 2.0
        distance = float(np.hypot(dcx - tcx, dcy - tcy)) / max(tw, dw)
        similarity = _similarity(track.histogram, hist)
        if overlap < self.match_iou and distance > self.max_centre_distance \
                and not self._within_reach(track, (dcx, dcy), similarity, frame_index):
            return None
        return overlap + (1.0 - distance) + _APPEARANCE_WEIGHT * similarity

    @staticmethod
    def _within_reach(track: Track, centre: tuple[float, float], similarity: float, frame_index: int) -> bool:
        """Whether a detection far from a prediction-only face's predicted box may still be it: it
        looks the same, and a person could have walked there from the last detection since."""
        if not (track.held or track.coasting) or track._detected_at is None:
            return False
        if track.histogram is None or similarity < _SAME_LOOK:
            return False
        f0, lx, ly = track._detected_at
        walked = float(np.hypot(centre[0] - lx, centre[1] - ly))
        reach = min(_REACH_PER_FRAME * max(1, frame_index - f0), _REACH_MAX_WIDTHS * track.box[2])
        return walked <= reach

    def _matched(self, track: Track, det: Detection, box: tuple[int, int, int, int], frame_index: int,
                 small: np.ndarray, hist: np.ndarray | None) -> None:
        cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
        if track._detected_at is not None and frame_index > track._detected_at[0]:
            f0, x0, y0 = track._detected_at
            steps = frame_index - f0
            mvx, mvy = (cx - x0) / steps, (cy - y0) / steps
            if track.detected_velocity is None:
                track.detected_velocity = (mvx, mvy)
            else:
                vx, vy = track.detected_velocity
                track.detected_velocity = (vx + _VELOCITY_GAIN * (mvx - vx), vy + _VELOCITY_GAIN * (mvy - vy))
            track.velocity = track.detected_velocity
        track._detected_at = (frame_index, cx, cy)
        track.set_box(box)
        track.score = det.score
        track.roll = det.roll
        track.missed_since = None
        track.coasting = False
        track.points = _corner_points(small, box)
        if hist is not None:
            track.histogram = hist if track.histogram is None else 0.8 * track.histogram + 0.2 * hist

    def update(self, frame_index: int, gray: np.ndarray, detections: Sequence[Detection] | None,
               frame_bgr: np.ndarray | None = None) -> TrackUpdate:
        """Advance one frame; ``detections`` is None on frames where the detector did not run.

        ``frame_bgr`` (optional) gives the appearance cue; without it association uses geometry only.
        """
        h, w = gray.shape
        small = cv2.resize(gray, (w // _FLOW_SCALE, h // _FLOW_SCALE), interpolation=cv2.INTER_AREA)
        self._follow(small, frame_index)
        appeared: list[Track] = []
        lost: list[Track] = []
        if detections is not None:
            boxes = [clip_box(d.box, w, h) for d in detections]
            hists = [colour_histogram(frame_bgr, b) if frame_bgr is not None and b is not None else None for b in boxes]
            pairs = []
            for ti, t in enumerate(self._tracks):
                for di, d in enumerate(detections):
                    if boxes[di] is None:
                        continue
                    s = self._pair_score(t, d, hists[di], frame_index)
                    if s is not None:
                        pairs.append((s, ti, di))
            pairs.sort(reverse=True)
            used_t: set[int] = set()
            used_d: set[int] = set()
            for _score, ti, di in pairs:
                if ti in used_t or di in used_d:
                    continue
                used_t.add(ti)
                used_d.add(di)
                box = boxes[di]
                assert box is not None
                self._matched(self._tracks[ti], detections[di], box, frame_index, small, hists[di])
            for ti, track in enumerate(self._tracks):
                if ti not in used_t and track.missed_since is None:
                    track.missed_since = frame_index
                    track.points = None
            for di, det in enumerate(detections):
                box = boxes[di]
                if di in used_d or box is None:
                    continue
                track = Track(self._next_id, box, det.score, frame_index)
                self._matched(track, det, box, frame_index, small, hists[di])
                self._next_id += 1
                self._tracks.append(track)
                appeared.append(track)
        keep: list[Track] = []
        for track in self._tracks:
            missed = frame_index - track.missed_since if track.missed_since is not None else 0
            # a face hidden behind another tracked face is probably still there: hold it longer
            behind = missed < _BEHIND_HOLD_FACTOR * self.hold_frames and self._covered_by_other(track)
            expired = track.missed_since is not None and missed >= self.hold_frames and not behind
            gone = _visible_fraction(track.box, w, h) < _CLEARLY_GONE
            if expired or gone:
                lost.append(track)
                continue
            clipped = clip_box(track.box, w, h)
            if clipped is not None and clipped != track.box and not track.held:
                track.set_box(clipped)  # a detected or flowing face is reported inside the frame
            keep.append(track)
        self._tracks = keep
        self._prev_small = small
        return TrackUpdate(tuple(keep), tuple(appeared), tuple(lost))
