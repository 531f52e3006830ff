"""Frame sources behind one small protocol: OpenCV (device, file, URL), picamera2, image folders.

``LatestFrameGrabber`` runs a source on its own thread and keeps only the newest frame, so when
inference is slower than the camera, stale frames are dropped instead of queued (no growing lag).
Given a ``want`` predicate (the motion gate's), it passes over unwanted frames with the source's
``skip``, which advances without producing an image (cheaper than ``read``).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from emotiond.redact import redact

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class SourceError(Exception):
    """The camera or file cannot be opened or read; the message says what to check.

    The message is redacted on creation: it names the camera URL, and it travels to logs, error
    events and the systemd STATUS line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR uint8
    index: int  # position in the source (counts dropped frames too)
    timestamp: float  # wall clock when captured


class FrameSource(Protocol):
    """Sources may also have ``skip() -> bool``: advance past a frame without producing its image
    (False at the end); the grabber uses it for frames the motion gate does not want."""

    fps: float

    def read(self) -> np.ndarray | None:
        """Next BGR frame, or None at the end of a finite source."""

    def close(self) -> None: ...


def source_kind(spec: str) -> str:
    """``device``, ``url`` or ``file``: what a config string names, decided before anything is opened.

    A device index, anything under /dev (``/dev/video0``, the stable ``/dev/v4l/by-id/...`` symlinks,
    even while unplugged) and any character device are cameras; "://" is a stream. Only what is left
    is a file, and only a regular file that does not loop may end the daemon with exit 0; every other
    source that stops delivering is a fault (error event, reconnect loop).
    """
    if spec.isdigit():
        return "device"
    if "://" in spec:
        return "url"
    if spec.startswith("/dev/"):
        return "device"
    try:
        if stat.S_ISCHR(os.stat(spec).st_mode):  # follows symlinks: a by-id link elsewhere
            return "device"
    except (OSError, ValueError):
        pass
    return "file"


class OpenCVSource:
    """A V4L2 device (index or path), a video file or a stream URL; files can loop for demos."""

    def __init__(self, spec: str, width: int = 640, height: int = 480, fps: float = 30.0, loop: bool = False) -> None:
        self.spec = spec
        self.loop = loop
        self.kind = source_kind(spec)
        target: int | str = int(spec) if spec.isdigit() else spec
        self.is_file = self.kind == "file" and Path(spec).is_file()
        if self.kind == "device" and isinstance(target, str):
            if not os.path.exists(spec):
                raise SourceError(f"camera device {spec!r} is not present (unplugged? try `emotiond devices`)")
            target = os.path.realpath(spec)  # by-id symlink -> /dev/videoN, which V4L2 opens
        elif self.kind == "file" and not self.is_file:
            why = "no such file" if not Path(spec).exists() else "not a regular file"
            raise SourceError(f"camera source {spec!r}: {why} (give a device index, a video path or a URL)")
        if self.kind == "device" and isinstance(target, str):
            self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        else:
            self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            what = {"device": f"camera device {target if isinstance(target, int) else repr(spec)}",
                    "url": f"stream {spec!r}"}.get(self.kind, f"video {spec!r}")
            raise SourceError(f"{what} cannot be opened (is it plugged in / readable? try `emotiond devices`)")
        if self.kind == "device":
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        reported = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(reported) if reported and 0 < reported < 1000 else fps
        self._identity = self._file_identity() if self.is_file else (0, 0, 0)

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok and self.is_file and self.loop:
            self._rewind()
            ok, frame = self._cap.read()
            if not ok:  # truncated or rewritten in place: a fault, never "source ended"
                raise SourceError(f"looped video {self.spec!r} no longer yields frames (truncated or replaced?)")
        if not ok:
            if self.is_file and not self.loop:
                return None
            raise SourceError(f"camera {self.spec!r} stopped delivering frames")
        return frame

    def _file_identity(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.spec)
        except OSError:
            raise SourceError(f"looped video {self.spec!r} is gone") from None
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(f"looped video {self.spec!r} is no longer a regular file")
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _rewind(self) -> None:
        """Back to the first frame; reopened when the file changed (FFmpeg keeps playing stale buffers
        of a file truncated in place, so seeking alone would hide the fault forever)."""
        identity = self._file_identity()
        if identity == self._identity:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            return
        self._cap.release()
        self._cap = cv2.VideoCapture(self.spec)
        self._identity = identity
        if not self._cap.isOpened():
            raise SourceError(f"looped video {self.spec!r} cannot be reopened after it changed (truncated or replaced?)")

    def skip(self) -> bool:
        """``grab`` without ``retrieve``. What that saves depends on the backend: for a V4L2 camera
        grab only dequeues the buffer and retrieve does the MJPEG decode or YUYV conversion; for a
        file or stream FFmpeg must still decode every frame (later frames depend on it), and
        retrieve is the conversion to BGR (about half of ``read`` for 640x480 mp4v here)."""
        if self._cap.grab():
            return True
        if self.is_file and self.loop:
            self._rewind()
            if self._cap.grab():
                return True
            raise SourceError(f"looped video {self.spec!r} no longer yields frames (truncated or replaced?)")
        if self.is_file:
            return False
        raise SourceError(f"camera {self.spec!r} stopped delivering frames")

    def close(self) -> None:
        self._cap.release()


