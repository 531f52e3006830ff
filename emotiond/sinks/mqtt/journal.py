"""The spool as an append-only journal: undelivered messages and the ``seq`` ceiling survive a SIGKILL.

Why a journal and not a rewritten snapshot: a snapshot every 2 s lost up to 2 s of events on a
crash and, worse, restarted ``seq`` from a stale value, so a restarted daemon gave old numbers to
new events. Here each record is one JSON line:

- ``{"reserve": N}``: seqs up to N may be in use. Written and fsync'd *before* any seq above the
  previous ceiling is handed out (write-ahead), one block (``SEQ_BLOCK``) at a time, so a restart
  after a crash continues above N and never reuses a number (the skipped rest of the block shows
  as a gap, which is what a crash looks like).
- ``{"used": N}``: written on a clean stop; the next run continues at N + 1 without a gap.
- ``{"put": id, "t": topic, "p": payload}``: a message waiting for delivery.
- ``{"done": [id, ...]}``: delivered (PUBACK) or dropped.
- ``{"dropped": n}``: the event drop count (kept across restarts for the state).

Puts and dones are buffered and written with one fsync at most every ``COMMIT_EVERY`` seconds
(group commit), so a SIGKILL or power cut loses at most that window of not-yet-delivered messages.
A message delivered within the window is never written at all, which keeps SD-card writes low while
the broker is up. A torn last line (power cut mid-write) is ignored. The file is compacted (rewritten
with the live messages only, atomically) when it has grown well past what is live, and on every
open and clean close.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotiond.sinks.mqtt.translate import Outgoing

log = logging.getLogger(__name__)

JOURNAL_VERSION = 2
SEQ_BLOCK = 1000  # seqs reserved per write-ahead record
COMMIT_EVERY = 0.2  # seconds: at most this often an fsync, and at most this much lost on SIGKILL
COMPACT_BYTES = 1 << 20  # compact once the file is past this size and mostly dead records


@dataclass(frozen=True)
class Restored:
    """What a journal held on open: live messages in order (with their ids), where seq continues, drops."""

    messages: list[tuple[int, Outgoing]]
    next_seq: int  # the first seq the new run may use
    dropped: int
    crashed: bool  # the last run did not close cleanly (seq skips the rest of its reserved block)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


class Journal:
    """One journal file. Thread-safe: appends come from the dispatcher, commits from ``mqtt-out``."""

    def __init__(self, path: Path, base_topic: str) -> None:
        self.path = path
        self.base_topic = base_topic
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()  # one writer at a time (commit, reserve, compact)
        self._next_id = 1
        self._live: dict[int, tuple[Outgoing, int]] = {}  # id -> (message, record size), in put order
        self._buffered: dict[int, bytes] = {}  # puts not yet written
        self._done: list[int] = []  # dones of written puts, not yet written
        self._dropped: int | None = None  # a new drop count to write
        self._last_dropped = 0
        self.reserved = 0  # seqs up to here are durably reserved
        self.failed = False  # the last write failed (logged once per failure streak)
        self._size = 0
        self._fd: int | None = None

    # --- open / close -----------------------------------------------------------------------------
    def open(self) -> Restored:
        """Read what the last run left (any format, any damage), compact it and keep it open for appends."""
        restored = self._read()
        with self._lock:
            for msg_id, msg in restored.messages:
                self._live[msg_id] = (msg, len(msg.topic) + len(msg.payload) + 32)
                self._next_id = max(self._next_id, msg_id + 1)
            self.reserved = restored.next_seq - 1
        self._compact(dropped=restored.dropped, used=None)
        return restored

    def close(self, used_seq: int, dropped: int) -> None:
        """Clean stop: compact to the live messages and record the exact last seq (no gap next run)."""
        self._compact(dropped=dropped, used=used_seq)
        with self._commit_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # --- records ----------------------------------------------------------------------------------
    def append(self, msg: Outgoing) -> int:
        """Buffer a put; returns the message's journal id. Written by the next ``commit``."""
        with self._lock:
            msg_id = self._next_id
            self._next_id += 1
            line = _line({"put": msg_id, "t": msg.topic, "p": msg.payload})
            self._live[msg_id] = (msg, len(line))
            self._buffered[msg_id] = line
            return msg_id

    def done(self, msg_id: int) -> None:
        """A message was delivered or dropped: forget it (a put still in the buffer is never written)."""
        with self._lock:
            if self._live.pop(msg_id, None) is None:
                return
            if self._buffered.pop(msg_id, None) is None:
                self._done.append(msg_id)

    def note_dropped(self, dropped: int) -> None:
        with self._lock:
            if dropped != self._last_dropped:
                self._dropped = self._last_dropped = dropped

    @property
    def pending(self) -> bool:
        return bool(self._buffered or self._done or self._dropped is not None)

    def reserve(self, upto: int) -> None:
        """Write-ahead: durably record that seqs up to ``upto`` may be used; returns once fsync'd."""
        with self._commit_lock:
            if upto <= self.reserved:
                return
            # If it cannot be persisted (logged), numbering goes on: events matter more than seqs.
            self._write(_line({"reserve": upto}), sync=True)
            self.reserved = upto

    def commit(self) -> None:
        """Group commit: write every buffered record with one fsync, compacting if the file grew big."""
        with self._commit_lock:
            with self._lock:
                lines = list(self._buffered.values())
                self._buffered.clear()
                if self._done:
                    lines.append(_line({"done": self._done}))
                    self._done = []
                if self._dropped is not None:
                    lines.append(_line({"dropped": self._dropped}))
                    self._dropped = None
                live_bytes = sum(size for _, size in self._live.values())
            if lines:
                self._write(b"".join(lines), sync=True)
            big = self._size > COMPACT_BYTES and self._size > 4 * live_bytes
        if big:
            self._compact(dropped=None, used=None)

    # --- file -------------------------------------------------------------------------------------
    def _write(self, data: bytes, sync: bool) -> bool:
        """Append ``data`` (caller holds ``_commit_lock``); a failure is logged, never raised."""
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self._size = os.fstat(self._fd).st_size
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._size += len(data)
            if sync:
                os.fsync(self._fd)
        except OSError as exc:
            if not self.failed:
                log.error("mqtt: cannot write spool journal %s: %s", self.path, exc.strerror or exc)
            self.failed = True
            return False
        if self.failed:
            log.info("mqtt: spool journal %s writable again", self.path)
        self.failed = False
        return True

    def _compact(self, dropped: int | None, used: int | None) -> None:
        """Rewrite the file with only what is live (tmp file, fsync, rename, fsync the folder)."""
        with self._commit_lock:
            with self._lock:
                lines = [_line({"journal": JOURNAL_VERSION}), _line({"reserve": self.reserved})]
                if used is not None:
                    lines.append(_line({"used": used}))
                if dropped is not None:
                    self._last_dropped = dropped
                lines.append(_line({"dropped": self._last_dropped}))
                self._dropped = None
                for msg_id, (msg, _) in self._live.items():
                    lines.append(_line({"put": msg_id, "t": msg.topic, "p": msg.payload}))
                self._buffered.clear()
                self._done = []
            data = b"".join(lines)
            tmp = self.path.with_name(self.path.name + ".tmp")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
                _fsync_dir(self.path)
            except OSError as exc:
                log.error("mqtt: cannot rewrite spool journal %s: %s", self.path, exc.strerror or exc)
                self.failed = True
                return
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._size = len(data)

    def _read(self) -> Restored:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Restored([], 1, 0, False)
        except OSError as exc:
            log.error("mqtt: ignoring unreadable spool %s: %s", self.path, exc.strerror or exc)
            return Restored([], 1, 0, False)
        legacy = _read_legacy(raw)
        if legacy is not None:
            self._last_dropped = legacy.dropped
            kept = [(i, m) for i, m in legacy.messages if m.topic.startswith(self.base_topic + "/")]
            return Restored(kept, legacy.next_seq, legacy.dropped, legacy.crashed)
        puts: dict[int, Outgoing] = {}
        reserved, dropped, bad = 0, 0, 0
        used: int | None = None
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
                if "put" in rec:
                    puts[int(rec["put"])] = Outgoing(str(rec["t"]), str(rec["p"]))
                elif "done" in rec:
                    for msg_id in rec["done"]:
                        puts.pop(int(msg_id), None)
                elif "reserve" in rec:
                    reserved = max(reserved, int(rec["reserve"]))
                    used = None  # numbers were reserved after the last clean stop
                elif "used" in rec:
                    used = int(rec["used"])
                elif "dropped" in rec:
                    dropped = int(rec["dropped"])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                bad += 1  # a torn last line after a power cut; anything else is logged below
                continue
        if bad:
            log.warning("mqtt: spool journal %s: skipped %d damaged record(s)", self.path, bad)
        self._last_dropped = dropped
        crashed = used is None and reserved > 0
        next_seq = (used if used is not None else reserved) + 1
        kept = [(i, m) for i, m in puts.items() if m.topic.startswith(self.base_topic + "/")]
        return Restored(kept, next_seq, dropped, crashed)


def _read_legacy(raw: bytes) -> Restored | None:
    """A version 1 spool (one JSON object, rewritten every 2 s): its messages, and a seq one block past
    the saved one, since that value could be seconds stale."""
    if not raw.lstrip().startswith(b'{"version"'):
        return None
    try:
        body = json.loads(raw.decode("utf-8"))
        messages = [Outgoing(str(t), str(p)) for t, p in body["messages"]]
        seq, dropped = int(body["seq"]), int(body["dropped"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    log.info("mqtt: converting a version 1 spool; seq continues at %d", seq + SEQ_BLOCK + 1)
    return Restored(list(enumerate(messages, 1)), seq + SEQ_BLOCK + 1, dropped, True)
