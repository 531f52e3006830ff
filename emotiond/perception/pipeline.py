"""The face pipeline for one frame: [motion gate] -> detect (every N) -> track -> classify (every K) -> smooth -> events.

Pure: a frame in, events out; no threads, files or MQTT, so tests and benchmarks drive it directly.
With the motion gate, an empty still room is analysed at the idle rate (``wants`` tells the capture
thread which frames it may skip undecoded) and detection runs on every idle frame and on the frame
that wakes it, so a face walking in is found at once.
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
from emotiond.perception.face_detect import FaceDetector, clip_box, levelling_roll
from emotiond.perception.face_path import build_face_models
from emotiond.perception.face_quality import FaceQuality, assess
from emotiond.perception.motion import MotionDetector, MotionGate
from emotiond.perception.tracking import FaceTracker, Track


@dataclass
class StageTimes:
    """Seconds spent per stage on the last frame (read by the benchmark)."""

    detect: float = 0.0
    track: float = 0.0
    expression: float = 0.0
    smooth: float = 0.0
    motion: float = 0.0
    detected: bool = False  # the detector ran on this frame


@dataclass
class _FaceState:
    smoother: Smoother
    prediction: Prediction | None = None
    last_classified: int = -(10**9)
    quality: FaceQuality | None = None
    classified: int = 0  # times this face was classified
    readable: bool = True  # the last reading was taken (see FacePipeline._readable)


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
    gate: MotionGate | None = None  # None: every frame is analysed
    min_quality: float = 0.3
    sure_confidence: float = 0.8  # below min_quality, still read a face the model is at least this sure of
    zoom_align: bool = True  # measure a face's roll again in a view zoomed on it before reading it
    times: StageTimes = field(default_factory=StageTimes)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every track and smoothing state: the next frame is treated as the first."""
        self.tracker = FaceTracker(self.hold_frames, self.match_iou)
        self._faces: dict[int, _FaceState] = {}
        self._frame = -1
        self._last_detect = -(10**9)

    @classmethod
    def from_config(cls, config: Config) -> FacePipeline:
        # One OpenCV thread: the face path works on small images while the capture and dispatcher
        # threads share the cores, and OpenCV's pool then stalls more than it helps (measured on the
        # loaded 2-core bench machine: flat-out 0.6 cores and 150 fps with the pool, 1.1 and 340 without).
        cv2.setNumThreads(1)
        models = build_face_models(config)
        e, m = config.expression, config.motion
        gate = MotionGate(MotionDetector(m.threshold, m.min_area), config.camera.fps, m.idle_fps, m.idle_after) \
            if m.enabled else None
        return cls(models.detector, models.classifier, config.faces.detect_every, e.every, config.faces.hold_frames,
                   config.faces.match_iou, e.smoothing, e.history, e.ema_alpha, e.uncertain_below,
                   gate=gate, min_quality=e.min_quality, sure_confidence=e.sure_confidence, zoom_align=e.zoom_align)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    def classify_still(self, image_bgr: np.ndarray) -> tuple[FaceEmotion, ...]:
        """Every face in one still image, through the same steps as a first video frame (detect,
        track, classify, decide); the state is reset before and after, so images do not influence
        each other."""
        self.reset()
        gate, self.gate = self.gate, None  # a still is always analysed: no idle rate
        try:
            events = self.process(image_bgr, 0.0)
        finally:
            self.gate = gate
            self.reset()
        return next((e.faces for e in events if isinstance(e, EmotionEvent)), ())

    @property
    def idle(self) -> bool:
        return self.gate is not None and self.gate.idle

    def wants(self, index: int) -> bool:
        """Whether the source frame at ``index`` needs decoding. The capture thread asks; the gate
        keeps the two threads' writes apart (see ``MotionGate.wants``)."""
        return self.gate is None or self.gate.wants(index)

    def process(self, frame_bgr: np.ndarray, timestamp: float | None = None, index: int | None = None) -> list[Event]:
        """Advance one frame; returns face appeared/lost events and, when faces were classified, an
        EmotionEvent with every tracked face and the scene aggregate. ``index`` is the frame's place
        in the source (default: this call's number); while idle, frames the gate does not want are
        passed over with no events."""
        ts = time.time() if timestamp is None else timestamp
        self._frame += 1
        n = self._frame
        gate = self.gate
        source_index = n if index is None else index
        if gate is not None and not gate.wants(source_index):
            self.times = StageTimes()
            return []
        tm = time.perf_counter()
        was_idle = motion = False
        if gate is not None:
            was_idle = gate.idle
            motion = gate.observe(source_index, frame_bgr, len(self.tracker.tracks))
        t0 = time.perf_counter()
        cadence = was_idle or n - self._last_detect >= self.detect_every  # idle and waking frames: at once
        if cadence:
            self._last_detect = n
        # Also every frame while a face is held or followed by prediction only: the sooner a face
        # that stopped or turned back is found again, the sooner its box is right. Faces the flow
        # follows, and a still room, pay nothing for this, and the regular cadence keeps its phase.
        detect = cadence or any(t.held or t.coasting for t in self.tracker.tracks)
        detections = self.detector.detect(frame_bgr) if detect else None
        t1 = time.perf_counter()
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)  # once per frame, shared by every stage
        update = self.tracker.update(n, gray, detections, frame_bgr)
        if gate is not None:
            gate.settle(len(update.tracks), motion)
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
            roll = self._roll_for(frame_bgr, track)
            probs = self.classifier.classify(face_frame, track.box, roll, self._scales_for(state))
            state.classified += 1
            state.quality = assess(gray, track.box, roll)
            ts0 = time.perf_counter()
            state.prediction = self._decide_face(state, probs)
            t_smooth += time.perf_counter() - ts0
            state.last_classified = n
            classified = True
        t3 = time.perf_counter()
        if classified or update.lost:
            events.append(self._emotion_event(n, ts, update.tracks, gray.shape))
        self.times = StageTimes(t1 - t0, t2 - t1, t3 - t2 - t_smooth, t_smooth, t0 - tm, detect)
        return events

    def _roll_for(self, frame_bgr: np.ndarray, track: Track) -> float | None:
        """The roll that levels this reading's crop: measured again in a view zoomed on the face
        (``BlazeFaceDetector.zoomed``) when the detector can, else the track's from its last
        detection. Why: the whole-frame pass sees a living-room face at 15-20 px, where its eye
        keypoints are off by up to 50 degrees, and a crop levelled by that is turned, not levelled.
        The zoomed box is not used for the crop: it moved readings less steadily than the track's
        (benchmarks/RESULTS.md, session 6)."""
        return levelling_roll(self.detector if self.zoom_align else None, frame_bgr, track.box, track.roll)

    def _scales_for(self, state: _FaceState) -> tuple[float, ...]:
        """Every crop size for a face's first reading (and so for a still); after that one size per
        reading, in turn: the smoother's mean over the last readings then averages the sizes at the
        cost of one crop, and a classifying frame with four faces stays within the latency budget."""
        scales = self.classifier.crop_scales
        if state.classified == 0 or len(scales) == 1:
            return scales
        return (scales[(state.classified - 1) % len(scales)],)

    def needed_confidence(self, quality: float) -> float:
        """The confidence a reading needs before it is taken: ``uncertain_below`` at or above
        ``min_quality``; below it, ``sure_confidence`` rising linearly to 1.0, never met, at quality
        0 (``sure_confidence`` 1.0: never). Why: a poor view is weak evidence, not none. Among the
        poorly seen faces of benchmarks/robustness.py, readings at 0.8 or more agreed with the clean
        reading 14 times in 14 (a broad smile survives blur); the hesitant ones are those that flip,
        so they stay ``uncertain``, as does a crop dark or soft enough to score 0."""
        if quality >= self.min_quality:
            return self.uncertain_below
        start = max(self.sure_confidence, self.uncertain_below)
        if start >= 1.0 or quality <= 0.0:
            return float("inf")
        shortfall = 1.0 - quality / self.min_quality  # 0 at min_quality .. 1 at quality 0
        return start + (1.0 - start) * shortfall

    def _readable(self, quality: FaceQuality | None, probs: np.ndarray) -> bool:
        return quality is None or float(np.max(probs)) >= self.needed_confidence(quality.score)

    def _decide_face(self, state: _FaceState, probs: np.ndarray) -> Prediction:
        """A readable face updates its smoother; an unreadable one is ``uncertain`` (its reason is in
        the event) and leaves the history alone, so one dark frame does not drag the label."""
        state.readable = self._readable(state.quality, probs)
        if state.readable:
            return decide(self.labels, state.smoother.update(probs), self.uncertain_below)
        guess = decide(self.labels, probs, self.uncertain_below)
        return Prediction(guess.probabilities, UNCERTAIN, guess.confidence)

    def _emotion_event(self, n: int, ts: float, tracks: tuple[Track, ...], size: tuple[int, ...]) -> EmotionEvent:
        faces, readable = [], []
        for track in tracks:
            state = self._faces[track.face_id]
            if state.prediction is not None:
                q = state.quality
                box = clip_box(track.box, size[1], size[0]) or track.box  # a predicted box may reach past the edge
                faces.append(FaceEmotion(track.face_id, box, track.score, state.prediction, track.held,
                                         None if q is None else q.score, None if q is None else q.reason))
                if state.readable:
                    readable.append(faces[-1])
        scene_pred, scene_reason, scene_quality = None, None, None
        if faces:
            # faces weigh by their quality; unreadable ones not at all (unless none is readable)
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
