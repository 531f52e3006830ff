"""The seed's keys: `emotiond run` under a real pseudo-terminal (pty.fork), and the terminal mode."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import sys
import termios
import time
from pathlib import Path

import pytest
from emotiond.sources.keyboard import TerminalKeys

REPO = Path(__file__).resolve().parent.parent


class Child:
    """``emotiond ARGS`` with a pty as its stdin/stdout/stderr; JSON lines are collected as events."""

    def __init__(self, args: list[str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: a terminal on stdin, as when a user types `emotiond run`
            os.environ["PYTHONPATH"] = str(REPO)
            os.execv(sys.executable, [sys.executable, "-m", "emotiond", *args])
        self.pid, self.fd = pid, fd
        self.buf = b""
        self.events: list[dict] = []
        self.output = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            self.output += line + "\n"
            if line.startswith("{"):
                self.events.append(json.loads(line))
        return True

    def wait_event(self, predicate, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if not self._read(0.2):
                break
        raise AssertionError(f"no such event; output:\n{self.output[-3000:]}")

    def press(self, key: str) -> None:
        os.write(self.fd, key.encode())

    def exit_status(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        raise AssertionError(f"still running; output:\n{self.output[-3000:]}")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(REPO / "samples" / "astronaut.jpg", frames / "face.jpg")
    path = tmp_path / "config.toml"
    path.write_text(f"""
[camera]
source = "{frames}"
loop = true
fps = 10.0
[audio]
source = "{REPO / 'samples' / 'speech.wav'}"
duration = 1.0
min_duration = 0.5
[triggers]
signal = false
control_socket = false
""")
    return path


def test_keys_listen_toggle_privacy_and_quit(config_file: Path) -> None:
    child = Child(["run", "-c", str(config_file)])
    child.wait_event(lambda e: e["type"] == "emotion")  # events still print as JSON lines
    assert "keys: a = listen" in child.output
    child.press("p")
    child.wait_event(lambda e: e["type"] == "privacy" and e["enabled"] is True)
    child.press("p")
    child.wait_event(lambda e: e["type"] == "privacy" and e["enabled"] is False)
    child.press("a")
    audio = child.wait_event(lambda e: e["type"] == "audio")
    assert audio["trigger"] == "keyboard" and audio["status"] in ("ok", "no_speech")
    child.press("q")
    assert child.exit_status() == 0


def test_the_terminal_is_in_cbreak_mode_while_running_and_restored_after() -> None:
    master, slave = pty.openpty()
    pressed: list[str] = []
    with os.fdopen(slave, "rb", buffering=0) as stream:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ECHO and before[3] & termios.ICANON
        keys = TerminalKeys(stream, {"x": lambda: pressed.append("x")})
        keys.start(None)  # type: ignore[arg-type]  # explicit bindings: no host needed
        try:
            during = termios.tcgetattr(slave)
            assert not during[3] & termios.ECHO and not during[3] & termios.ICANON
            assert during[3] & termios.ISIG  # Ctrl-C still stops the daemon
            os.write(master, b"zX")  # unknown keys are ignored; keys are case-insensitive
            deadline = time.monotonic() + 10
            while not pressed and time.monotonic() < deadline:
                time.sleep(0.02)
            assert pressed == ["x"]
        finally:
            keys.stop()
        assert termios.tcgetattr(slave) == before
    os.close(master)


def test_without_a_terminal_nothing_reads_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    r, w = os.pipe()
    with os.fdopen(r) as pipe:
        monkeypatch.setattr(sys, "stdin", pipe)
        assert TerminalKeys.for_stdin() is None
    os.close(w)
    monkeypatch.setattr(sys, "stdin", None)
    assert TerminalKeys.for_stdin() is None


def test_demo_takes_the_keys_too() -> None:
    child = Child(["demo", "--audio", "none"])
    child.wait_event(lambda e: e["type"] == "emotion")
    child.press("q")
    assert child.exit_status() == 0
    assert "keys: a = listen" in child.output
