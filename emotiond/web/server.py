"""The dashboard's HTTP server: a daemon component with a small, bounded ThreadingHTTPServer.

Paths: ``/`` the page, ``/stream.mjpg`` the picture, ``/snapshot.jpg`` one picture, ``/events``
every event as Server-Sent Events (the JSON lines of stdout), ``/api/state`` the MQTT state
document, ``/api/recent`` the timeline and the last voice/fused results, and POST ``/api/listen``
and ``/api/privacy``. When a password is set every path needs it. Connections, picture viewers and
event streams are each bounded, and a silent client is dropped after ``request_timeout``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any

from emotiond.config import Config
from emotiond.context import ComponentContext
from emotiond.events import Event
from emotiond.web import dashboard_url
from emotiond.web.auth import REALM, authorized, read_password
from emotiond.web.backend import ContextBackend, FaceBox, WebBackend
from emotiond.web.frames import FrameStore
from emotiond.web.sse import KEEPALIVE_SECONDS, EventHub, format_event
from emotiond.web.state import LiveState

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

BOUNDARY = "emotiondframe"
MAX_BODY = 4096
PAGE_TYPE = "text/html; charset=utf-8"


def load_page() -> bytes:
    return resources.files("emotiond.web").joinpath("page.html").read_bytes()


class _BoundedServer(ThreadingHTTPServer):
    """At most ``max_connections`` handler threads; the next connection gets a one-line 503."""

    daemon_threads = True
    max_connections = 16

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)
        self._active = 0
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._active -= 1


class WebView:
    """Component: serves the dashboard for a ``WebBackend`` (``start`` adapts the component context)."""

    def __init__(self, config: Config, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self.web = config.web
        self.password = read_password(self.web, environ)  # ConfigError now, before anything starts
        m = config.mqtt
        self.state = LiveState(self.web.history_seconds, m.min_interval, m.min_dwell, m.heartbeat)
        self.hub = EventHub(self.web.max_viewers)
        self.frames = FrameStore(self.web.jpeg_quality, self._private)
        self.page = load_page()
        self._backend: WebBackend | None = None
        self._stop = threading.Event()
        self._server: _BoundedServer | None = None
        self._thread: threading.Thread | None = None
        self._viewers = threading.BoundedSemaphore(self.web.max_viewers)

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    @property
    def url(self) -> str | None:
        return dashboard_url(self.config, self.port)

    # --- component ------------------------------------------------------------------------------
    def start(self, ctx: ComponentContext) -> None:
        self.attach(ContextBackend(ctx))

    def attach(self, backend: WebBackend) -> None:
        """Listen and subscribe to ``backend``; a busy port is logged and the dashboard stays off."""
        try:
            server = _BoundedServer((self.web.host, self.web.port), _handler(self))
        except OSError as exc:
            log.error("web dashboard disabled: cannot listen on %s:%d (%s)", self.web.host, self.web.port, exc)
            return
        server.max_connections = self.web.max_connections
        self._backend, self._server = backend, server
        backend.on_event(self.on_event)
        backend.on_frame(self.on_frame)
        self._thread = threading.Thread(target=server.serve_forever, args=(0.2,), name="web", daemon=True)
        self._thread.start()
        log.info("web dashboard on %s%s", self.url, "" if self.password else " (no password: keep it on this machine)")

    def stop(self) -> None:
        self._stop.set()
        self.hub.close()
        self.frames.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- backend side: store only ---------------------------------------------------------------
    def on_frame(self, image: np.ndarray, boxes: tuple[FaceBox, ...]) -> None:
        self.frames.on_frame(image, boxes)

    def on_event(self, event: Event) -> None:
        self.frames.on_event(event)
        self.state.handle(event)
        self.hub.publish(event.to_json())

    def _private(self) -> bool:
        return bool(self._backend is not None and self._backend.privacy)

    # --- requests -------------------------------------------------------------------------------
    def state_document(self) -> dict[str, Any]:
        return self.state.state(self._private(), self.hub.dropped)

    def run_command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if self._backend is None:
            return {"ok": False, "error": "not attached"}
        return self._backend.command(name, args)

    def serve_stream(self, handler: BaseHTTPRequestHandler) -> None:
        if not self._viewers.acquire(blocking=False):
            handler.send_error(503, "too many viewers")
            return
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            handler.send_header("Cache-Control", "no-cache, private")
            handler.end_headers()
            period = 1.0 / self.web.fps
            seq = -1
            while not self._stop.is_set():
                t0 = time.monotonic()
                seq, jpeg = self.frames.next_jpeg(seq)
                handler.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg + b"\r\n"
                )
                handler.wfile.flush()
                self._stop.wait(max(0.0, period - (time.monotonic() - t0)))
        except OSError:
            pass  # the viewer went away or stalled past request_timeout
        finally:
            self._viewers.release()

    def serve_events(self, handler: BaseHTTPRequestHandler) -> None:
        sub = self.hub.subscribe()
        if sub is None:
            handler.send_error(503, "too many event streams")
            return
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "no-cache, private")
            handler.end_headers()
            handler.wfile.write(b"retry: 3000\n\n")
            handler.wfile.flush()
            while not self._stop.is_set() and not self.hub.closed:
                item = sub.get(KEEPALIVE_SECONDS)
                handler.wfile.write(format_event(item[1], item[0]) if item else b": keepalive\n\n")
                handler.wfile.flush()
        except OSError:
            pass
        finally:
            sub.close()


def _handler(view: WebView) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "emotiond-web"
        timeout = view.web.request_timeout  # socket timeout: slow requests and stalled viewers are dropped

        def do_GET(self) -> None:
            if not self._allowed():
                return
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, PAGE_TYPE, view.page)
            elif path == "/stream.mjpg":
                view.serve_stream(self)
            elif path == "/snapshot.jpg":
                self._send(200, "image/jpeg", view.frames.next_jpeg(-1, timeout=0.5)[1])
            elif path == "/events":
                view.serve_events(self)
            elif path == "/api/state":
                self._json(200, view.state_document())
            elif path == "/api/recent":
                self._json(200, view.state.recent(view._private()))
            else:
                self._send(404, "text/plain", b"not found: try /, /stream.mjpg, /events or /api/state\n")

        def do_POST(self) -> None:
            if not self._allowed():
                return
            path = self.path.split("?", 1)[0]
            if path not in ("/api/listen", "/api/privacy"):
                self._send(404, "text/plain", b"not found: POST /api/listen or /api/privacy\n")
                return
            args = self._body()
            if args is None:
                return
            if path == "/api/listen":
                result = view.run_command("capture_audio", {**args, "trigger": "web"})
            else:
                result = view.run_command("privacy", args)
            self._json(200 if result.get("ok") else 400, result)

        def _body(self) -> dict[str, Any] | None:
            """The JSON object posted (may be empty); JSON only, so a cross-site form cannot post."""
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                self._json(415, {"ok": False, "error": "send Content-Type: application/json"})
                return None
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._json(413, {"ok": False, "error": f"body must be 0 to {MAX_BODY} bytes"})
                return None
            raw = self.rfile.read(length) if length else b"{}"
            try:
                args = json.loads(raw or b"{}")
            except (ValueError, UnicodeDecodeError):
                args = None
            if not isinstance(args, dict):
                self._json(400, {"ok": False, "error": "body must be a JSON object"})
                return None
            return args

        def _allowed(self) -> bool:
            if authorized(self.headers.get("Authorization"), view.password):
                return True
            body = b"password required (user emotiond)\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return False

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(body).encode())

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("web %s: " + format, self.address_string(), *args)

    return Handler
