"""The MQTT sink: retained state + availability, an ordered QoS 1 event stream that survives broker
outages, ``cmd/<name>`` commands and Home Assistant discovery. It wires three parts together: the
``Translator`` (events -> messages), the ``Outbox`` (queues, in-flight window, spool) and the
``Transport`` (paho).

Threads: ``handle`` (dispatcher thread) only updates memory and never blocks; one ``mqtt-out``
thread hands messages to paho and publishes state; one ``mqtt-cmd`` thread runs commands. The
sink's lock is never held while calling into paho (paho calls back with its own lock held).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emotiond.config import Config
from emotiond.context import CommandError, ComponentContext, LinkStatus
from emotiond.daemon_commands import RELOADABLE
from emotiond.events import Event
from emotiond.sinks.mqtt.commands import CommandRunner, answer_message, parse_command
from emotiond.sinks.mqtt.discovery import Topics, discovery_messages
from emotiond.sinks.mqtt.journal import COMMIT_EVERY, SEQ_BLOCK, Journal
from emotiond.sinks.mqtt.outbox import Outbox, Queued
from emotiond.sinks.mqtt.translate import Outgoing, Translator, compact
from emotiond.sinks.mqtt.transport import Transport, base_topic, client_id, read_password
from emotiond.web import dashboard_url

log = logging.getLogger(__name__)

SPOOL_NAME = "mqtt-spool.jsonl"  # the default journal in $STATE_DIRECTORY
CLOSE_RESERVE = 1.5  # seconds of the stop deadline kept for "offline", disconnect and the journal


def spool_path(spool_file: str, environ: Mapping[str, str]) -> Path | None:
    """``spool_file``, or under systemd (``StateDirectory=`` sets $STATE_DIRECTORY) a journal there by
    default, so an installed service never reuses a seq; None: no journal."""
    if spool_file:
        return Path(spool_file)
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / SPOOL_NAME if state else None


class MqttSink:
    """Both a sink (``handle``/``close``) and a daemon component (``start``/``stop``)."""

    def __init__(self, config: Config, *, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self.m = config.mqtt
        self.topics = Topics(base_topic(config))
        self.client_id = client_id(config)
        self._cond = threading.Condition()  # guards the translator, the outbox and the flags below
        self._translator = Translator(self.topics, self.m)
        spool = spool_path(self.m.spool_file, os.environ if environ is None else environ)
        self._journal = Journal(spool, self.topics.base) if spool is not None else None
        self._outbox = Outbox(self.m.queue_size, journal=self._journal)
        self._ctx: ComponentContext | None = None
        self._transport = Transport(self.m, self.topics, self.client_id, read_password(self.m, environ), self)
        self._commands: CommandRunner | None = None
        self._connected = False
        self._subscribed = False  # the cmd/# subscription is acknowledged: commands can arrive
        self._full_publish = False  # discovery + state due (connect, Home Assistant restart)
        self._closing = False
        self._closed = False
        self._connect_failures = 0
        self.connects = 0  # successful connections so far (tests and health)
        self._out_thread = threading.Thread(target=self._out_loop, name="mqtt-out", daemon=True)
        self._load_spool()

    # --- component ------------------------------------------------------------------------------
    def start(self, ctx: ComponentContext) -> None:
        """Connect in the background; the daemon never waits for the broker."""
        self._ctx = ctx
        ctx.register_status("mqtt", self)
        with self._cond:  # a privacy mode restored from disk holds from the very first state published
            self._translator.set_privacy(ctx.privacy)
        ctx.on_config_change(self._reconfigure)
        if self.m.snapshots:
            ctx.set_snapshot_target(self)
        self._commands = CommandRunner(ctx.command, self._answer)
        self._commands.start()
        self._out_thread.start()
        self._transport.start()
        ctx.register_worker("mqtt-out", self._out_thread.is_alive)
        ctx.register_worker("mqtt-cmd", self._commands.thread.is_alive)
        ctx.register_worker("mqtt-network", self._transport.alive)
        log.info("mqtt: connecting to %s:%d as %s, base topic %s", self.m.host, self.m.port, self.client_id,
                 self.topics.base)

    def stop(self) -> None:
        """Stop taking commands; the flush happens in ``close`` once the dispatcher has drained."""
        if self._commands is not None:
            self._commands.stop(timeout=min(5.0, self._stop_remaining() - CLOSE_RESERVE))

    def _stop_remaining(self) -> float:
        return self._ctx.stop_remaining() if self._ctx is not None else float("inf")

    def close(self) -> None:
        """Deliver what is queued (up to ``stop_timeout`` s), publish offline, disconnect, spool the rest."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            started = self._out_thread.is_alive()
            flush = max(0.0, min(self.m.stop_timeout, self._stop_remaining() - CLOSE_RESERVE))
            deadline = time.monotonic() + flush
            while started and self._connected and self._outbox.busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.1))
            self._closing = True
            self._cond.notify_all()
        if started:
            self._out_thread.join(timeout=max(0.1, min(5.0, self._stop_remaining() - 1.0)))
        self._transport.stop(self._connected, max(0.1, min(self.m.stop_timeout, self._stop_remaining() - 0.5)))
        with self._cond:
            self._outbox.drain_acks()
            left = self._outbox.queued
            seq, dropped = self._translator.seq, self._outbox.dropped
        if self._journal is not None:
            self._journal.close(seq, dropped)  # undelivered ones (in flight too) stay for the next run
        if left:
            log.warning("mqtt: %d undelivered message(s) %s", left,
                        f"kept in {self._journal.path}" if self._journal is not None else "lost (no spool_file)")
        log.info("mqtt: disconnected")

    def _reconfigure(self, config: Config) -> None:
        """A reload: take the reloadable ``[mqtt]`` settings; the rest needs a restart."""
        keys = {k.split(".", 1)[1] for k in RELOADABLE if k.startswith("mqtt.")}
        with self._cond:
            self.m = dataclasses.replace(self.m, **{k: getattr(config.mqtt, k) for k in keys})
            self._translator.configure(self.m)
            self._outbox.queue_size = self.m.queue_size
            self._cond.notify_all()

    # --- status ---------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def ready(self) -> bool:
        """Connected and subscribed to commands."""
        return self._connected and self._subscribed

    @property
    def queued(self) -> int:
        with self._cond:
            return self._outbox.queued

    @property
    def dropped(self) -> int:
        return self._outbox.dropped

    def link_status(self) -> LinkStatus:
        return LinkStatus(self._connected, self.queued)

    # --- sink: called from the dispatcher thread, never blocks ----------------------------------
    def handle(self, event: Event) -> None:
        with self._cond:
            messages = self._translator.translate(event, time.monotonic())
            if messages:
                self._put_locked(messages)
                self._cond.notify_all()

    def _put_locked(self, messages: list[Outgoing]) -> None:
        if not messages:
            return
        if self._journal is not None and self._translator.seq > self._journal.reserved:
            # Write-ahead: the seqs are durable before any message carrying them can leave (rare:
            # mqtt-out reserves the next block ahead of time; this is the fallback).
            self._journal.reserve(self._translator.seq + SEQ_BLOCK)
        if log.isEnabledFor(logging.DEBUG):  # the chaos suite's record of what was numbered
            log.debug("mqtt: queued %d message(s), seq now %d", len(messages), self._translator.seq)
        for msg in messages:
            if self._outbox.put(msg):
                self._translator.tracker.mark_changed()  # the state reports the drop count

    def publish_snapshot(self, jpeg: bytes) -> str:
        """The snapshot target: one JPEG, QoS 1, not retained and not queued (it is big and perishable)."""
        if self._translator.privacy:
            raise CommandError("privacy mode is on: no snapshot")
        if not self._connected:
            raise CommandError("not connected to the broker")
        self._transport.publish(self.topics.snapshot, jpeg, qos=1, retain=False)
        return self.topics.snapshot

    # --- transport link (paho's network thread) -------------------------------------------------
    def on_connected(self) -> None:
        with self._cond:
            self._connected = True
            self._full_publish = True
            self.connects += 1
            self._cond.notify_all()
        log.info("mqtt: connected to %s:%d%s", self.m.host, self.m.port,
                 f" after {self._connect_failures} failed attempt(s)" if self._connect_failures else "")
        self._connect_failures = 0

    def on_connect_failed(self) -> None:
        self._connect_failures += 1
        level = logging.WARNING if self._connect_failures == 1 else logging.DEBUG
        log.log(level, "mqtt: cannot reach %s:%d (attempt %d); retrying with backoff up to %.0f s",
                self.m.host, self.m.port, self._connect_failures, self.m.reconnect_max)

    def on_disconnected(self, reason: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = self._subscribed = False
            self._outbox.disconnected()
            self._cond.notify_all()
        if was and not self._closing:
            log.warning("mqtt: connection lost (%s); queueing events, reconnecting", reason)

    def on_subscribed(self, ok: bool) -> None:
        self._subscribed = ok

    def on_acked(self, mid: int) -> None:
        self._outbox.ack(mid)  # processed by mqtt-out, which is also the only thread registering mids
        with self._cond:
            self._cond.notify_all()

    def on_message(self, topic: str, payload: bytes, retain: bool) -> None:
        if self.m.discovery and topic == f"{self.m.discovery_prefix}/status":
            if payload.strip() == b"online":
                log.info("mqtt: Home Assistant came online; re-publishing discovery and state")
                with self._cond:
                    self._full_publish = True
                    self._cond.notify_all()
            return
        prefix = self.topics.base + "/cmd/"
        if not topic.startswith(prefix):
            return
        name = topic[len(prefix):]
        if name == "result" or name.endswith("/result"):
            return  # answers (ours come back through cmd/#); answering them would loop forever
        if self._commands is not None:
            self._commands.submit(parse_command(name, payload, retain, self.m.max_command_bytes))

    def _answer(self, name: str, result: dict[str, Any], request_id: Any) -> None:
        with self._cond:
            if self._outbox.put_answer(answer_message(self.topics.result(name), name, result, request_id, time.time())):
                self._cond.notify_all()

    # --- the mqtt-out thread ----------------------------------------------------------------------
    def _out_loop(self) -> None:
        last_commit = float("-inf")
        journal = self._journal
        while True:
            now = time.monotonic()
            with self._cond:
                if self._closing:
                    self._outbox.drain_acks()
                    return
                self._put_locked(self._translator.tick(now, time.time()))
                batch = self._outbox.take(self._connected)
                full = self._connected and self._full_publish
                self._full_publish = self._full_publish and not full
                state = None
                if self._connected and (full or self._translator.tracker.due(now)):
                    state = self._translator.state_payload(now, time.time(), self._outbox.dropped)
                    self._translator.tracker.published(now)
                side: list[tuple[str, str]] = []
                if self._connected and (full or self._translator.side_due(now)):
                    side = self._translator.side_payloads(now, time.time())
                commit = journal is not None and journal.pending and now - last_commit >= COMMIT_EVERY
                seq = self._translator.seq
                reserve = journal is not None and seq > journal.reserved - SEQ_BLOCK // 4
                if not (batch or full or state or side or commit or reserve):
                    wait = min(self._translator.tracker.seconds_until_check(now),
                               self._translator.seconds_until_side(now)) if self._connected else 1.0
                    if journal is not None and journal.pending:
                        wait = min(wait, max(0.0, last_commit + COMMIT_EVERY - now))
                    self._cond.wait(min(max(wait, 0.01), 1.0))
                    continue
            # Outside the lock: paho takes its own locks and calls back into us.
            if full:
                self._publish_discovery()
            if state is not None:
                self._transport.publish(self.topics.state, state, qos=0, retain=True)
            if reserve and journal is not None:  # the next block, before the dispatcher needs it
                journal.reserve(seq + SEQ_BLOCK)
            for topic, body in side:
                self._transport.publish(topic, body, qos=0, retain=True)
            self._hand_over(batch)
            if commit and journal is not None:  # group commit: one fsync for everything since the last
                last_commit = now
                journal.commit()

    def _hand_over(self, batch: list[Queued]) -> None:
        for i, msg in enumerate(batch):
            out = self._translator.with_age(msg, time.time())  # late (queued, spooled): says how late
            try:
                mid = self._transport.publish(out.topic, out.payload, qos=1, retain=False)
            except Exception as exc:  # e.g. ValueError on an invalid topic: drop that one message
                log.error("mqtt: cannot publish to %r: %s", msg.topic[:200], exc)
                with self._cond:
                    self._outbox.discard(msg)
                continue
            with self._cond:  # paho holds the message until PUBACK, re-sending it after reconnects
                if mid is None:  # cannot happen with paho's unlimited queue
                    self._outbox.give_back(batch[i:])
                    return
                self._outbox.sent(mid, msg)

    def _publish_discovery(self) -> None:
        if not self.m.discovery:
            return
        for topic, payload in discovery_messages(self.m.discovery_prefix, self.config.device_id,
                                                 self.config.device.name, self.topics, heartbeat=self.m.heartbeat,
                                                 stale_after=self.m.stale_after,
                                                 configuration_url=dashboard_url(self.config)):
            self._transport.publish(topic, compact(payload), qos=1, retain=True)
        log.info("mqtt: published Home Assistant discovery under %s/", self.m.discovery_prefix)

    # --- journal --------------------------------------------------------------------------------
    def _load_spool(self) -> None:
        """Restore what the last run left undelivered and continue ``seq`` above anything it may have used."""
        if self._journal is None:
            return
        restored = self._journal.open()
        with self._cond:
            self._translator.seq = restored.next_seq - 1
            self._outbox.restore(restored.messages, restored.dropped, self.topics.base + "/cmd/")
        self._journal.reserve(self._translator.seq + SEQ_BLOCK)
        if restored.messages:
            log.info("mqtt: %d undelivered message(s) restored from %s", len(restored.messages), self._journal.path)
        if restored.crashed:
            log.warning("mqtt: the last run did not stop cleanly; seq continues at %d (numbers it reserved are "
                        "skipped, never reused)", restored.next_seq)