class ImageDirSource:
    """Every image in a folder, in name order (for tests and offline runs)."""

    def __init__(self, folder: str, fps: float = 5.0, loop: bool = False) -> None:
        self.folder = Path(folder)
        found = self.folder.iterdir() if self.folder.is_dir() else ()
        self.paths = sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"image folder {folder!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.fps = fps
        self.loop = loop
        self._i = 0

    def read(self) -> np.ndarray | None:
        for _ in range(len(self.paths) + 1):  # one whole pass at most: a looped folder of bad images must not spin
            if self._i >= len(self.paths):
                if not self.loop:
                    return None
                self._i = 0
            path = self.paths[self._i]
            self._i += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            log.warning("skipping unreadable image %s", path)
        raise SourceError(f"image folder {str(self.folder)!r}: no image is readable any more")

    def skip(self) -> bool:
        """The next image's turn passes without reading the file."""
        if self._i >= len(self.paths):
            if not self.loop:
                return False
            self._i = 0
        self._i += 1
        return True

    def close(self) -> None:
        pass


class Picamera2Source:
    """The Pi camera via picamera2 (Debian's python3-picamera2), imported only when configured."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(
                "camera source 'picamera2' needs the picamera2 module: on Raspberry Pi OS run "
                "`sudo apt install python3-picamera2` and use a venv made with --system-site-packages"
            ) from None
        try:
            self._cam = Picamera2()
            cfg = self._cam.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"}, controls={"FrameRate": fps}
            )
            self._cam.configure(cfg)
            self._cam.start()
        except Exception as exc:  # picamera2 raises many types; all mean "no usable camera"
            raise SourceError(f"Pi camera cannot be started ({exc}); check the ribbon cable and `rpicam-hello`") from None
        self.fps = fps

    def read(self) -> np.ndarray | None:
        # picamera2's "RGB888" is laid out B, G, R in memory: already what OpenCV calls BGR.
        return self._cam.capture_array("main")

    def skip(self) -> bool:
        """There is nothing to decode: the ISP already delivers BGR. The saving is the copy into a
        numpy array; the request is waited for (keeping the camera's pace) and handed straight back."""
        self._cam.capture_request().release()
        return True

    def close(self) -> None:
        self._cam.stop()
        self._cam.close()


def open_source(spec: str, width: int = 640, height: int = 480, fps: float = 30.0, loop: bool = False) -> FrameSource:
    """Pick the source kind from the config string: ``picamera2``, a folder, a device index, a file or a URL."""
    if spec == "picamera2":
        return Picamera2Source(width, height, fps)
    if Path(spec).is_dir():
        return ImageDirSource(spec, fps, loop)
    return OpenCVSource(spec, width, height, fps, loop)


def iterate(source: FrameSource, limit: int | None = None) -> Iterator[Frame]:
    """Every frame of a finite source, synchronously (demo, analyse, tests)."""
    index = 0
    while limit is None or index < limit:
        image = source.read()
        if image is None:
            return
        yield Frame(image, index, time.time())
        index += 1


class LatestFrameGrabber:
    """Reads a source on its own thread; ``get`` returns only the newest frame not yet taken.

    File sources are paced at their frame rate so a video behaves like a camera.
    """

    def __init__(self, source: FrameSource, pace: bool = False, lossless: bool = False,
                 want: Callable[[int], bool] | None = None) -> None:
        self.source = source
        self.pace = pace
        self.lossless = lossless  # wait for each frame to be taken (demo/analysis: every frame counts)
        self.want = want  # None: every frame; else frames it refuses are skipped undecoded
        self.skipped = 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken_index = -1
        self._stop = threading.Event()
        self.dropped = 0
        self.captured = 0
        self.error: Exception | None = None
        self.finished = False
        self.last_frame_time = 0.0
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> LatestFrameGrabber:
        self._thread.start()
        return self

    def _run(self) -> None:
        period = 1.0 / self.source.fps if self.pace and self.source.fps > 0 else 0.0
        next_due = time.monotonic()
        index = 0
        try:
            while not self._stop.is_set():
                if self.want is not None and not self.want(index):
                    if not self._skip():
                        break
                    self.skipped += 1
                    index += 1
                    if period:
                        next_due = self._wait_until(next_due + period)
                    continue
                image = self.source.read()
                if image is None:
                    break
                with self._cond:
                    while self.lossless and not self._stop.is_set() and self._latest is not None \
                            and self._latest.index > self._taken_index:
                        self._cond.wait(0.1)
                    if self._latest is not None and self._latest.index > self._taken_index:
                        self.dropped += 1
                    self._latest = Frame(image, index, time.time())
                    self.captured += 1
                    self.last_frame_time = time.monotonic()
                    self._cond.notify_all()
                index += 1
                if period:
                    next_due = self._wait_until(next_due + period)
        except Exception as exc:  # surfaced to the main loop, which reports and reconnects
            self.error = exc
        finally:
            with self._cond:
                self.finished = True
                self._cond.notify_all()

    def _wait_until(self, due: float) -> float:
        """Pace a file like a camera; returns when the next frame is due (now, if running late)."""
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
            return due
        return time.monotonic()

    def _skip(self) -> bool:
        skip = getattr(self.source, "skip", None)
        if skip is not None:
            return bool(skip())
        return self.source.read() is not None  # a source that cannot skip still decodes, unanalysed

    def get(self, timeout: float = 1.0) -> Frame | None:
        """The newest untaken frame, waiting up to ``timeout``; None if none came (or the source ended)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest.index <= self._taken_index:
                remaining = deadline - time.monotonic()
                if self.finished or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._taken_index = self._latest.index
            self._cond.notify_all()
            return self._latest

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.source.close()
