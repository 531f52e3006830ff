"""sd_notify and the watchdog against a real unix datagram socket, as systemd would listen on it."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from emotiond.config import Config, HealthConfig
from emotiond.daemon import Daemon
from emotiond.events import ErrorEvent
from emotiond.perception.pipeline import FacePipeline
from emotiond.systemd_notify import Notifier, watchdog_interval
from emotiond.watchdog import SystemdWatchdog


class Listener:
    """A bound AF_UNIX datagram socket collecting every message on a thread, like systemd's."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode().split("\n")))

    def lines(self, since: float = 0.0) -> list[str]:
        with self._lock:
            return [line for t, msg in self.messages if t >= since for line in msg]

    def wait_for(self, predicate, timeout: float = 20.0, since: float = 0.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.lines(since)
            if predicate(got):
                return got
            time.sleep(0.02)
        raise AssertionError(f"timed out; got {self.lines(since)!r}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = str(tmp_path / "notify.sock")
    lis = Listener(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield lis
    lis.close()


def test_notifier_sends_datagrams_to_a_path_socket(listener: Listener) -> None:
    n = Notifier()
    assert n.enabled
    assert n.ready("up") and n.watchdog() and n.status("12 fps") and n.stopping()
    got = listener.wait_for(lambda ls: "STOPPING=1" in ls, timeout=5)
    assert got == ["READY=1", "STATUS=up", "WATCHDOG=1", "STATUS=12 fps", "STOPPING=1"]
    n.close()


def test_notifier_supports_the_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"emotiond-test-{os.getpid()}-{time.monotonic_ns()}"
    lis = Listener(b"\0" + name.encode())
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert Notifier().ready()
        assert lis.wait_for(lambda ls: "READY=1" in ls, timeout=5) == ["READY=1"]
    finally:
        lis.close()


def test_notifier_is_a_no_op_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False


def test_a_vanished_socket_is_logged_once_and_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.watchdog() is False
    assert n.watchdog() is False
    assert sum("systemd notification" in r.message for r in caplog.records) == 1


def test_watchdog_interval_reads_usec_and_respects_the_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=4242) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


class GatedSource:
    """A fake camera that delivers frames only while its gate is open and blocks in read() otherwise.

    A blocked read() is what a hung V4L2 driver looks like to the capture thread.
    """

    fps = 30.0

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.closed = threading.Event()
        self.reads = 0

    def read(self) -> np.ndarray | None:
        while not self.gate.is_set():
            if self.closed.wait(0.05):
                return None
        self.reads += 1
        time.sleep(1 / self.fps)
        return np.full((120, 160, 3), 90, np.uint8)

    def close(self) -> None:
        self.closed.set()


def _daemon(source: GatedSource) -> Daemon:
    config = Config(health=HealthConfig(max_frame_age=1.0, status_interval=1.0))
    return Daemon(config, FacePipeline.from_config(config), source_factory=lambda: source, pace_files=False)


def _start(daemon: Daemon, watchdog: SystemdWatchdog) -> threading.Thread:
    daemon.components.append(watchdog)
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", daemon.run()), daemon=True)
    thread.start()
    return thread


def test_ready_only_after_the_first_frame_and_no_pings_while_the_camera_is_stalled(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    source = GatedSource()
    daemon = _daemon(source)
    watchdog = SystemdWatchdog.from_environment(max_frame_age=1.0, status_interval=1.0)
    assert watchdog.ping_every == pytest.approx(0.1)
    thread = _start(daemon, watchdog)
    try:
        # No frame yet: a STATUS says what it waits for, but neither READY nor WATCHDOG is sent.
        listener.wait_for(lambda ls: any("waiting for the first camera frame" in line for line in ls))
        time.sleep(0.6)
        assert "READY=1" not in listener.lines() and "WATCHDOG=1" not in listener.lines()

        source.gate.set()  # frames flow
        got = listener.wait_for(lambda ls: ls.count("WATCHDOG=1") >= 3)
        assert got.index("READY=1") < got.index("WATCHDOG=1")
        assert got.count("READY=1") == 1
        assert any(line.startswith("STATUS=") and "fps" in line for line in got)

        source.gate.clear()  # the camera hangs inside read()
        stalled = listener.wait_for(lambda ls: any("camera stalled" in line for line in ls))
        t_stalled = time.monotonic()
        assert stalled.count("WATCHDOG=1") >= 3
        time.sleep(1.0)  # ten ping intervals
        assert "WATCHDOG=1" not in listener.lines(since=t_stalled)

        source.gate.set()  # the camera comes back: pings resume
        t_back = time.monotonic()
        listener.wait_for(lambda ls: "WATCHDOG=1" in ls, since=t_back)
    finally:
        daemon.request_stop()
        thread.join(15)
    assert not thread.is_alive()
    assert listener.wait_for(lambda ls: "STOPPING=1" in ls, timeout=5)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_dispatcher_thread_stops_the_pings(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    source = GatedSource()
    source.gate.set()
    daemon = _daemon(source)

    def dies(_event):  # a bug that takes the whole dispatcher thread down, not just one event
        raise SystemExit

    daemon.stages.append(dies)
    thread = _start(daemon, SystemdWatchdog.from_environment(max_frame_age=1.0, status_interval=1.0))
    try:
        listener.wait_for(lambda ls: ls.count("WATCHDOG=1") >= 2)
        daemon.emit(ErrorEvent("test", "trigger the stage"))
        listener.wait_for(lambda ls: any("dispatcher thread died" in line for line in ls))
        t_dead = time.monotonic()
        time.sleep(1.0)
        assert "WATCHDOG=1" not in listener.lines(since=t_dead)
        assert source.reads > 0 and daemon.health().frames > 0  # the camera itself was fine
    finally:
        daemon.request_stop()
        thread.join(15)
    assert not thread.is_alive()


def test_no_watchdog_pings_when_systemd_did_not_ask_for_them(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    source = GatedSource()
    source.gate.set()
    daemon = _daemon(source)
    thread = _start(daemon, SystemdWatchdog.from_environment(max_frame_age=1.0, status_interval=1.0))
    try:
        listener.wait_for(lambda ls: "READY=1" in ls)
        time.sleep(0.5)
    finally:
        daemon.request_stop()
        thread.join(15)
    lines = listener.wait_for(lambda ls: "STOPPING=1" in ls, timeout=5)
    assert "WATCHDOG=1" not in lines


def test_a_daemon_that_starts_in_privacy_mode_is_ready_and_pinged(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    """Privacy mode restored at boot keeps the camera closed: no frame ever comes, yet systemd must hear
    READY and pings, or it kills the service at TimeoutStartSec and restarts it into privacy again."""
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    source = GatedSource()  # would block forever: no frame until the gate opens
    daemon = _daemon(source)
    daemon.set_privacy(True)
    thread = _start(daemon, SystemdWatchdog.from_environment(max_frame_age=1.0, status_interval=1.0))
    try:
        got = listener.wait_for(lambda ls: ls.count("WATCHDOG=1") >= 3)
        assert got.count("READY=1") == 1 and got.index("READY=1") < got.index("WATCHDOG=1")
        assert any(line.startswith("STATUS=") and "privacy mode" in line for line in got)
        assert source.reads == 0 and daemon.health().frames == 0
        time.sleep(1.5)  # longer than max_frame_age: still healthy while paused on purpose
        assert daemon.health().healthy(1.0)

        daemon.set_privacy(False)  # the camera opens but gives nothing: after max_frame_age, pings stop
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (daemon.health().camera_ok and daemon.health().last_frame_age > 1.0):
            time.sleep(0.05)
        assert not daemon.health().healthy(1.0)
        time.sleep(0.2)  # a tick that was already past its health check may still ping once
        t_stalled = time.monotonic()
        time.sleep(1.0)
        assert "WATCHDOG=1" not in listener.lines(since=t_stalled)

        source.gate.set()  # frames flow: pings resume, READY is not sent twice
        t_back = time.monotonic()
        listener.wait_for(lambda ls: "WATCHDOG=1" in ls, since=t_back)
        assert listener.lines().count("READY=1") == 1
    finally:
        daemon.request_stop()
        thread.join(15)
    assert not thread.is_alive()
