"""Reading a clip with OpenCV: probe it, stream its frames, fetch chosen frames by index.

Clips are read sequentially (twice: once to score, once to fetch keyframes and flow pairs) rather
than by seeking, because frame-accurate seeking is unreliable across codecs while a sequential
``grab()`` is not; memory stays bounded on long clips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFAULT_FPS = 25.0  # used when a container does not state its frame rate


class ClipError(Exception):
    """The clip cannot be analysed (unreadable, corrupt, no frames); one line naming the file."""

    exit_status = 65  # sysexits EX_DATAERR


class ClipMissing(ClipError):
    exit_status = 66  # sysexits EX_NOINPUT


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    fps: float
    width: int
    height: int
    frame_count: int  # as stated by the container (may be approximate or 0)
    fps_stated: bool


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ClipError(f"{path}: not a video OpenCV can read (unknown format or corrupt file)")
    return cap


def probe_clip(path: str | Path) -> ClipInfo:
    """Open the clip and decode its first frame; raises ClipError with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise ClipMissing(f"{p}: no such file")
    if not p.is_file():
        raise ClipError(f"{p}: not a file")
    try:
        with p.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ClipError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    cap = _open(p)
    try:
        ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            raise ClipError(f"{p}: no decodable video frames (corrupt or not a video)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        stated = math.isfinite(fps) and 0.5 <= fps <= 1000.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return ClipInfo(p, fps if stated else DEFAULT_FPS, int(frame.shape[1]), int(frame.shape[0]),
                        max(0, count), stated)
    finally:
        cap.release()


def iter_frames(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """Every decodable frame in order, with its index; stops at the end or at the first bad frame."""
    cap = _open(path)
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield index, frame
            index += 1
    finally:
        cap.release()


def read_frames(path: Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames at the given indices (those that exist), decoding only what is needed to reach them."""
    wanted = sorted({int(i) for i in indices if i >= 0})
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    cap = _open(path)
    try:
        last = wanted[-1]
        targets = set(wanted)
        for index in range(last + 1):
            if not cap.grab():
                break
            if index in targets:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    out[index] = frame
    finally:
        cap.release()
    return out
