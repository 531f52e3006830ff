"""SIGTERM on a running `emotiond run`: it says STOPPING to systemd and exits 0 in bounded time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mosquitto import broker_fixture  # noqa: F401  (the real-broker fixture)

REPO = Path(__file__).resolve().parent.parent


def _images(folder: Path, n: int = 6) -> None:
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(n):
        img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"frame{i:02d}.png"), img)


def _recv_until(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            lines += sock.recv(4096).decode().split("\n")
        except TimeoutError:
            break
        if wanted in lines:
            return lines
    raise AssertionError(f"no {wanted} within {timeout} s; got {lines!r}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_exits_0_on_a_stop_signal(tmp_path: Path, sig: signal.Signals) -> None:
    _images(tmp_path / "frames")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[camera]\nsource = "{tmp_path / "frames"}"\nloop = true\nfps = 15.0\n'
        '[output]\nstdout = true\nlog_level = "info"\n'
    )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotiond", "-c", str(config), "run"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        started = _recv_until(notify, "READY=1", timeout=120)  # models load, then the first frame
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        _recv_until(notify, "WATCHDOG=1", timeout=30)
        proc.send_signal(sig)
        rc = proc.wait(timeout=30)
        stopped = _recv_until(notify, "STOPPING=1", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    err = proc.stderr.read() if proc.stderr else ""
    assert rc == 0, err
    assert "READY=1" in started and "STOPPING=1" in stopped
    assert f"received {sig.name}, stopping" in err
    assert "Traceback" not in err


HANGING = r'''
import sys, threading
import emotiond.watchdog as wd
from emotiond import cli
from emotiond.config import load_config

wd.SHUTDOWN_DEADLINE = 2.0

class Hangs:
    """A component whose stop() never returns (a stuck audio device, say)."""
    def start(self, daemon):
        print("started", flush=True)
    def stop(self):
        threading.Event().wait()

cli.setup_logging("info")
daemon = cli._build_daemon(load_config(sys.argv[1]))
daemon.components.append(Hangs())
cli._install_signal_handlers(daemon)
sys.exit(daemon.run())
'''


def test_a_hung_component_cannot_keep_the_process_alive(tmp_path: Path) -> None:
    _images(tmp_path / "frames")
    config = tmp_path / "config.toml"
    config.write_text(f'[camera]\nsource = "{tmp_path / "frames"}"\nloop = true\n[output]\nstdout = false\n')
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGING, str(config)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    assert rc == 70, err
    assert "shutdown did not finish within 2 s" in err


def test_sigterm_right_after_a_voice_trigger_delivers_it_then_publishes_offline(tmp_path: Path, broker) -> None:
    """The full service shape: a real broker, a voice capture triggered (SIGUSR1), then SIGTERM at once.

    The capture's result still reaches the broker (the MQTT queue is flushed), then ``offline``.
    """
    from mosquitto import Recorder, wait_until

    _images(tmp_path / "frames")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[device]\nid = "shutdown-test"\n'
        f'[camera]\nsource = "{tmp_path / "frames"}"\nloop = true\nfps = 15.0\n'
        '[output]\nstdout = false\n'
        f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\nbase_topic = "t/shutdown"\n'
        f'[audio]\nenabled = true\nsource = "{REPO / "samples" / "speech.wav"}"\nduration = 2.0\n'
        '[triggers]\nsignal = true\ncontrol_socket = false\n'
    )
    recorder = Recorder(broker, ["t/shutdown/#"])
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(config), "run"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _recv_until(notify, "READY=1", timeout=120)
        wait_until(lambda: recorder.last("t/shutdown/availability") == b"online", 30, what="online")
        proc.send_signal(signal.SIGUSR1)  # a voice capture starts...
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)  # ...and the service is stopped while it records
        rc = proc.wait(timeout=30)
        wait_until(lambda: recorder.last("t/shutdown/availability") == b"offline", 10, what="offline")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        recorder.close()
    err = proc.stderr.read() if proc.stderr else ""
    assert rc == 0, err
    assert "Traceback" not in err and "shutdown did not finish" not in err
    order = [(t, p) for t, p, _r in recorder.messages]
    audio = [i for i, (t, p) in enumerate(order) if t == "t/shutdown/events" and b'"audio' in p]
    offline = [i for i, (t, p) in enumerate(order) if t == "t/shutdown/availability" and p == b"offline"]
    assert audio and offline and audio[0] < offline[-1], order
