"""The newest analysed frame with its face boxes, drawn and JPEG-encoded only when a viewer asks.

The main loop only stores a reference (``on_frame``); drawing and encoding run in the HTTP threads,
once per new frame however many viewers share it. In privacy mode the stored frame is dropped and
only a placeholder is ever encoded, so no stale camera picture can leak out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from emotiond.events import UNCERTAIN, EmotionEvent, Event, FaceLost, PrivacyEvent
from emotiond.web.backend import FaceBox

GREEN, YELLOW, RED = (0, 200, 0), (0, 215, 255), (60, 60, 230)  # BGR


def draw_overlay(image: np.ndarray, boxes: tuple[FaceBox, ...], labels: dict[int, str]) -> np.ndarray:
    """A copy of the frame with each face's box, id and label; held boxes yellow, unreadable ones red."""
    out = image.copy()
    for face in boxes:
        x, y, w, h = face.box
        color = RED if face.reason else YELLOW if face.held else GREEN
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 2)
        text = f"#{face.face_id} {face.reason or labels.get(face.face_id, '...')}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(y - th - 6, 0)
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + 6), color, -1)
        cv2.putText(out, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def placeholder(text: str) -> np.ndarray:
    img = np.zeros((120, 320, 3), np.uint8)
    cv2.putText(img, text, (10, 65), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (200, 200, 200), 1, cv2.LINE_AA)
    return img


class FrameStore:
    """Shared by the frame listener (writer) and every picture viewer (readers)."""

    def __init__(self, jpeg_quality: int, private: Callable[[], bool]) -> None:
        self.jpeg_quality = jpeg_quality
        self._private = private
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._boxes: tuple[FaceBox, ...] = ()
        self._labels: dict[int, str] = {}
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._closed = False
        self.encoded = 0  # camera frames encoded so far: stays 0 while nobody watches

    def on_frame(self, image: np.ndarray, boxes: tuple[FaceBox, ...]) -> None:
        with self._cond:
            self._frame, self._boxes = image, boxes
            self._seq += 1
            self._cond.notify_all()

    def on_event(self, event: Event) -> None:
        with self._cond:
            if isinstance(event, EmotionEvent):
                for face in event.faces:
                    if face.quality_reason and face.prediction.label == UNCERTAIN:  # say why, not a guess
                        self._labels[face.face_id] = face.quality_reason.replace("_", " ")
                    else:
                        self._labels[face.face_id] = f"{face.prediction.label} {face.prediction.confidence:.0%}"
            elif isinstance(event, FaceLost):
                self._labels.pop(event.face_id, None)
            elif isinstance(event, PrivacyEvent) and event.enabled:
                self._frame, self._boxes = None, ()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def next_jpeg(self, after: int, timeout: float = 2.0) -> tuple[int, bytes]:
        """The JPEG of the first frame newer than ``after`` (or a placeholder), encoded at most once."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed and not self._private() and (self._frame is None or self._seq <= after):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
            if self._private():
                self._frame, self._boxes = None, ()
                return after, self._encode(placeholder("privacy mode: camera off"))
            if self._frame is None:
                return after, self._encode(placeholder("waiting for the camera..."))
            if self._jpeg[0] == self._seq:
                return self._jpeg
            seq, frame, boxes, labels = self._seq, self._frame, self._boxes, dict(self._labels)
        jpeg = self._encode(draw_overlay(frame, boxes, labels))
        with self._cond:
            self.encoded += 1
            if seq >= self._jpeg[0]:
                self._jpeg = (seq, jpeg)
        return seq, jpeg

    def _encode(self, image: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return buf.tobytes() if ok else b""
