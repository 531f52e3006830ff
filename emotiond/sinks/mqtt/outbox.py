"""What waits for the broker: a bounded event queue, a small answer queue, the in-flight window, the spool.

Why the queue is ours and not paho's: paho buffers every QoS 1 publish without bound while
disconnected and cannot drop the oldest. So a message is handed to paho only while connected and
only ``INFLIGHT`` at a time; paho keeps those few until their PUBACK (it re-sends them itself after a
reconnect) and everything else waits, bounded, here. After a reconnect nothing new is handed over
until the re-sent ones are acknowledged, so order is kept. Delivery is at least once: a message
whose PUBACK was lost with the connection arrives twice, with the same ``seq``.

Command answers have their own bounded queue, sent before events, so a burst of events never
pushes an answer out and a burst of commands never pushes events out.

Not locked itself: the owner (``MqttSink``) holds its lock around every call, except ``ack``, which
paho's thread calls (a deque append is atomic) and ``write_spool``, which only touches the file.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotiond.sinks.mqtt.translate import Outgoing, compact

log = logging.getLogger(__name__)

INFLIGHT = 10  # messages handed to paho and not yet acknowledged, at most
ANSWER_BACKLOG = 32  # command answers waiting for the broker; more drop the oldest answer
SPOOL_VERSION = 1


@dataclass(frozen=True)
class Spooled:
    """What a spool file held: the undelivered messages, the last ``seq`` and the drop count."""

    messages: list[Outgoing]
    seq: int
    dropped: int


class Outbox:
    def __init__(self, queue_size: int, answer_size: int = ANSWER_BACKLOG) -> None:
        self.queue_size = queue_size
        self.answer_size = answer_size
        self._events: collections.deque[Outgoing] = collections.deque()
        self._answers: collections.deque[Outgoing] = collections.deque()
        self._inflight: dict[int, tuple[int, Outgoing]] = {}  # mid -> (order, message)
        self._order = 0
        self._acked: collections.deque[int] = collections.deque()  # mids from paho's on_publish
        self.resync = False  # after a reconnect: wait for paho's re-sends before handing new ones
        self.dirty = False  # changed since the last spool write
        self.dropped = 0  # events dropped because the queue was full
        self.dropped_answers = 0
        self._last_drop_log = 0.0

    @property
    def queued(self) -> int:
        return len(self._events) + len(self._answers) + len(self._inflight)

    @property
    def busy(self) -> bool:
        """Something is still waiting or unacknowledged."""
        return bool(self._events or self._answers or self._inflight)

    # --- in ---------------------------------------------------------------------------------------
    def put(self, msg: Outgoing) -> int:
        """Queue an event message; returns how many of the oldest were dropped to stay bounded."""
        self._events.append(msg)
        self.dirty = True
        over = len(self._events) - self.queue_size
        if over <= 0:
            return 0
        for _ in range(over):
            self._events.popleft()
        self.dropped += over
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0:
            self._last_drop_log = now
            log.warning("mqtt: queue full (%d): dropped the oldest; %d dropped so far", self.queue_size, self.dropped)
        return over

    def put_answer(self, msg: Outgoing) -> None:
        self._answers.append(msg)
        self.dirty = True
        if len(self._answers) > self.answer_size:
            self._answers.popleft()
            self.dropped_answers += 1
            log.warning("mqtt: %d command answers waiting: dropped the oldest (%d so far)", self.answer_size,
                        self.dropped_answers)

    # --- out --------------------------------------------------------------------------------------
    def take(self, connected: bool) -> list[Outgoing]:
        """The next messages to hand to paho: answers first, within the in-flight window."""
        self.drain_acks()
        if self.resync and not self._inflight:
            self.resync = False
        batch: list[Outgoing] = []
        if connected and not self.resync:
            for q in (self._answers, self._events):
                while q and len(self._inflight) + len(batch) < INFLIGHT:
                    batch.append(q.popleft())
        return batch

    def sent(self, mid: int, msg: Outgoing) -> None:
        """paho took ``msg`` as ``mid`` and keeps it until its PUBACK (re-sending it after reconnects)."""
        self._order += 1
        self._inflight[mid] = (self._order, msg)

    def give_back(self, msgs: list[Outgoing]) -> None:
        """Messages paho would not take now: back to the front, in order."""
        self._events.extendleft(reversed(msgs))

    def ack(self, mid: int) -> None:
        self._acked.append(mid)

    def drain_acks(self) -> None:
        while self._acked:
            self._inflight.pop(self._acked.popleft(), None)
            self.dirty = True

    def disconnected(self) -> None:
        self.resync = True

    # --- spool ------------------------------------------------------------------------------------
    def spool_body(self, client_id: str, seq: int) -> dict[str, Any]:
        """Everything undelivered, oldest first, in the spool file's format; clears ``dirty``."""
        self.drain_acks()
        inflight = [msg for _, msg in sorted(self._inflight.values(), key=lambda t: t[0])]
        messages = [[m.topic, m.payload] for m in (*inflight, *self._answers, *self._events)]
        self.dirty = False
        return {"version": SPOOL_VERSION, "client_id": client_id, "seq": seq, "dropped": self.dropped,
                "messages": messages}

    def restore(self, spooled: Spooled, answer_prefix: str) -> None:
        """Queue what a spool held (answers back into the answer queue) and keep its drop count."""
        self.dropped = spooled.dropped
        for msg in spooled.messages:
            if msg.topic.startswith(answer_prefix) and msg.topic.endswith("/result"):
                self.put_answer(msg)
            else:
                self.put(msg)


def write_spool(path: Path, body: dict[str, Any]) -> None:
    """Replace the spool file atomically; a failure is logged, never raised."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(compact(body), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.error("mqtt: cannot write spool %s: %s", path, exc.strerror or exc)


def read_spool(path: Path, base_topic: str) -> Spooled | None:
    """The spool's messages still under ``base_topic`` (a changed base topic drops stale ones); None if
    there is no spool or it is unreadable (logged)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        messages = [Outgoing(str(t), str(p)) for t, p in body["messages"]]
        seq, dropped = int(body["seq"]), int(body["dropped"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("mqtt: ignoring unreadable spool %s: %s", path, exc)
        return None
    return Spooled([m for m in messages if m.topic.startswith(base_topic + "/")], seq, dropped)
