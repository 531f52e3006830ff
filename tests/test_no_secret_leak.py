"""A password in the camera URL appears in no output: the daemon is run for real and every channel grepped.

`emotiond run` on an unreachable ``rtsp://user:<password>@127.0.0.1:9/stream`` camera, with stdout
events, MQTT to a real mosquitto (a recorder subscribed to ``#`` sees every message, retained or
not), systemd notifications to a fake ``NOTIFY_SOCKET`` and the log on stderr; then `check-config`,
`devices` and a config error naming the same URL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from mosquitto import Broker, Recorder, wait_until
from test_systemd_notify import Listener

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cretpw"
URL = f"rtsp://user:{PASSWORD}@127.0.0.1:9/stream"  # port 9 (discard): connection refused at once
SHOWN = "rtsp://***@127.0.0.1:9/stream"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_") and k != "NOTIFY_SOCKET"}
    env.update(extra)
    return env


def _cli(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emotiond", "-c", str(config), *args], cwd=ROOT, env=_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_camera_password_appears_in_no_output_channel(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker").start()
    config = tmp_path / "config.toml"
    config.write_text(
        '[device]\nid = "leak"\n'
        f'[camera]\nsource = "{URL}"\nreconnect_seconds = 0.5\n'
        '[output]\nstdout = true\nlog_level = "debug"\n'
        '[health]\nstatus_interval = 1.0\n'
        f'[mqtt]\nenabled = true\nhost = "{broker.host}"\nport = {broker.port}\nreconnect_min = 0.2\n'
        f'[triggers]\ncontrol_socket_path = "{tmp_path / "control.sock"}"\n'
    )
    notify = Listener(str(tmp_path / "notify.sock"))
    rec = Recorder(broker, ["#"])
    stdout_path, stderr_path = tmp_path / "stdout", tmp_path / "stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "emotiond", "-c", str(config), "run"], cwd=ROOT,
                                env=_env(NOTIFY_SOCKET=str(tmp_path / "notify.sock")), stdout=out, stderr=err)
        try:
            wait_until(lambda: rec.on("emotiond/leak/events"), 60, what="an error event on MQTT")
            wait_until(lambda: any(line.startswith("STATUS=camera unavailable: ") and "127.0.0.1:9" in line
                                   for line in notify.lines()), 30, what="a STATUS line naming the camera")
            wait_until(lambda: b'"type":"error"' in stdout_path.read_bytes(), 30, what="an error event on stdout")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    rec.close()
    notify.close()
    broker.stop()

    errors = [json.loads(line) for line in stdout_path.read_text().splitlines() if '"type":"error"' in line]
    assert errors and all(e["component"] == "camera" for e in errors)
    assert SHOWN in errors[0]["message"]  # still says which camera failed
    published = [e for e in (json.loads(p) for t, p, _ in rec.messages if t == "emotiond/leak/events")
                 if e.get("type") == "error"]
    assert published and SHOWN in published[0]["message"]
    status = [line for line in notify.lines() if line.startswith("STATUS=")]
    assert any(SHOWN in line for line in status), status
    log = stderr_path.read_text()
    assert SHOWN in log  # the start-up line names the camera, redacted

    channels = {
        "stdout": stdout_path.read_bytes(),
        "stderr": stderr_path.read_bytes(),
        "mqtt": b"\n".join(t.encode() + b" " + p for t, p, _ in rec.messages),
        "notify": "\n".join(notify.lines()).encode(),
        "broker log": broker.log.read_bytes(),
    }
    leaked = [name for name, data in channels.items() if PASSWORD.encode() in data]
    assert not leaked, f"the password appears in: {', '.join(leaked)}"


def test_cli_commands_and_config_errors_do_not_print_the_password(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[camera]\nsource = "{URL}"\n')
    check = _cli(config, "check-config")
    assert check.returncode == 0, check.stderr
    assert SHOWN in check.stdout
    devices = _cli(config, "devices", "--no-probe")
    assert devices.returncode == 0, devices.stderr
    assert SHOWN in devices.stdout
    as_json = _cli(config, "devices", "--no-probe", "--json")
    assert json.loads(as_json.stdout)["device"]["camera_source"] == SHOWN
    bad = _cli(config, "check-config", EMOTIOND_CAMERA__FPS=f'"{URL}"')
    assert bad.returncode == 78 and "***@127.0.0.1" in bad.stderr
    for result in (check, devices, as_json, bad):
        assert PASSWORD not in result.stdout + result.stderr
