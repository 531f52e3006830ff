"""The face pipeline for one frame: detect (every N) -> track -> classify (every K) -> smooth -> events.

Pure: a frame in, events out; no threads, files or MQTT, so tests and benchmarks drive it directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from emotiond.config import Config
from emotiond.events import EmotionEvent, Event, FaceAppeared, FaceEmotion, FaceLost, Prediction, SceneEmotion
from emotiond.fusion.smoothing import Smoother, decide, make_smoother
from emotiond.perception.expression import ExpressionClassifier
from emotiond.perception.face_detect import FaceDetector, make_detector
from emotiond.perception.tracking import FaceTracker


@dataclass
class StageTimes:
    """Seconds spent per stage on the last frame (read by the benchmark)."""

    detect: float = 0.0
    track: float = 0.0
    expression: float = 0.0
    smooth: float = 0.0


@dataclass
class _FaceState:
    smoother: Smoother
    prediction: Prediction | None = None
    last_classified: int = -(10**9)


@dataclass
class FacePipeline:
    detector: FaceDetector
    classifier: ExpressionClassifier
    detect_every: int = 5
    classify_every: int = 10
    hold_frames: int = 15
    match_iou: float = 0.3
    smoothing: str = "mean"
    history: int = 5
    ema_alpha: float = 0.4
    uncertain_below: float = 0.4
    times: StageTimes = field(default_factory=StageTimes)

    def __post_init__(self) -> None:
        self.tracker = FaceTracker(self.hold_frames, self.match_iou)
        self._faces: dict[int, _FaceState] = {}
        self._frame = -1

    @classmethod
    def from_config(cls, config: Config) -> FacePipeline:
        mdir = config.models_dir
        detector = make_detector(
            config.faces.detector,
            mdir / config.models.face_detector,
            min_score=config.faces.min_score,
            max_faces=config.faces.max_faces,
            min_face_px=config.faces.min_face_px,
            backend=config.models.backend,
            num_threads=config.models.num_threads,
            full_manifest_path=mdir / config.models.face_detector_full,
        )
        classifier = ExpressionClassifier.from_manifest(
            mdir / config.models.expression, config.models.backend, config.models.num_threads,
            config.expression.face_margin,
        )
        e = config.expression
        return cls(detector, classifier, config.faces.detect_every, e.every, config.faces.hold_frames,
                   config.faces.match_iou, e.smoothing, e.history, e.ema_alpha, e.uncertain_below)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    def process(self, frame_bgr: np.ndarray, timestamp: float | None = None) -> list[Event]:
        """Advance one frame; returns face appeared/lost events and, when faces were classified, an
        EmotionEvent with every tracked face and the scene aggregate."""
        ts = time.time() if timestamp is None else timestamp
        self._frame += 1
        n = self._frame
        t0 = time.perf_counter()
        detections = self.detector.detect(frame_bgr) if n % self.detect_every == 0 else None
        t1 = time.perf_counter()
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        update = self.tracker.update(n, gray, detections, frame_bgr)
        t2 = time.perf_counter()
        events: list[Event] = []
        for track in update.lost:
            state = self._faces.pop(track.face_id, None)
            last = state.prediction.label if state and state.prediction else None
            events.append(FaceLost(track.face_id, n, last, timestamp=ts))
        for track in update.appeared:
            self._faces[track.face_id] = _FaceState(make_smoother(self.smoothing, self.history, self.ema_alpha))
            events.append(FaceAppeared(track.face_id, track.box, n, timestamp=ts))
        classified = False
        t_smooth = 0.0
        for track in update.tracks:
            state = self._faces[track.face_id]
            if n - state.last_classified < self.classify_every or track.held:
                continue
            probs = self.classifier.classify(frame_bgr, track.box)
            ts0 = time.perf_counter()
            state.prediction = decide(self.labels, state.smoother.update(probs), self.uncertain_below)
            t_smooth += time.perf_counter() - ts0
            state.last_classified = n
            classified = True
        t3 = time.perf_counter()
        if classified or update.lost:
            events.append(self._emotion_event(n, ts, update.tracks))
        self.times = StageTimes(t1 - t0, t2 - t1, t3 - t2 - t_smooth, t_smooth)
        return events

    def _emotion_event(self, n: int, ts: float, tracks: tuple) -> EmotionEvent:
        faces = []
        for track in tracks:
            pred = self._faces[track.face_id].prediction
            if pred is not None:
                faces.append(FaceEmotion(track.face_id, track.box, track.score, pred, track.held))
        scene_pred = None
        if faces:
            mean = np.mean([[f.prediction.probabilities[label] for label in self.labels] for f in faces], axis=0)
            scene_pred = decide(self.labels, mean, self.uncertain_below)
        return EmotionEvent(n, tuple(faces), SceneEmotion(len(faces), scene_pred), timestamp=ts)
