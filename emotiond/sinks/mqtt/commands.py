"""``cmd/<name>`` messages: parse and check one (pure), and run accepted ones on their own thread.

Commands may take seconds (audio capture), so paho's network thread only parses and queues them;
the ``mqtt-cmd`` thread runs them through the daemon's command registry and hands each answer to
``answer`` (the outbox's answer queue, bounded separately from events).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emotiond.sinks.mqtt.translate import Outgoing

log = logging.getLogger(__name__)

COMMAND_BACKLOG = 16  # commands waiting for the command thread; more are refused as busy
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Request:
    """A checked command: its name, JSON arguments and the caller's ``id`` to echo; or why it was refused."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: Any = None
    error: str | None = None


def parse_command(name: str, payload: bytes, retain: bool, max_bytes: int) -> Request:
    """Check one message on ``cmd/<name>``; never raises."""
    if not _NAME_RE.match(name):
        return Request(name, error="command names are 1-64 letters, digits, '_' or '-'")
    if retain:
        return Request(name, error="retained commands are ignored (publish commands without the retain flag)")
    if len(payload) > max_bytes:
        return Request(name, error=f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
    if not payload.strip():  # also what clearing a retained command looks like: never act on it
        return Request(name, error="empty payload: send a JSON object, e.g. {}")
    try:
        parsed = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return Request(name, error=f"payload is not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        return Request(name, error=f"payload must be a JSON object, got {type(parsed).__name__}")
    request_id = parsed.pop("id", None)
    return Request(name, parsed, request_id)


def answer_message(topic: str, name: str, result: dict[str, Any], request_id: Any, wall: float) -> Outgoing:
    """The ``cmd/<name>/result`` message for a command's result dict."""
    body = {**result, "command": name, "timestamp": round(wall, 3)}
    if request_id is not None:
        body["id"] = request_id
    try:
        payload = json.dumps(body, separators=(",", ":"), default=str)
    except (TypeError, ValueError) as exc:
        payload = json.dumps({"ok": False, "error": f"result not serialisable: {exc}", "command": name,
                              "timestamp": body["timestamp"]})
    return Outgoing(topic, payload)


class CommandRunner:
    """The ``mqtt-cmd`` thread: a bounded queue of accepted requests, run one at a time."""

    def __init__(self, run: Callable[[str, dict[str, Any]], dict[str, Any]],
                 answer: Callable[[str, dict[str, Any], Any], None]) -> None:
        self._run = run
        self._answer = answer
        self._queue: queue.Queue[Request | None] = queue.Queue(COMMAND_BACKLOG)
        self._thread = threading.Thread(target=self._loop, name="mqtt-cmd", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5.0)

    def submit(self, request: Request) -> None:
        """Queue an accepted request, or answer at once why not (refused, or the backlog is full)."""
        error = request.error
        if error is None:
            try:
                self._queue.put_nowait(request)
                return
            except queue.Full:
                error = f"busy: {COMMAND_BACKLOG} commands are already waiting"
        log.warning("mqtt: command %r rejected: %s", request.name[:80], error)
        self._answer(request.name, {"ok": False, "error": error}, request.request_id)

    def _loop(self) -> None:
        while True:
            request = self._queue.get()
            if request is None:
                return
            args = request.args
            if request.name == "capture_audio":
                args = {**args, "trigger": "mqtt"}  # the audio event says where the request came from
            result = self._run(request.name, args)
            if not result.get("ok"):
                log.warning("mqtt: command %s failed: %s", request.name, result.get("error"))
            self._answer(request.name, result, request.request_id)
