"""The face pipeline end to end on real frames: events, IDs across motion, hold, smoothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from emotiond.events import EmotionEvent, FaceAppeared, FaceLost
from emotiond.fusion.smoothing import ExponentialAverage, RollingMean, decide
from emotiond.perception.pipeline import FacePipeline


def shifted(image: np.ndarray, dx: int, dy: int = 0) -> np.ndarray:
    """The astronaut's head and shoulders placed at (40 + dx, 40 + dy) in a 640x480 frame."""
    portrait = image[0:300, 100:380]
    canvas = np.full((480, 640, 3), 100, np.uint8)
    canvas[40 + dy : 40 + dy + portrait.shape[0], 40 + dx : 40 + dx + portrait.shape[1]] = portrait
    return canvas


def make(config, every: int = 10, **faces) -> FacePipeline:
    cfg = dataclasses.replace(
        config,
        faces=dataclasses.replace(config.faces, **faces),
        expression=dataclasses.replace(config.expression, every=every),
    )
    return FacePipeline.from_config(cfg)


def test_id_is_kept_while_the_face_moves(default_config, astronaut) -> None:
    pipeline = make(default_config, every=2, detect_every=4, hold_frames=5)
    events = [e for i in range(16) for e in pipeline.process(shifted(astronaut, 8 * i, 2 * i), 0.0)]
    appeared = [e for e in events if isinstance(e, FaceAppeared)]
    assert len(appeared) == 1
    emotions = [e for e in events if isinstance(e, EmotionEvent)]
    assert emotions and all(f.face_id == appeared[0].face_id for e in emotions for f in e.faces)
    x_positions = [e.faces[0].box[0] for e in emotions]
    assert x_positions == sorted(x_positions) and x_positions[-1] - x_positions[0] > 40


def test_face_hold_then_lost_with_real_detector(default_config, astronaut) -> None:
    pipeline = make(default_config, detect_every=1, hold_frames=3)
    blank = np.full((480, 640, 3), 100, np.uint8)
    for _ in range(3):
        pipeline.process(shifted(astronaut, 0), 0.0)
    seen_held, lost_frame = [], None
    for i in range(3, 10):
        events = pipeline.process(blank, 0.0)
        if any(t.held for t in pipeline.tracker.tracks):
            seen_held.append(i)
        lost = [e for e in events if isinstance(e, FaceLost)]
        if lost:
            lost_frame = i
            assert lost[0].last_label == "happy"
            break
    assert seen_held == [3, 4, 5] and lost_frame == 6


def test_expression_runs_every_k_frames(default_config, astronaut) -> None:
    pipeline = make(default_config, every=3)
    frames_with_emotion = [
        i for i in range(10) for e in pipeline.process(shifted(astronaut, 0), 0.0) if isinstance(e, EmotionEvent)
    ]
    assert frames_with_emotion == [0, 3, 6, 9]


def test_rolling_mean_and_ema() -> None:
    mean = RollingMean(history=2)
    mean.update(np.array([1.0, 0.0]))
    mean.update(np.array([0.0, 1.0]))
    assert np.allclose(mean.update(np.array([0.0, 1.0])), [0.0, 1.0])  # the first fell out of the window
    ema = ExponentialAverage(alpha=0.25)
    ema.update(np.array([1.0, 0.0]))
    assert np.allclose(ema.update(np.array([0.0, 1.0])), [0.75, 0.25])


def test_decide_renormalises_and_reports_uncertain() -> None:
    labels = ("a", "b", "c")
    sure = decide(labels, np.array([2.0, 1.0, 1.0]), 0.4)
    assert sure.label == "a" and sure.confidence == pytest.approx(0.5)
    assert decide(labels, np.array([0.35, 0.33, 0.32]), 0.4).label == "uncertain"
