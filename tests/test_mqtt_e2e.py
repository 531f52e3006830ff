"""End to end: `emotiond run` on the sample video against a real mosquitto makes a Home Assistant
device appear, keeps analysing through a broker restart, and its availability follows the process
(last will on a crash, explicit offline on a clean stop)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from mosquitto import Broker, Recorder, validator, wait_until

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "samples" / "demo.mp4"
DEV = "e2e"
BASE = f"emotiond/{DEV}"



class Emotiond:
    """`python -m emotiond run` in a subprocess, counting its stdout event lines."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")}
        self.log = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(config), "run"], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=self.log)
        self.lines = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            self.lines += 1

    def signal(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self._reader.join(5)
        self.log.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)


def discovery(rec: Recorder) -> dict[str, dict]:
    return {t: json.loads(p) for t, p, _ in rec.messages if t.startswith("homeassistant/") and p}


def test_emotiond_run_announces_device_and_survives_broker_and_process_restarts(tmp_path: Path) -> None:
    assert VIDEO.is_file(), "samples/demo.mp4 missing: run scripts/make_sample.py"
    b = Broker(tmp_path / "broker").start()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[device]\nid = "{DEV}"\nname = "E2E"\n'
        f'[camera]\nsource = "{VIDEO}"\nloop = true\n'
        '[output]\nstdout = true\n'
        f'[mqtt]\nenabled = true\nhost = "{b.host}"\nport = {b.port}\nmin_interval = 0.0\nmin_dwell = 0.5\n'
        'heartbeat = 2.0\nreconnect_min = 0.2\nreconnect_max = 1.0\n'
    )
    log = tmp_path / "emotiond.log"
    rec = Recorder(b, ["homeassistant/#", f"{BASE}/#"])
    first = Emotiond(config, log)
    try:
        wait_until(lambda: len(discovery(rec)) >= 8, 60, what=f"8 discovery configs (log: {log})")
        for topic, payload in discovery(rec).items():
            validator("ha_discovery.json", topic.split("/")[1]).validate(payload)
            assert payload["device"]["identifiers"] == [f"emotiond_{DEV}"] and payload["device"]["name"] == "E2E"
        wait_until(lambda: rec.last(f"{BASE}/availability") == b"online", 20, what="online")
        wait_until(lambda: rec.on(f"{BASE}/state"), 20, what="a state message")
        for state in rec.json_on(f"{BASE}/state"):
            validator("state.json").validate(state)
        for event in rec.json_on(f"{BASE}/events"):
            validator("event.json").validate(event)

        # The broker goes away: analysis goes on (stdout keeps getting events), then it comes back.
        b.kill()
        rec.close()
        seen = first.lines
        wait_until(lambda: first.lines >= seen + 5, 60, what="events on stdout while the broker is down")
        assert first.proc.poll() is None
        b.start()  # no persistence: retained discovery and availability must be re-published
        rec = Recorder(b, ["homeassistant/#", f"{BASE}/#"])
        wait_until(lambda: len(discovery(rec)) >= 8, 30, what="discovery re-published after the broker restart")
        wait_until(lambda: rec.last(f"{BASE}/availability") == b"online", 30, what="online after the restart")

        # A crash: the broker publishes the retained last will.
        first.signal(signal.SIGKILL)
        wait_until(lambda: rec.last(f"{BASE}/availability") == b"offline", 30, what="offline from the last will")

        second = Emotiond(config, log)
        try:
            wait_until(lambda: rec.last(f"{BASE}/availability") == b"online", 60, what="online again")
            rec.messages.clear()
            assert second.signal(signal.SIGTERM) == 0
            wait_until(lambda: rec.last(f"{BASE}/availability") == b"offline", 10, what="offline on a clean stop")
            assert b"Received DISCONNECT from emotiond-e2e" in b.log.read_bytes()  # clean, not a will
        finally:
            second.close()
    finally:
        first.close()
        rec.close()
        b.stop()
