"""What waits for the broker: a bounded event queue, a small answer queue, the in-flight window, the journal.

Why the queue is ours and not paho's: paho buffers every QoS 1 publish without bound while
disconnected and cannot drop the oldest. So a message is handed to paho only while connected and
only ``INFLIGHT`` at a time; paho keeps those few until their PUBACK (it re-sends them itself after a
reconnect) and everything else waits, bounded, here. After a reconnect nothing new is handed over
until the re-sent ones are acknowledged, so order is kept. Delivery is at least once: a message
whose PUBACK was lost with the connection arrives twice, with the same ``seq`` and the same body.

Command answers have their own bounded queue and a per-topic rate limit (``AnswerLimiter``), sent
before events: a burst of events never pushes an answer out and a burst of commands never pushes
an event out (answers over the limit are dropped and counted, with one log line per interval).

With a ``Journal`` (``spool_file``) every queued message is journaled and forgotten once delivered
or dropped, so what is undelivered survives a crash (see journal.py for the loss window).

Not locked itself: the owner (``MqttSink``) holds its lock around every call, except ``ack``, which
paho's thread calls (a deque append is atomic).
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass

from emotiond.sinks.mqtt.journal import Journal
from emotiond.sinks.mqtt.translate import Outgoing

log = logging.getLogger(__name__)

INFLIGHT = 10  # messages handed to paho and not yet acknowledged, at most
ANSWER_BACKLOG = 32  # command answers waiting for the broker; more drop the oldest answer
ANSWER_RATE = 10.0  # answers per second per result topic, sustained
ANSWER_BURST = 20  # answers per result topic that may go out at once
DROP_LOG_EVERY = 10.0  # seconds between log lines about drops


@dataclass(frozen=True)
class Queued(Outgoing):
    """A message in the outbox, with its journal id (0 without a journal)."""

    jid: int = 0


class AnswerLimiter:
    """A token bucket per result topic: a flood of commands costs at most ``rate`` answers a second each.

    Dropped answers are counted; one log line per ``DROP_LOG_EVERY`` says how many. The bucket map
    is bounded (topics are attacker-chosen command names), the oldest buckets are forgotten first.
    """

    MAX_TOPICS = 256

    def __init__(self, rate: float = ANSWER_RATE, burst: int = ANSWER_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()
        self.dropped = 0
        self._logged_dropped = 0
        self._last_log = float("-inf")

    def allow(self, topic: str, now: float) -> bool:
        tokens, last = self._buckets.pop(topic, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        self._buckets[topic] = (tokens - 1.0 if ok else tokens, now)
        while len(self._buckets) > self.MAX_TOPICS:
            self._buckets.popitem(last=False)
        if not ok:
            self.dropped += 1
            if now - self._last_log >= DROP_LOG_EVERY:
                log.warning("mqtt: command answers over %.0f/s per topic: %d dropped (%d in the last %.0f s)",
                            self.rate, self.dropped, self.dropped - self._logged_dropped, DROP_LOG_EVERY)
                self._last_log = now
                self._logged_dropped = self.dropped
        return ok


class Outbox:
    def __init__(self, queue_size: int, answer_size: int = ANSWER_BACKLOG, journal: Journal | None = None,
                 limiter: AnswerLimiter | None = None) -> None:
        self.queue_size = queue_size
        self.answer_size = answer_size
        self.journal = journal
        self.limiter = limiter or AnswerLimiter()
        self._events: collections.deque[Queued] = collections.deque()
        self._answers: collections.deque[Queued] = collections.deque()
        self._inflight: dict[int, tuple[int, Queued]] = {}  # mid -> (order, message)
        self._order = 0
        self._acked: collections.deque[int] = collections.deque()  # mids from paho's on_publish
        self.resync = False  # after a reconnect: wait for paho's re-sends before handing new ones
        self.dropped = 0  # events dropped because the queue was full
        self.dropped_answers = 0  # answers dropped because the answer queue was full
        self._last_drop_log = float("-inf")
        self._last_answer_log = float("-inf")

    @property
    def queued(self) -> int:
        return len(self._events) + len(self._answers) + len(self._inflight)

    @property
    def busy(self) -> bool:
        """Something is still waiting or unacknowledged."""
        return bool(self._events or self._answers or self._inflight)

    def _queued(self, msg: Outgoing) -> Queued:
        jid = self.journal.append(msg) if self.journal is not None else 0
        return Queued(msg.topic, msg.payload, jid)

    def _forget(self, msg: Queued) -> None:
        if self.journal is not None and msg.jid:
            self.journal.done(msg.jid)

    # --- in ---------------------------------------------------------------------------------------
    def put(self, msg: Outgoing) -> int:
        """Queue an event message; returns how many of the oldest were dropped to stay bounded."""
        self._events.append(msg if isinstance(msg, Queued) and msg.jid else self._queued(msg))
        over = len(self._events) - self.queue_size
        if over <= 0:
            return 0
        for _ in range(over):
            self._forget(self._events.popleft())
        self.dropped += over
        if self.journal is not None:
            self.journal.note_dropped(self.dropped)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY:
            self._last_drop_log = now
            log.warning("mqtt: queue full (%d): dropped the oldest; %d dropped so far", self.queue_size, self.dropped)
        return over

    def put_answer(self, msg: Outgoing, now: float | None = None) -> bool:
        """Queue a command answer unless its topic is over the rate limit; False if it was dropped."""
        if not self.limiter.allow(msg.topic, time.monotonic() if now is None else now):
            return False
        self._answers.append(msg if isinstance(msg, Queued) and msg.jid else self._queued(msg))
        if len(self._answers) > self.answer_size:
            self._forget(self._answers.popleft())
            self.dropped_answers += 1
            t = time.monotonic()
            if t - self._last_answer_log >= DROP_LOG_EVERY:
                self._last_answer_log = t
                log.warning("mqtt: %d command answers waiting: dropped the oldest (%d so far)", self.answer_size,
                            self.dropped_answers)
        return True

    # --- out --------------------------------------------------------------------------------------
    def take(self, connected: bool) -> list[Queued]:
        """The next messages to hand to paho: answers first, within the in-flight window."""
        self.drain_acks()
        if self.resync and not self._inflight:
            self.resync = False
        batch: list[Queued] = []
        if connected and not self.resync:
            for q in (self._answers, self._events):
                while q and len(self._inflight) + len(batch) < INFLIGHT:
                    batch.append(q.popleft())
        return batch

    def sent(self, mid: int, msg: Outgoing) -> None:
        """paho took ``msg`` as ``mid`` and keeps it until its PUBACK (re-sending it after reconnects)."""
        self._order += 1
        self._inflight[mid] = (self._order, msg if isinstance(msg, Queued) else Queued(msg.topic, msg.payload))

    def give_back(self, msgs: list[Queued]) -> None:
        """Messages paho would not take now: back to the front, in order."""
        self._events.extendleft(reversed(msgs))

    def discard(self, msg: Outgoing) -> None:
        """A message that can never be sent (paho refused its topic): forget it in the journal too."""
        if isinstance(msg, Queued):
            self._forget(msg)

    def ack(self, mid: int) -> None:
        self._acked.append(mid)

    def drain_acks(self) -> None:
        while self._acked:
            entry = self._inflight.pop(self._acked.popleft(), None)
            if entry is not None:
                self._forget(entry[1])

    def disconnected(self) -> None:
        self.resync = True

    # --- journal ----------------------------------------------------------------------------------
    def restore(self, messages: list[tuple[int, Outgoing]], dropped: int, answer_prefix: str) -> None:
        """Queue what the journal held (answers back into the answer queue), keeping ids and drop count."""
        self.dropped = dropped
        for jid, msg in messages:
            item = Queued(msg.topic, msg.payload, jid)
            if msg.topic.startswith(answer_prefix) and msg.topic.endswith("/result"):
                self._answers.append(item)
            else:
                self._events.append(item)
        while len(self._answers) > self.answer_size:
            self._forget(self._answers.popleft())
        over = len(self._events) - self.queue_size
        for _ in range(max(0, over)):
            self._forget(self._events.popleft())
            self.dropped += 1
