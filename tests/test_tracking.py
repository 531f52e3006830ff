"""Tracking keeps IDs across motion; face hold keeps a missed face for exactly hold_frames frames."""

from __future__ import annotations

import numpy as np
from emotiond.perception.face_detect import Detection
from emotiond.perception.tracking import FaceTracker


def textured(shift: int, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A frame with a textured square (the 'face') at x = 60 + shift."""
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 255, (60, 60), dtype=np.uint8)
    frame = np.full(size, 40, np.uint8)
    frame[80:140, 60 + shift : 120 + shift] = patch
    return frame


def test_boxes_follow_optical_flow_between_detections() -> None:
    tracker = FaceTracker(hold_frames=5)
    update = tracker.update(0, textured(0), [Detection((60, 80, 60, 60), 0.9)])
    (first,) = update.appeared
    for i in range(1, 6):  # detector does not run: flow must carry the box 4 px per frame
        update = tracker.update(i, textured(4 * i), None)
    (track,) = update.tracks
    assert track.face_id == first.face_id
    assert abs(track.box[0] - (60 + 20)) <= 2, track.box
    assert abs(track.box[1] - 80) <= 2


def test_ids_are_stable_across_redetection_and_new_faces_get_new_ids() -> None:
    tracker = FaceTracker(hold_frames=5)
    a = tracker.update(0, textured(0), [Detection((60, 80, 60, 60), 0.9)]).appeared[0]
    update = tracker.update(1, textured(6), [Detection((66, 80, 60, 60), 0.9), Detection((200, 20, 50, 50), 0.8)])
    assert [t.face_id for t in update.tracks] == [a.face_id, a.face_id + 1]
    assert [t.face_id for t in update.appeared] == [a.face_id + 1]


def test_face_hold_keeps_box_for_exactly_hold_frames() -> None:
    hold = 3
    tracker = FaceTracker(hold_frames=hold)
    frame = textured(0)
    blank = np.full_like(frame, 40)
    tracker.update(0, frame, [Detection((60, 80, 60, 60), 0.9)])
    held_frames = []
    lost_at = None
    for i in range(1, 10):
        update = tracker.update(i, blank, [])  # detector runs and misses every frame
        if update.tracks:
            assert update.tracks[0].held and update.tracks[0].box == (60, 80, 60, 60)
            held_frames.append(i)
        if update.lost:
            lost_at = i
            break
    assert held_frames == [1, 2, 3]
    assert lost_at == 1 + hold


def test_a_held_face_that_is_detected_again_keeps_its_id() -> None:
    tracker = FaceTracker(hold_frames=4)
    first = tracker.update(0, textured(0), [Detection((60, 80, 60, 60), 0.9)]).appeared[0]
    tracker.update(1, textured(0), [])
    update = tracker.update(2, textured(0), [Detection((61, 80, 60, 60), 0.9)])
    assert update.tracks[0].face_id == first.face_id and not update.tracks[0].held
    assert not update.appeared


def test_zero_hold_drops_on_first_miss() -> None:
    tracker = FaceTracker(hold_frames=0)
    tracker.update(0, textured(0), [Detection((60, 80, 60, 60), 0.9)])
    update = tracker.update(1, textured(0), [])
    assert not update.tracks and len(update.lost) == 1
