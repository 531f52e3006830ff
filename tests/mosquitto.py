"""A real mosquitto broker for tests, on a free loopback port, plus a recording MQTT client.

Import the fixture into a test module: ``from mosquitto import Broker, Recorder, broker_fixture  # noqa: F401``
(tests/ is on sys.path: it has no __init__.py).
A missing mosquitto binary FAILS the test (never skips): ``apt-get install mosquitto mosquitto-clients``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

INSTALL_HINT = "mosquitto is not installed: apt-get install -y mosquitto mosquitto-clients"
SCHEMAS = Path(__file__).resolve().parent.parent / "emotiond" / "schemas"


def validator(name: str, ref: str | None = None) -> Any:
    """A JSON Schema validator for published payloads: the whole schema file, or one of its $defs."""
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMAS / name).read_text())
    if ref is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{ref}"}
    return Draft202012Validator(schema)


def find_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()), None
    )
    if found is None:
        pytest.fail(f"{name} not found. {INSTALL_HINT}")
    return found


def event_identity(payload: bytes) -> str:
    """An event as a consumer tells it apart: its JSON without ``age``, the hand-over delay, which a
    copy sent again after a crash (at least once) may add."""
    body = json.loads(payload)
    body.pop("age", None)
    return json.dumps(body, sort_keys=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Broker:
    """One mosquitto process; ``kill``/``start`` keep the port (and the persistence file, if any)."""

    def __init__(self, workdir: Path, persistence: bool = False) -> None:
        self.binary = find_binary("mosquitto")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root, mosquitto would switch to 'mosquitto'
            f"log_dest file {self.log}",
            "log_type all",
            "max_queued_messages 100000",
        ]
        if self.persistence:
            # Save after every change so a SIGKILL keeps sessions (autosave_on_changes counts changes).
            lines += ["persistence true", f"persistence_location {self.dir}/", "autosave_interval 1",
                      "autosave_on_changes true"]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Broker:
        self._write_conf()
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

        def accepting() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_until(accepting, 10.0, what=f"mosquitto to listen on port {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no will messages, nothing saved beyond the last autosave."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    try:
        yield b
    finally:
        b.stop()


class Recorder:
    """A real MQTT client that records every message it receives, for assertions with bounded waits."""

    def __init__(self, broker: Broker, topics: list[str], client_id: str = "", clean: bool = True) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topics = topics
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"recorder-{os.getpid()}-{id(self)}", clean_session=clean)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect_async(broker.host, broker.port, 30)
        self.client.loop_start()
        wait_until(self._subscribed.is_set, 10.0, what="the recorder to subscribe")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def json_on(self, topic: str) -> list[Any]:
        return [json.loads(p) for p in self.on(topic)]

    def last(self, topic: str) -> bytes | None:
        got = self.on(topic)
        return got[-1] if got else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
