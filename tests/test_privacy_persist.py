"""Privacy mode survives restarts: the store on its own, the daemon's command rules, and a real
`emotiond run` subprocess killed (as by a power cut) and restarted against a real mosquitto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from emotiond.config import Config, PrivacyConfig
from emotiond.context import DaemonContext, Health
from emotiond.daemon_commands import DaemonCommands
from emotiond.events import Event, PrivacyEvent
from emotiond.privacy_store import FILE_NAME, PrivacyStore

from mosquitto import Broker, Recorder, validator, wait_until

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "samples" / "demo.mp4"
DEV = "priv"
BASE = f"emotiond/{DEV}"


# --- the store ----------------------------------------------------------------------------------

def test_store_round_trip_is_atomic_and_fails_closed(tmp_path: Path) -> None:
    store = PrivacyStore(tmp_path / "state")
    assert store.load() is False  # never set: normal operation
    assert store.save(True) and store.load() is True
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [FILE_NAME]  # no temporary file left
    assert store.save(False) and store.load() is False
    store.path.write_text('{"enabled": tru')  # torn or corrupted: stay private rather than film
    assert store.load() is True
    store.path.write_text('{"enabled": "no"}')
    assert store.load() is True


def test_store_that_cannot_write_logs_and_carries_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert PrivacyStore(blocker / "sub").save(True) is False  # a file where the directory should be
    assert "will not survive a restart" in caplog.text


# --- the daemon's privacy command ---------------------------------------------------------------

def _context(config: Config, events: list[Event]) -> DaemonContext:
    ctx = DaemonContext(lambda: config, events.append, Health, lambda: None)
    DaemonCommands(ctx, None, lambda c: None)
    return ctx


def test_privacy_is_restored_and_persisted_through_the_context(tmp_path: Path) -> None:
    PrivacyStore(tmp_path).save(True)
    events: list[Event] = []
    ctx = _context(Config(), events)
    ctx.attach_privacy_store(PrivacyStore(tmp_path))
    assert ctx.privacy and events == [PrivacyEvent(True, timestamp=events[0].timestamp)]
    assert ctx.command("privacy", {"enabled": False}) == {"ok": True, "privacy": False}
    assert PrivacyStore(tmp_path).load() is False  # on disk before the answer


def test_remote_off_false_lets_only_the_button_end_privacy(tmp_path: Path) -> None:
    config = Config(privacy=PrivacyConfig(remote_off=False))
    ctx = _context(config, [])
    ctx.attach_privacy_store(PrivacyStore(tmp_path))
    assert ctx.command("privacy", {"enabled": True}) == {"ok": True, "privacy": True}  # turning on: always
    for args in ({"enabled": False}, {}):  # explicit off, and the toggle
        answer = ctx.command("privacy", args)
        assert answer["ok"] is False and "physical button" in answer["error"]
    assert ctx.privacy and PrivacyStore(tmp_path).load() is True
    ctx.set_privacy(False)  # what the GPIO long press calls
    assert not ctx.privacy and PrivacyStore(tmp_path).load() is False


# --- a real daemon, restarted -------------------------------------------------------------------

class Run:
    """`python -m emotiond run` in a subprocess, keeping its stdout event lines."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")}
        self.log = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(config), "run"], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=self.log)
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def kinds(self) -> list[str]:
        return [e.get("type", "") for e in self.events]

    def stop(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self._reader.join(5)
        self.log.close()


def _config(path: Path, broker: Broker, state: Path, remote_off: bool) -> Path:
    path.write_text(
        f'[device]\nid = "{DEV}"\nname = "Priv"\nstate_dir = "{state}"\n'
        f'[privacy]\nremote_off = {"true" if remote_off else "false"}\n'
        f'[camera]\nsource = "{VIDEO}"\nloop = true\n'
        '[output]\nstdout = true\n'
        f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\nmin_interval = 0.0\n'
        'min_dwell = 0.0\nheartbeat = 2.0\nreconnect_min = 0.2\nreconnect_max = 1.0\n'
        '[audio]\nenabled = false\n'
        '[triggers]\nsignal = false\ncontrol_socket = false\n'
    )
    return path


def _ask(rec: Recorder, enabled: bool) -> dict[str, Any]:
    """Send cmd/privacy until answered (a daemon just started may not have subscribed yet)."""
    topic = f"{BASE}/cmd/privacy/result"
    seen = len(rec.on(topic))
    for _ in range(20):
        rec.client.publish(f"{BASE}/cmd/privacy", json.dumps({"enabled": enabled}), qos=1)
        try:
            wait_until(lambda: len(rec.on(topic)) > seen, 3, what="the privacy answer")
            return dict(json.loads(rec.on(topic)[-1]))
        except AssertionError:
            continue
    raise AssertionError("no answer to cmd/privacy in 60 s")


def test_privacy_survives_a_power_cut_and_a_restart(tmp_path: Path) -> None:
    assert VIDEO.is_file(), "samples/demo.mp4 missing: run scripts/make_sample.py"
    broker = Broker(tmp_path / "broker").start()
    state = tmp_path / "state"
    log = tmp_path / "emotiond.log"
    rec = Recorder(broker, [f"{BASE}/#"])
    runs: list[Run] = []
    try:
        config = _config(tmp_path / "on.toml", broker, state, remote_off=True)
        runs.append(Run(config, log))
        wait_until(lambda: "emotion" in runs[-1].kinds(), 90, what="the first analysed frame")
        answer = _ask(rec, True)
        assert answer["ok"] is True and answer["privacy"] is True
        runs[-1].stop(signal.SIGKILL)  # no clean shutdown: what survives is what was on disk

        runs.append(Run(_config(tmp_path / "locked.toml", broker, state, remote_off=False), log))
        before = len(rec.on(f"{BASE}/state"))
        wait_until(lambda: len(rec.on(f"{BASE}/state")) >= before + 2, 60, what="two states after the restart")
        after = rec.json_on(f"{BASE}/state")[before:]
        for body in after:
            validator("state.json").validate(body)
            assert body["privacy"] is True and "label" not in body and "faces" not in body
        assert "emotion" not in runs[-1].kinds()  # nothing analysed: the camera never opened
        assert "restored" in log.read_text()
        # remote_off = false: MQTT cannot end it; the answer says why, and the mode stays on
        refused = _ask(rec, False)
        assert refused["ok"] is False and "physical button" in refused["error"]
        runs[-1].stop(signal.SIGTERM)

        runs.append(Run(config, log))  # remote_off = true again: MQTT may end it, and analysis resumes
        assert _ask(rec, False)["ok"] is True
        wait_until(lambda: "emotion" in runs[-1].kinds(), 60, what="analysis after privacy off")
        assert PrivacyStore(state).load() is False
    finally:
        for r in runs:
            r.stop(signal.SIGKILL)
        rec.close()
        broker.stop()


def test_state_dir_default_is_systemds_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from emotiond.config import DeviceConfig

    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/emotiond:/var/lib/other")
    assert DeviceConfig().state_path == Path("/var/lib/emotiond")  # StateDirectory=emotiond
    assert DeviceConfig(state_dir=str(tmp_path)).state_path == tmp_path  # the key wins (tests, odd setups)
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert DeviceConfig().state_path == tmp_path / "xdg" / "emotiond"
