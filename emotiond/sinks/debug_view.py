"""Optional debug view: the camera with face boxes, ids and labels as an MJPEG stream over HTTP.

The seed's live overlay window, for a device without a screen: open http://HOST:PORT/ in a browser.
The main loop only hands over a reference to each analysed frame; drawing and JPEG encoding happen
in the HTTP threads, only while someone is watching, at most ``fps`` times a second. In privacy mode
no picture is served at all. Off by default and bound to 127.0.0.1 unless configured otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from emotiond.config import DebugViewConfig
from emotiond.context import ComponentContext
from emotiond.events import EmotionEvent, Event, FaceLost

log = logging.getLogger(__name__)

BOUNDARY = "emotiondframe"
PAGE = b"""<!doctype html><html><head><title>emotiond debug view</title></head>
<body style="margin:0;background:#111"><img src="/stream.mjpg" style="max-width:100%" alt="camera"></body></html>
"""
Box = tuple[int, tuple[int, int, int, int], bool]  # face id, (x, y, w, h), held


def draw_overlay(image: np.ndarray, boxes: tuple[Box, ...], labels: dict[int, str]) -> np.ndarray:
    """A copy of the frame with each tracked face's box, id and label (held boxes in yellow)."""
    out = image.copy()
    for face_id, (x, y, w, h), held in boxes:
        color = (0, 215, 255) if held else (0, 200, 0)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 2)
        text = f"#{face_id} {labels.get(face_id, '...')}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(y - th - 6, 0)
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + 6), color, -1)
        cv2.putText(out, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _placeholder(text: str) -> np.ndarray:
    img = np.zeros((120, 320, 3), np.uint8)
    cv2.putText(img, text, (10, 65), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (200, 200, 200), 1, cv2.LINE_AA)
    return img


class DebugView:
    """A daemon component: a frame listener plus a small threaded HTTP server."""

    def __init__(self, config: DebugViewConfig) -> None:
        self.config = config
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._boxes: tuple[Box, ...] = ()
        self._labels: dict[int, str] = {}
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._ctx: ComponentContext | None = None
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.viewers = 0

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    # --- component ------------------------------------------------------------------------------
    def start(self, ctx: ComponentContext) -> None:
        self._ctx = ctx
        try:
            self._server = ThreadingHTTPServer((self.config.host, self.config.port), _handler(self))
        except OSError as exc:
            log.error("debug view disabled: cannot listen on %s:%d (%s)", self.config.host, self.config.port, exc)
            return
        self._server.daemon_threads = True
        ctx.add_frame_listener(self.on_frame)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,), name="debug-view", daemon=True)
        self._thread.start()
        log.info("debug view on http://%s:%d/ (camera picture: keep it private)", self.config.host, self.port)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- main loop side: store references only --------------------------------------------------
    def on_frame(self, image: np.ndarray, events: list[Event]) -> None:
        tracks = self._ctx.tracks() if self._ctx is not None else ()
        boxes = tuple((t.face_id, t.box, t.held) for t in tracks)
        with self._cond:
            for ev in events:
                if isinstance(ev, EmotionEvent):
                    for face in ev.faces:
                        self._labels[face.face_id] = f"{face.prediction.label} {face.prediction.confidence:.0%}"
                elif isinstance(ev, FaceLost):
                    self._labels.pop(ev.face_id, None)
            self._frame, self._boxes = image, boxes
            self._seq += 1
            self._cond.notify_all()

    # --- HTTP side ------------------------------------------------------------------------------
    def _private(self) -> bool:
        return bool(self._ctx is not None and self._ctx.privacy)

    def next_jpeg(self, after: int, timeout: float = 2.0) -> tuple[int, bytes]:
        """The JPEG of the first frame newer than ``after`` (shared by all viewers), encoded on demand."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stop.is_set() and not self._private() and (self._frame is None or self._seq <= after):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
            if self._private():
                self._frame, self._boxes = None, ()  # never show a stale picture after privacy is on
                return after, self._encode(_placeholder("privacy mode: camera off"))
            if self._frame is None:
                return after, self._encode(_placeholder("waiting for the camera..."))
            if self._jpeg[0] == self._seq:
                return self._jpeg
            seq, frame, boxes, labels = self._seq, self._frame, self._boxes, dict(self._labels)
        jpeg = self._encode(draw_overlay(frame, boxes, labels))
        with self._cond:
            if seq >= self._jpeg[0]:
                self._jpeg = (seq, jpeg)
        return seq, jpeg

    def _encode(self, image: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        return buf.tobytes() if ok else b""

    def serve_stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.send_header("Cache-Control", "no-cache, private")
        handler.end_headers()
        period = 1.0 / self.config.fps
        seq = -1
        with self._cond:
            self.viewers += 1
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                seq, jpeg = self.next_jpeg(seq)
                handler.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg + b"\r\n"
                )
                handler.wfile.flush()
                self._stop.wait(max(0.0, period - (time.monotonic() - t0)))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the viewer went away
        finally:
            with self._cond:
                self.viewers -= 1


def _handler(view: DebugView) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "emotiond-debug-view"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, "text/html; charset=utf-8", PAGE)
            elif path == "/stream.mjpg":
                view.serve_stream(self)
            elif path == "/snapshot.jpg":
                self._send(200, "image/jpeg", view.next_jpeg(-1)[1])
            else:
                self._send(404, "text/plain", b"not found: try / or /stream.mjpg\n")

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("debug view %s: " + format, self.address_string(), *args)

    return Handler
