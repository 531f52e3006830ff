"""The face pipeline for one frame: detect (every N) -> track -> classify (every K) -> smooth -> events.

Pure: a frame in, events out; no threads, files or MQTT, so tests and benchmarks drive it directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from emotiond.config import Config
from emotiond.events import UNCERTAIN, EmotionEvent, Event, FaceAppeared, FaceEmotion, FaceLost, Prediction, SceneEmotion
from emotiond.fusion.smoothing import Smoother, decide, make_smoother
from emotiond.perception.expression import ExpressionClassifier
from emotiond.perception.face_detect import FaceDetector, clip_box, make_detector
from emotiond.perception.face_quality import FaceQuality, assess
from emotiond.perception.tracking import FaceTracker, Track


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
    quality: FaceQuality | None = None


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
    min_quality: float = 0.3
    times: StageTimes = field(default_factory=StageTimes)

    def __post_init__(self) -> None:
        self.tracker = FaceTracker(self.hold_frames, self.match_iou)
        self._faces: dict[int, _FaceState] = {}
        self._frame = -1

    @classmethod
    def from_config(cls, config: Config) -> FacePipeline:
        # One OpenCV thread: the face path works on small images while the capture and dispatcher
        # threads share the cores, and OpenCV's pool then stalls more than it helps (measured on the
        # loaded 2-core bench machine: flat-out 0.6 cores and 150 fps with the pool, 1.1 and 340 without).
        cv2.setNumThreads(1)
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
            config.expression.face_margin, config.expression.mirror_average,
        )
        e = config.expression
        return cls(detector, classifier, config.faces.detect_every, e.every, config.faces.hold_frames,
                   config.faces.match_iou, e.smoothing, e.history, e.ema_alpha, e.uncertain_below, e.min_quality)

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
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)  # once per frame, shared by every stage
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
            face_frame = gray if self.classifier.gray else frame_bgr
            probs = self.classifier.classify(face_frame, track.box, track.roll)
            state.quality = assess(gray, track.box, track.roll)
            ts0 = time.perf_counter()
            state.prediction = self._decide_face(state, probs)
            t_smooth += time.perf_counter() - ts0
            state.last_classified = n
            classified = True
        t3 = time.perf_counter()
        if classified or update.lost:
            events.append(self._emotion_event(n, ts, update.tracks, gray.shape))
        self.times = StageTimes(t1 - t0, t2 - t1, t3 - t2 - t_smooth, t_smooth)
        return events

    def _readable(self, quality: FaceQuality | None) -> bool:
        return quality is None or quality.score >= self.min_quality

    def _decide_face(self, state: _FaceState, probs: np.ndarray) -> Prediction:
        """A readable face updates its smoother; an unreadable one is ``uncertain`` (its reason is in
        the event) and leaves the history alone, so one dark frame does not drag the label."""
        if self._readable(state.quality):
            return decide(self.labels, state.smoother.update(probs), self.uncertain_below)
        guess = decide(self.labels, probs, self.uncertain_below)
        return Prediction(guess.probabilities, UNCERTAIN, guess.confidence)

    def _emotion_event(self, n: int, ts: float, tracks: tuple[Track, ...], size: tuple[int, ...]) -> EmotionEvent:
        faces = []
        for track in tracks:
            state = self._faces[track.face_id]
            if state.prediction is not None:
                q = state.quality
                box = clip_box(track.box, size[1], size[0]) or track.box  # a predicted box may reach past the edge
                faces.append(FaceEmotion(track.face_id, box, track.score, state.prediction, track.held,
                                         None if q is None else q.score, None if q is None else q.reason))
        scene_pred, scene_reason, scene_quality = None, None, None
        if faces:
            # faces weigh by their quality; unreadable ones not at all (unless none is readable)
            readable = [f for f in faces if f.quality is None or f.quality >= self.min_quality]
            if readable:
                weights = np.array([1.0 if f.quality is None else max(f.quality, 1e-3) for f in readable])
                probs = np.array([[f.prediction.probabilities[label] for label in self.labels] for f in readable])
                scene_pred = decide(self.labels, weights @ probs / weights.sum(), self.uncertain_below)
                scene_quality = float(weights.mean())
            else:
                reasons = [f.quality_reason for f in faces if f.quality_reason]
                scene_reason = max(set(reasons), key=reasons.count) if reasons else None
                mean = np.mean([[f.prediction.probabilities[label] for label in self.labels] for f in faces], axis=0)
                guess = decide(self.labels, mean, self.uncertain_below)
                scene_pred = Prediction(guess.probabilities, UNCERTAIN, guess.confidence)
                scene_quality = float(np.mean([f.quality or 0.0 for f in faces]))
        scene = SceneEmotion(len(faces), scene_pred, scene_reason, scene_quality)
        return EmotionEvent(n, tuple(faces), scene, timestamp=ts)
