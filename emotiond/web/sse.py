"""Server-Sent Events: every event as one ``data:`` line, fanned out to a bounded set of subscribers.

The dispatcher thread publishes without ever blocking: each subscriber has its own bounded queue
and a viewer that falls behind loses its oldest events (counted in ``dropped``), not the daemon.
"""

from __future__ import annotations

import collections
import threading

KEEPALIVE_SECONDS = 15.0  # a comment line this often, so dead connections are noticed and closed


def format_event(data: str, event_id: int) -> bytes:
    """One SSE message; ``data`` is a single line of JSON."""
    return f"id: {event_id}\ndata: {data}\n\n".encode()


class Subscription:
    def __init__(self, hub: EventHub, size: int) -> None:
        self._hub = hub
        self._items: collections.deque[tuple[int, str]] = collections.deque(maxlen=size)

    def get(self, timeout: float) -> tuple[int, str] | None:
        """The next (id, data), or None after ``timeout`` seconds or when the hub closes."""
        with self._hub.cond:
            if not self._items and not self._hub.closed:
                self._hub.cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        self._hub.unsubscribe(self)


class EventHub:
    def __init__(self, max_subscribers: int, queue_size: int = 256) -> None:
        self.max_subscribers = max_subscribers
        self.queue_size = queue_size
        self.cond = threading.Condition()
        self.closed = False
        self.dropped = 0
        self._subs: list[Subscription] = []
        self._next_id = 0

    @property
    def subscribers(self) -> int:
        with self.cond:
            return len(self._subs)

    def subscribe(self) -> Subscription | None:
        """A new subscription, or None when ``max_subscribers`` are already listening."""
        with self.cond:
            if self.closed or len(self._subs) >= self.max_subscribers:
                return None
            sub = Subscription(self, self.queue_size)
            self._subs.append(sub)
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self.cond:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, data: str) -> None:
        with self.cond:
            self._next_id += 1
            for sub in self._subs:
                if len(sub._items) == self.queue_size:
                    self.dropped += 1
                sub._items.append((self._next_id, data))
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
