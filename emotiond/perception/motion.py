"""Motion gate: which frames the face pipeline analyses, decided from a tiny grey copy of each frame.

Why: most of the day the room is empty, and running the detector on a picture that never changes
costs more than decoding it. With no face tracked and nothing moving, the gate asks for one frame
per ``stride`` (the idle rate) and the capture thread skips the others undecoded; motion, or a face
the detector finds at the idle rate, wakes full-rate analysis on that very frame.

Light that changes slowly or evenly is not motion: a dimming lamp, sunset or the camera's auto
exposure scales the whole picture (in gamma-encoded pixels too, since (g*L)^y = g^y * L^y), so the
gain between the frame and the background is estimated robustly (the median per-pixel ratio, which
a person covering part of the picture does not move) and divided out before comparing; the
background then follows what is left of slow local change with a time constant of ``adapt_frames``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SMALL_WIDTH = 80  # pixels across the grey copy: 8x8 blocks of a 640x480 frame, sensor noise averaged out
DARK = 8.0  # background pixels darker than this carry no usable gain information


class MotionDetector:
    """Is a frame different from the slowly adapting background, after dividing out global gain?"""

    def __init__(self, threshold: float = 20.0, min_area: float = 0.005, adapt_frames: float = 30.0) -> None:
        self.threshold = threshold  # grey levels (0-255) a pixel must change by
        self.min_area = min_area  # share of the picture that must change
        self.adapt_frames = adapt_frames  # background time constant, in source frames
        self.background: np.ndarray | None = None
        self.changed = 0.0  # share of the picture that changed on the last frame (for logs and tests)
        self.gain = 1.0  # last estimated frame / background brightness ratio

    def small_grey(self, frame_bgr: np.ndarray) -> np.ndarray:
        h, w = frame_bgr.shape[:2]
        size = (min(SMALL_WIDTH, w), max(1, round(h * min(SMALL_WIDTH, w) / w)))
        small = cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return grey.astype(np.float32)

    def reset(self) -> None:
        self.background = None

    def update(self, frame_bgr: np.ndarray, frames_since: int = 1) -> bool:
        """Compare ``frame_bgr`` with the background, then fold it in; True when something moved.

        ``frames_since`` is how many source frames passed since the last call, so the background
        adapts at the same speed in real time whether every frame or one in fifteen is looked at.
        The first frame (or one of a new size) only starts the background.
        """
        grey = self.small_grey(frame_bgr)
        bg = self.background
        if bg is None or bg.shape != grey.shape:
            self.background, self.changed, self.gain = grey, 0.0, 1.0
            return False
        lit = bg > DARK
        gain = float(np.median(grey[lit] / bg[lit])) if lit.any() else 1.0
        expected = bg * gain
        self.changed = float(np.count_nonzero(np.abs(grey - expected) > self.threshold)) / grey.size
        alpha = 1.0 - math.exp(-max(1, frames_since) / self.adapt_frames)
        self.background = expected + alpha * (grey - expected)
        self.gain = gain
        return self.changed >= self.min_area


class MotionGate:
    """Awake: every frame is analysed. Idle (no face tracked and no motion for ``idle_after``
    analysed frames): only one source frame in ``stride``, each still checked for motion and faces.

    Driven by source frame indices, so it works the same when the caller analyses every frame it
    is given (files, tests) and when the capture thread skips unwanted frames undecoded. With a
    camera the capture thread waits a frame period between questions, far longer than analysing an
    idle frame takes; a file read flat out (``lossless``, unpaced) can have skipped a few more
    frames by the time the wake is seen.
    """

    def __init__(self, detector: MotionDetector, fps: float, idle_fps: float, idle_after: int) -> None:
        self.detector = detector
        self.stride = max(1, round(fps / idle_fps))
        self.idle_after = idle_after
        self.idle = False  # start awake: a new camera is looked at properly first
        self.wakes = 0  # times motion or a face ended an idle spell
        # source index of the last frame analysed: written by ``observe`` while awake and by ``wants``
        # (the capture thread's claim) while idle, never by both at once
        self._last: int | None = None
        self._watched: int | None = None  # source index of the last frame given to the detector
        self._still = 0  # analysed frames in a row with no face and no motion

    def wants(self, index: int) -> bool:
        """Should the frame at this source index be decoded and analysed? (Called from the capture thread.)

        While idle, a yes claims the frame at once, so the frames after it are skipped even before
        it has been analysed; asking again about a claimed frame (the main thread does) is still
        yes. Index 0 is a new source (a reconnected camera): it is always wanted."""
        if not self.idle:
            return True
        last = self._last
        if last is None or index == 0 or index - last >= self.stride:
            self._last = index
            return True
        return index <= last

    def observe(self, index: int, frame_bgr: np.ndarray, faces_tracked: int) -> bool:
        """Note that the frame at ``index`` is being analysed; True when it shows motion. Motion is
        only looked for with no face tracked: then it is what decides between idle and awake."""
        if not self.idle:  # while idle, ``wants`` (whichever thread asked first) has claimed it already
            self._last = index
        if faces_tracked:
            self._watched = None  # the background is stale by the time the faces are gone
            return False
        since = 1 if self._watched is None or index <= self._watched else index - self._watched
        if self._watched is None:
            self.detector.reset()
        self._watched = index
        return self.detector.update(frame_bgr, since)

    def settle(self, faces_tracked: int, motion: bool) -> None:
        """After the frame was analysed: wake on a face or motion, go idle after enough still frames."""
        if faces_tracked or motion:
            if self.idle:
                self.wakes += 1
            self.idle = False
            self._still = 0
            return
        self._still += 1
        if self._still >= self.idle_after:
            self.idle = True
