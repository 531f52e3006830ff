"""``cmd/<name>`` messages: parse and check one (pure), and run accepted ones on their own thread.

Commands may take seconds (audio capture), so paho's network thread only parses and queues them;
the ``mqtt-cmd`` thread runs them through the daemon's command registry and hands each answer to
``answer`` (the outbox's answer queue, bounded separately from events).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emotiond.commands import PayloadError, encode_answer, parse_object, request_id
from emotiond.sinks.mqtt.translate import Outgoing

log = logging.getLogger(__name__)

COMMAND_BACKLOG = 16  # commands waiting for the command thread; more are refused as busy
REJECT_LOG_EVERY = 10.0  # seconds per window of log lines about refused commands
REJECT_LOG_BURST = 20  # log lines about refused commands per window; more are counted
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Request:
    """A checked command: its name, JSON arguments and the caller's ``id`` to echo; or why it was refused."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: Any = None
    error: str | None = None


def parse_command(name: str, payload: bytes, retain: bool, max_bytes: int) -> Request:
    """Check one message on ``cmd/<name>`` with the shared rules of ``emotiond.commands`` (size before
    decoding, nesting depth, number literals, no NaN); never raises."""
    if not _NAME_RE.match(name):
        return Request(name, error="command names are 1-64 letters, digits, '_' or '-'")
    if retain:
        return Request(name, error="retained commands are ignored (publish commands without the retain flag)")
    try:
        parsed = parse_object(payload, max_bytes)
    except PayloadError as exc:
        return Request(name, error=str(exc))
    return Request(name, parsed, request_id(parsed.pop("id", None)))


def answer_message(topic: str, name: str, result: dict[str, Any], req_id: Any, wall: float) -> Outgoing:
    """The ``cmd/<name>/result`` message for a command's result dict: always one line of strict JSON."""
    body = {**result, "command": name, "timestamp": round(wall, 3)}
    if req_id is not None:
        body["id"] = request_id(req_id)
    return Outgoing(topic, encode_answer(body))


class CommandRunner:
    """The ``mqtt-cmd`` thread: a bounded queue of accepted requests, run one at a time."""

    def __init__(self, run: Callable[[str, dict[str, Any]], dict[str, Any]],
                 answer: Callable[[str, dict[str, Any], Any], None]) -> None:
        self._run = run
        self._answer = answer
        self._queue: queue.Queue[Request | None] = queue.Queue(COMMAND_BACKLOG)
        self._thread = threading.Thread(target=self._loop, name="mqtt-cmd", daemon=True)
        self._stopping = threading.Event()
        self.rejected = 0  # refused or busy, counted; logged once per REJECT_LOG_EVERY
        self._window_start = float("-inf")
        self._window_lines = 0
        self._unlogged = 0

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Let the running command finish (up to ``timeout`` s); waiting ones are not run."""
        self._stopping.set()
        while True:  # make room for the wake-up even when the backlog is full
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        if self._thread.is_alive():
            self._thread.join(timeout=max(0.0, timeout))

    def submit(self, request: Request) -> None:
        """Queue an accepted request, or answer at once why not (refused, or the backlog is full)."""
        error = request.error
        if error is None:
            try:
                self._queue.put_nowait(request)
                return
            except queue.Full:
                error = f"busy: {COMMAND_BACKLOG} commands are already waiting"
        self._note_rejected(request.name, error)
        self._answer(request.name, {"ok": False, "error": error}, request.request_id)

    def _note_rejected(self, name: str, error: str) -> None:
        """Log refusals, at most ``REJECT_LOG_BURST`` lines per ``REJECT_LOG_EVERY`` s; the rest are counted
        and reported in the next line (a flood must not fill the journal on the SD card)."""
        self.rejected += 1
        now = time.monotonic()
        if now - self._window_start >= REJECT_LOG_EVERY:
            self._window_start, self._window_lines = now, 0
        if self._window_lines >= REJECT_LOG_BURST:
            self._unlogged += 1
            return
        self._window_lines += 1
        more = f" ({self._unlogged} more refused and not logged before this)" if self._unlogged else ""
        self._unlogged = 0
        log.warning("mqtt: command %r rejected: %s%s", name[:80], error[:200], more)

    def _loop(self) -> None:
        while True:
            request = self._queue.get()
            if request is None or self._stopping.is_set():
                return
            args = request.args
            if request.name == "capture_audio":
                args = {**args, "trigger": "mqtt"}  # the audio event says where the request came from
            result = self._run(request.name, args)
            if not result.get("ok"):
                self._note_rejected(request.name, str(result.get("error")))
            self._answer(request.name, result, request.request_id)
