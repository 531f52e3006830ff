"""What starts a voice capture, behind one small interface: ``start(callback)`` / ``stop()``.

``callback(source_name, duration=None)`` is AudioCapture.trigger: it never blocks. Triggers:
- ``GpioButtonTrigger``: a push button on a GPIO pin (gpiozero). A short press (released before
  ``hold_time``) starts a capture; holding it runs the long-press action (privacy toggle). Both also
  emit a ButtonEvent so Home Assistant can use the button as a device trigger.
- ``SignalTrigger``: SIGUSR1 (``systemctl kill -s USR1 emotiond``). The handler only writes a byte
  to a pipe; a thread does the work, so nothing unsafe runs inside the signal handler.
- ``ControlSocketTrigger``: a local Unix stream socket taking one JSON command per connection, e.g.
  ``{"command": "capture_audio", "duration": 2}``; the reply is ``daemon.command()``'s result as
  one JSON line. ``emotiond trigger`` is its client. A few connections at a time, each with a
  deadline for its whole request and a bounded request size, so a stuck or hostile local client
  cannot pile up threads; its directory, when inside a world-writable one such as ``/tmp``, must
  be ours and private (created 0700, refused otherwise).
- MQTT: the MQTT sink calls ``daemon.command("capture_audio", args)`` itself (no class here).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from emotiond.commands import PayloadError, encode_answer, parse_object
from emotiond.events import ButtonEvent, Event

log = logging.getLogger(__name__)

TriggerCallback = Callable[..., Any]
MAX_REQUEST_BYTES = 65536
MAX_CONNECTIONS = 4  # requests served at once; more get an immediate "busy" answer
REQUEST_TIMEOUT = 5.0  # seconds for a client to send its whole request (and to take the reply)


class Trigger(Protocol):
    """A source of capture requests that AudioCapture starts with its ``trigger`` and stops with itself."""

    def start(self, callback: TriggerCallback) -> None: ...

    def stop(self) -> None: ...


class GpioButtonTrigger:
    """gpiozero Button: press -> capture, long press -> ``on_long_press`` (e.g. privacy toggle)."""

    def __init__(self, pin: int, pull_up: bool = True, bounce_time: float | None = 0.05, hold_time: float = 2.0,
                 emit: Callable[[Event], None] | None = None, on_long_press: Callable[[], Any] | None = None) -> None:
        self.pin = pin
        self.pull_up = pull_up
        self.bounce_time = bounce_time or None
        self.hold_time = hold_time
        self._emit = emit or (lambda e: None)
        self._on_long_press = on_long_press
        self._button: Any = None
        self._callback: TriggerCallback | None = None
        self._held = False

    def start(self, callback: TriggerCallback) -> None:
        try:
            from gpiozero import Button
        except ImportError:
            raise RuntimeError("the GPIO button needs gpiozero: pip install 'emotiond[gpio]'") from None
        self._callback = callback
        try:
            self._button = Button(self.pin, pull_up=self.pull_up, bounce_time=self.bounce_time, hold_time=self.hold_time)
        except Exception as exc:  # no GPIO chip, pin in use, no pin factory
            raise RuntimeError(f"GPIO{self.pin}: cannot use the button ({exc})") from None
        self._button.when_pressed = self._pressed
        self._button.when_held = self._long_press
        self._button.when_released = self._released

    def _pressed(self) -> None:
        self._held = False

    def _long_press(self) -> None:
        self._held = True
        self._emit(ButtonEvent("long_press"))
        if self._on_long_press is not None:
            try:
                self._on_long_press()
            except Exception:
                log.exception("long-press action failed")

    def _released(self) -> None:
        if self._held:  # the end of a long press is not a short press
            self._held = False
            return
        self._emit(ButtonEvent("press"))
        if self._callback is not None:
            try:
                self._callback("gpio")
            except Exception:
                log.exception("GPIO trigger failed")

    def stop(self) -> None:
        if self._button is not None:
            self._button.close()
            self._button = None


class SignalTrigger:
    """SIGUSR1 starts a capture. Must be started from the main thread (Python's signal rule)."""

    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self.signum = signum
        self._old: Any = None
        self._rfd = self._wfd = -1
        self._thread: threading.Thread | None = None

    def start(self, callback: TriggerCallback) -> None:
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._wfd, False)
        self._thread = threading.Thread(target=self._reader, args=(callback,), name="sigusr1", daemon=True)
        self._thread.start()
        self._old = signal.signal(self.signum, self._handler)

    def _handler(self, _signum: int, _frame: Any) -> None:
        try:
            os.write(self._wfd, b"t")
        except OSError:  # pipe full: a capture request is already pending
            pass

    def _reader(self, callback: TriggerCallback) -> None:
        while True:
            try:
                data = os.read(self._rfd, 64)
            except OSError:
                return
            if not data or b"q" in data:
                return
            try:
                callback("signal")
            except Exception:
                log.exception("signal trigger failed")

    def alive(self) -> bool:
        """The pipe reader still runs (health)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._old is not None:
            try:
                signal.signal(self.signum, self._old)
            except ValueError:  # not the main thread: leave the handler, it only writes to a closed pipe
                pass
            self._old = None
        if self._wfd >= 0:
            try:
                os.write(self._wfd, b"q")
            except OSError:
                pass
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            os.close(self._wfd)
            os.close(self._rfd)
            self._rfd = self._wfd = -1


def default_socket_path() -> Path:
    """$RUNTIME_DIRECTORY (systemd RuntimeDirectory=) or /run/emotiond when writable, else /tmp/emotiond-UID."""
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / "control.sock"
    run = Path("/run/emotiond")
    if run.is_dir() and os.access(run, os.W_OK):
        return run / "control.sock"
    return Path(f"/tmp/emotiond-{os.getuid()}") / "control.sock"


def ensure_socket_dir(folder: Path) -> None:
    """Create the socket's directory, or check it may be trusted; RuntimeError says why not.

    Inside a directory anyone may write to (``/tmp``), another local user could have created ours
    first, or put a symlink there, to catch or replace our socket: such a directory must be a real
    directory owned by us with no group/other access (created 0700 when missing), else we refuse.
    Elsewhere (``$RUNTIME_DIRECTORY``, ``/run/emotiond``, a configured path) missing folders are created 0700.
    """
    if not folder.exists() and not folder.is_symlink():
        try:
            folder.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass  # raced with someone: checked below like any existing directory
        except OSError as exc:
            raise RuntimeError(f"cannot create the control socket directory {folder} ({exc.strerror})") from None
    try:
        shared = bool(folder.parent.stat().st_mode & stat.S_IWOTH)
    except OSError:
        shared = False
    if not shared:
        return
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeError(f"control socket directory {folder} is not a directory (a symlink?); not using it")
    if st.st_uid != os.geteuid():
        raise RuntimeError(f"control socket directory {folder} belongs to uid {st.st_uid}, not us ({os.geteuid()}); "
                           "not using it (remove it, or set triggers.control_socket_path)")
    if st.st_mode & 0o077:
        raise RuntimeError(f"control socket directory {folder} has mode {stat.S_IMODE(st.st_mode):04o}, "
                           "expected 0700; not using it (chmod 700 it, or remove it)")


class ControlSocketTrigger:
    """A Unix stream socket: one JSON object per connection in, one JSON line out."""

    def __init__(self, path: str | Path | None, command: Callable[[str, dict[str, Any]], dict[str, Any]],
                 max_connections: int = MAX_CONNECTIONS, timeout: float = REQUEST_TIMEOUT,
                 max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.path = Path(path) if path else default_socket_path()
        self._command = command
        self.max_connections = max_connections
        self.timeout = timeout
        self.max_request_bytes = max_request_bytes
        self._slots = threading.BoundedSemaphore(max_connections)
        self.rejected = 0  # connections answered "busy" (tests and logs)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, callback: TriggerCallback | None = None) -> None:
        p = self.path
        ensure_socket_dir(p.parent)
        if p.exists() or p.is_symlink():
            if not stat.S_ISSOCK(p.lstat().st_mode):
                raise RuntimeError(f"{p} exists and is not a socket; not replacing it")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.settimeout(1.0)
                probe.connect(str(p))
                raise RuntimeError(f"{p}: another emotiond is already listening there")
            except (TimeoutError, ConnectionRefusedError, FileNotFoundError):
                p.unlink(missing_ok=True)  # stale socket of a crashed run
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(p))
        os.chmod(p, 0o660)
        sock.listen(8)
        sock.settimeout(0.5)
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="control-socket", daemon=True)
        self._thread.start()
        log.info("control socket listening on %s", p)

    def alive(self) -> bool:
        """The accept thread still runs (health: a dead control socket stops the watchdog pings)."""
        return self._thread is not None and self._thread.is_alive()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                self.rejected += 1
                self._refuse(conn)
                continue
            try:
                threading.Thread(target=self._handle, args=(conn,), name="control-conn", daemon=True).start()
            except RuntimeError:  # no thread could be started: treat as busy
                self._slots.release()
                self._refuse(conn)

    def _refuse(self, conn: socket.socket) -> None:
        """Answer at once, without a thread, when all connection slots are taken."""
        with conn:
            try:
                conn.setblocking(False)
                conn.send((json.dumps({"ok": False, "error": f"busy: {self.max_connections} requests already "
                                       "being served, try again"}) + "\n").encode())
            except OSError:
                pass
        log.warning("control socket: connection refused, %d already being served", self.max_connections)

    def _handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                reply = self._reply(conn)
                try:
                    conn.settimeout(self.timeout)
                    conn.sendall((encode_answer(reply) + "\n").encode())
                except OSError:
                    pass
        finally:
            self._slots.release()

    def _reply(self, conn: socket.socket) -> dict[str, Any]:
        data = b""
        deadline = time.monotonic() + self.timeout  # for the whole request, not per recv (no slow drip)
        try:
            while b"\n" not in data and len(data) <= self.max_request_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                conn.settimeout(remaining)
                chunk = conn.recv(min(4096, self.max_request_bytes + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return {"ok": False, "error": f"no complete request within {self.timeout:g} s"}
        except OSError as exc:
            return {"ok": False, "error": f"reading the request failed ({exc})"}
        if len(data) > self.max_request_bytes:
            self._drain(conn)
            return {"ok": False, "error": f"request larger than {self.max_request_bytes} bytes"}
        try:
            request = parse_object(data, self.max_request_bytes, "request")
        except PayloadError as exc:
            message = str(exc)
            if "must be a JSON object" in message:
                message = 'request must be a JSON object with a string "command"'
            elif "not valid JSON" in message:
                message = f"request is not JSON ({message.removeprefix('request is not valid JSON: ')})"
            return {"ok": False, "error": message}
        if not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'request must be a JSON object with a string "command"'}
        name = request.pop("command")
        if name == "capture_audio":
            request.setdefault("trigger", "socket")
        return self._command(name, request)

    @staticmethod
    def _drain(conn: socket.socket, limit: int = 1 << 20) -> None:
        """Discard the rest of an oversized request (bounded), so the answer is not lost to a TCP-style
        reset: closing a Unix socket with unread input makes the client's recv fail."""
        discarded = 0
        try:
            conn.settimeout(1.0)
            while discarded < limit and (chunk := conn.recv(65536)):
                discarded += len(chunk)
        except OSError:
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        try:
            if self.path.exists() and stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()
        except OSError:
            pass


def send_command(path: str | Path, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Client side of the control socket (``emotiond trigger``); OSError when nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise OSError(f"{path}: the daemon closed the connection without a reply")
    return json.loads(data.decode())
