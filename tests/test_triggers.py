"""Triggers: the GPIO button through gpiozero's MockFactory, SIGUSR1, the control socket, and a real
daemon answering `emotiond trigger` and SIGUSR1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from emotiond.events import ButtonEvent
from emotiond.sources.triggers import ControlSocketTrigger, GpioButtonTrigger, SignalTrigger, default_socket_path, send_command

from conftest import ROOT, SAMPLES


class Calls:
    def __init__(self):
        self.items: list = []
        self.cond = threading.Condition()

    def __call__(self, *args, **kwargs):
        with self.cond:
            self.items.append(args[0] if len(args) == 1 and not kwargs else (args, kwargs))
            self.cond.notify_all()

    def wait(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {n} calls, got {self.items}"
                self.cond.wait(left)
        return list(self.items)


@pytest.fixture
def mock_pins():
    gpiozero = pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory

    old = gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory = MockFactory()
    yield gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory.reset()
    gpiozero.Device.pin_factory = old


def test_gpio_short_press_triggers_a_capture(mock_pins):
    events, captures, long_presses = Calls(), Calls(), Calls()
    trig = GpioButtonTrigger(17, pull_up=True, bounce_time=None, hold_time=0.5, emit=events, on_long_press=long_presses)
    trig.start(captures)
    try:
        pin = mock_pins.pin(17)
        pin.drive_low()  # pressed (button to ground, internal pull-up)
        time.sleep(0.05)
        pin.drive_high()
        assert captures.wait(1) == [("gpio")]
        assert events.wait(1)[0] == ButtonEvent("press", timestamp=events.items[0].timestamp)
        assert not long_presses.items
    finally:
        trig.stop()


def test_gpio_long_press_runs_the_action_not_a_capture(mock_pins):
    events, captures, long_presses = Calls(), Calls(), Calls()
    trig = GpioButtonTrigger(27, pull_up=True, bounce_time=None, hold_time=0.2, emit=events,
                             on_long_press=lambda: long_presses("privacy"))
    trig.start(captures)
    try:
        pin = mock_pins.pin(27)
        pin.drive_low()
        assert long_presses.wait(1, timeout=3) == ["privacy"]
        pin.drive_high()
        time.sleep(0.2)
        assert [e.action for e in events.items] == ["long_press"]
        assert captures.items == []
        pin.drive_low()  # a following short press is a capture again
        time.sleep(0.05)
        pin.drive_high()
        assert captures.wait(1) == ["gpio"]
    finally:
        trig.stop()


def test_gpio_pull_down_wiring(mock_pins):
    captures = Calls()
    trig = GpioButtonTrigger(22, pull_up=False, bounce_time=None, hold_time=1.0)
    trig.start(captures)
    try:
        pin = mock_pins.pin(22)
        pin.drive_high()  # pressed: button to 3.3 V
        time.sleep(0.05)
        pin.drive_low()
        assert captures.wait(1) == ["gpio"]
    finally:
        trig.stop()


def test_signal_trigger():
    calls = Calls()
    before = signal.getsignal(signal.SIGUSR1)
    trig = SignalTrigger()
    trig.start(calls)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls.wait(1) == ["signal"]
    finally:
        trig.stop()
    assert signal.getsignal(signal.SIGUSR1) is before  # the previous handler is back


def test_control_socket_round_trip(tmp_path):
    received = []

    def command(name, args):
        received.append((name, args))
        return {"ok": True, "accepted": True, "echo": args}

    path = tmp_path / "run" / "control.sock"
    trig = ControlSocketTrigger(path, command)
    trig.start()
    try:
        assert oct(path.stat().st_mode & 0o777) == "0o660"
        reply = send_command(path, {"command": "capture_audio", "duration": 1.5})
        assert reply == {"ok": True, "accepted": True, "echo": {"duration": 1.5, "trigger": "socket"}}
        assert send_command(path, {"command": "privacy", "enabled": True})["echo"] == {"enabled": True}
        assert received[1] == ("privacy", {"enabled": True})
        import socket as socketlib

        with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as s:
            s.connect(str(path))
            s.sendall(b"not json\n")
            bad = json.loads(s.recv(4096))
        assert bad["ok"] is False and "not JSON" in bad["error"]
        assert send_command(path, {"duration": 2})["error"] == 'request must be a JSON object with a string "command"'
        second = ControlSocketTrigger(path, command)
        with pytest.raises(RuntimeError, match="another emotiond is already listening"):
            second.start()
    finally:
        trig.stop()
    assert not path.exists()


def test_stale_socket_is_replaced_and_files_are_not(tmp_path):
    import socket as socketlib

    stale = tmp_path / "c.sock"
    s = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # bound, never listening: what a crashed daemon leaves behind
    trig = ControlSocketTrigger(stale, lambda n, a: {"ok": True})
    trig.start()
    try:
        assert send_command(stale, {"command": "x"}) == {"ok": True}
    finally:
        trig.stop()
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(RuntimeError, match="not a socket"):
        ControlSocketTrigger(regular, lambda n, a: {}).start()
    assert regular.read_text() == "keep me"


def test_default_socket_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    assert default_socket_path() == tmp_path / "control.sock"
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    assert default_socket_path().name == "control.sock"


def test_trigger_cli_without_a_daemon(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "emotiond", "-c", str(ROOT / "config.toml"), "trigger",
                           "--socket", str(tmp_path / "none.sock")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 69
    assert proc.stderr.strip().splitlines()[-1].startswith(f"emotiond: error: no control socket at {tmp_path / 'none.sock'}")


def test_running_daemon_answers_trigger_cli_and_sigusr1(tmp_path):
    """A real `emotiond run` on the sample video, the sample WAV as its microphone."""
    sock = tmp_path / "control.sock"
    env = {**os.environ,
           "EMOTIOND_CAMERA__SOURCE": str(SAMPLES / "demo.mp4"), "EMOTIOND_CAMERA__LOOP": "true",
           "EMOTIOND_AUDIO__SOURCE": str(SAMPLES / "speech.wav"),
           "EMOTIOND_TRIGGERS__CONTROL_SOCKET_PATH": str(sock), "EMOTIOND_MQTT__ENABLED": "false",
           # the bundled voice model is unvalidated, so only its arousal is fused, and that needs a baseline:
           # with one clip (the cli trigger's) the signal-triggered clip gets an arousal index
           "EMOTIOND_AUDIO__BASELINE_MIN_CLIPS": "1",
           "EMOTIOND_OUTPUT__STDOUT": "true"}  # the shipped config keeps events off stdout

    out = open(tmp_path / "out.jsonl", "w")
    daemon = subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(ROOT / "config.toml"), "run"],
                              stdout=out, stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 120
        while not sock.exists():
            assert daemon.poll() is None, daemon.stderr.read()
            assert time.monotonic() < deadline, "control socket never appeared"
            time.sleep(0.2)
        proc = subprocess.run([sys.executable, "-m", "emotiond", "-c", str(ROOT / "config.toml"), "trigger",
                               "--socket", str(sock), "--duration", "2", "--wait"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        reply = json.loads(proc.stdout)
        assert reply["ok"] and reply["accepted"] and reply["result"]["status"] == "ok"
        assert reply["result"]["trigger"] == "cli"
        bad = subprocess.run([sys.executable, "-m", "emotiond", "trigger", "--socket", str(sock), "--duration", "99"],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "duration must be from 0.5 to 10.0 s" in json.loads(bad.stdout)["error"]
        daemon.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 60
        while True:
            lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines() if line.strip()]
            audio = [e for e in lines if e["type"] == "audio" and e["trigger"] == "signal"]
            fused = [e for e in lines if e["type"] == "emotion" and e.get("fused") and "audio" in e["fused"]["modalities"]]
            if audio and fused:
                break
            assert time.monotonic() < deadline, f"no signal-triggered audio/fused events in {len(lines)} lines"
            time.sleep(0.3)
        assert audio[0]["status"] == "ok"
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        finally:
            out.close()
    assert daemon.returncode == 0
    assert not sock.exists()
