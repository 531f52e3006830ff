"""Device identity: the id hashed from /etc/machine-id, its hostname fallback, and two daemons on one broker."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from emotiond.config import config_from_mapping
from emotiond.identity import default_device_id, id_from_machine_id, read_machine_id, sanitize

from mosquitto import Broker, Recorder, wait_until

ROOT = Path(__file__).resolve().parent.parent
MID_A = "0123456789abcdef0123456789abcdef"
MID_B = "fedcba9876543210fedcba9876543210"


def _mid(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    return str(path)


def test_machine_id_gives_a_short_stable_id_distinct_per_machine(tmp_path: Path) -> None:
    a, b = _mid(tmp_path, "a", MID_A), _mid(tmp_path, "b", MID_B)
    id_a = default_device_id(a, hostname="raspberrypi")
    assert id_a == default_device_id(a, hostname="other-name") == id_from_machine_id(MID_A)  # survives a rename
    assert id_a != default_device_id(b, hostname="raspberrypi")
    assert len(id_a) == 12 and all(c in "0123456789abcdef" for c in id_a)
    assert MID_A[:12] not in id_a  # hashed, not the machine id itself


@pytest.mark.parametrize("content", [None, "", "uninitialized", "not-hex-" * 4])
def test_a_missing_or_unusable_machine_id_falls_back_to_the_hostname_with_a_note(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | None) -> None:
    path = str(tmp_path / "machine-id") if content is None else _mid(tmp_path, "machine-id", content)
    assert read_machine_id(path) is None
    with caplog.at_level(logging.WARNING, logger="emotiond.identity"):
        assert default_device_id(path, hostname="my pi.local") == "my_pi_local"
    assert "falls back to the hostname" in caplog.text


def test_config_device_id_prefers_the_configured_id(tmp_path: Path) -> None:
    mid = _mid(tmp_path, "m", MID_A)
    assert config_from_mapping({"device": {"machine_id_file": mid}}).device_id == id_from_machine_id(MID_A)
    assert config_from_mapping({"device": {"id": "kitchen pi", "machine_id_file": mid}}).device_id == "kitchen_pi"
    assert config_from_mapping({"device": {"machine_id_file": ""}}).device_id == sanitize(socket.gethostname())


def _start(config: Path, log: Path, machine_id_file: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")}
    env["EMOTIOND_DEVICE__MACHINE_ID_FILE"] = machine_id_file
    with log.open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(config), "run"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def _devices(rec: Recorder) -> dict[str, str]:
    """HA device identifier -> the availability topic its entities use (from retained discovery)."""
    found = {}
    for topic, payload, _ in rec.messages:
        if topic.startswith("homeassistant/") and topic.endswith("/config") and payload:
            body = json.loads(payload)
            if "device" in body and "availability" in body:
                found[body["device"]["identifiers"][0]] = body["availability"][0]["topic"]
    return found


@pytest.mark.parametrize("distinct", [True, False], ids=["two-machine-ids", "hostname-fallback"])
def test_two_daemons_with_one_hostname_are_two_devices_on_one_broker(tmp_path: Path, distinct: bool) -> None:
    """Both run on this host (same hostname). With their own machine ids they are two HA devices that
    stay connected; without (the old hostname default) they share one client id and kick each other."""
    broker = Broker(tmp_path / "broker").start()
    config = tmp_path / "config.toml"
    config.write_text(  # no [device] id: the default under test; an unreachable camera keeps them idle
        '[camera]\nsource = "rtsp://127.0.0.1:9/none"\nreconnect_seconds = 1.0\n[output]\nstdout = false\n'
        f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\nreconnect_min = 0.2\n'
        'reconnect_max = 0.5\n[audio]\nenabled = false\n'
    )
    files = [_mid(tmp_path, "a", MID_A), _mid(tmp_path, "b", MID_B)] if distinct else ["", ""]
    rec = Recorder(broker, ["homeassistant/#", "emotiond/#"])
    procs = [_start(config, tmp_path / f"emotiond{i}.log", f) for i, f in enumerate(files)]
    try:
        if distinct:
            ids = {f"emotiond_{id_from_machine_id(m)}" for m in (MID_A, MID_B)}
            wait_until(lambda: set(_devices(rec)) == ids, 60, what="discovery of both devices")
            for availability in _devices(rec).values():
                wait_until(lambda t=availability: rec.last(t) == b"online", 30, what=f"{availability} online")
            assert b"already connected" not in broker.log.read_bytes()
        else:
            host = f"emotiond_{sanitize(socket.gethostname())}"
            wait_until(lambda: b"already connected" in broker.log.read_bytes(), 60,
                       what="the broker to kick one of the two same-id clients")
            assert set(_devices(rec)) == {host}  # one device swallows the other
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
        rec.close()
        broker.stop()
