"""MQTT sink and command channel: retained state + availability, an ordered QoS 1 event stream that
survives broker outages, ``cmd/<name>`` commands and Home Assistant discovery (paho-mqtt v2 API).

Why the queue is ours and not paho's: paho buffers every QoS 1 publish without bound while
disconnected and cannot drop the oldest. So a message is handed to paho only while connected and
only ``INFLIGHT`` at a time; paho keeps those few until their PUBACK (it re-sends them itself after a
reconnect) and everything else waits, bounded, in our deque. After a reconnect nothing new is handed
over until the re-sent ones are acknowledged, so order is kept. Delivery is at least once: a message
whose PUBACK was lost with the connection arrives twice, with the same ``seq``.

Threads: ``handle`` (dispatcher thread) only updates memory and never blocks; one ``mqtt-out`` thread
hands messages to paho and publishes state; one ``mqtt-cmd`` thread runs commands, which may take
seconds (audio capture), so paho's network thread never waits on them. The sink's own lock is never
held while calling into paho (paho calls ``on_publish`` with its own lock held).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from emotiond.config import Config, ConfigError, MqttConfig, default_config_path, load_config
from emotiond.events import (
    AudioEvent,
    ButtonEvent,
    EmotionEvent,
    ErrorEvent,
    Event,
    FaceAppeared,
    FaceLost,
    PrivacyEvent,
)
from emotiond.sinks.ha_discovery import Topics, discovery_messages
from emotiond.sinks.mqtt_state import LabelDwell, Observation, StateTracker

log = logging.getLogger(__name__)

INFLIGHT = 10  # events handed to paho and not yet acknowledged, at most
COMMAND_BACKLOG = 16  # commands waiting for the command thread; more are refused as busy
SPOOL_EVERY = 2.0  # seconds between spool rewrites while the queue changes
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Settings `reload` can change on the fly; everything else needs a restart.
RELOADABLE = {"mqtt.min_interval", "mqtt.min_dwell", "mqtt.heartbeat", "mqtt.max_command_bytes",
              "mqtt.queue_size", "output.log_level"}


def base_topic(config: Config) -> str:
    return config.mqtt.base_topic or f"emotiond/{config.device_id}"


def client_id(config: Config) -> str:
    return config.mqtt.client_id or f"emotiond-{config.device_id}"


def read_password(m: MqttConfig, environ: dict[str, str] | None = None) -> str | None:
    """The broker password from an environment variable or a file (systemd ``LoadCredential=``)."""
    env = os.environ if environ is None else environ
    if m.password_env:
        if m.password_env not in env:
            raise ConfigError(f"mqtt.password_env: environment variable {m.password_env} is not set")
        return env[m.password_env]
    if m.password_file:
        path = Path(m.password_file)
        if not path.is_absolute() and env.get("CREDENTIALS_DIRECTORY"):
            path = Path(env["CREDENTIALS_DIRECTORY"]) / path
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"mqtt.password_file: cannot read {path}: {exc.strerror or exc}") from None
    return None


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the config keys whose values differ."""
    if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new):
        out: list[str] = []
        for f in dataclasses.fields(old):
            out += _diff(getattr(old, f.name), getattr(new, f.name), f"{prefix}{f.name}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One non-retained QoS 1 message waiting for delivery (event, button press, command result)."""

    topic: str
    payload: str


class MqttSink:
    """Both a sink (``handle``/``close``) and a daemon component (``start``/``stop``)."""

    def __init__(self, config: Config, *, config_path: str | os.PathLike[str] | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.config = config
        self.m = config.mqtt
        self.config_path = Path(config_path) if config_path else default_config_path()
        self.topics = Topics(base_topic(config))
        self.client_id = client_id(config)
        self._password = read_password(self.m, environ)  # kept private; never logged
        self._client = self._make_client()

        self._cond = threading.Condition()
        self._pending: collections.deque[Outgoing] = collections.deque()
        self._inflight: dict[int, tuple[int, Outgoing]] = {}  # mid -> (order, message)
        self._order = 0
        self._acked: collections.deque[int] = collections.deque()  # mids from on_publish, for mqtt-out
        self._seq = 0
        self.dropped = 0
        self._connected = False
        self._subscribed = False  # the cmd/# subscription is acknowledged: commands can arrive
        self._resync = False  # after a reconnect: wait for paho's re-sends before handing new ones
        self._full_publish = False  # discovery + state due (connect, Home Assistant restart)
        self._closing = False
        self._closed = False
        self._spool_dirty = False
        self._last_drop_log = 0.0
        self._connect_failures = 0
        self.connects = 0  # successful connections so far (tests and health)
        self._tracker = StateTracker(self.m.min_interval, self.m.min_dwell, self.m.heartbeat)
        self._face_dwell: dict[int, LabelDwell] = {}
        self._privacy = False
        self._last_audio: float | None = None  # monotonic time of the last audio result
        self._latest_frame: Any = None
        self._daemon: Any = None
        self._commands: queue.Queue[tuple[str, dict[str, Any], Any] | None] = queue.Queue(COMMAND_BACKLOG)
        self._out_thread = threading.Thread(target=self._out_loop, name="mqtt-out", daemon=True)
        self._cmd_thread = threading.Thread(target=self._command_loop, name="mqtt-cmd", daemon=True)
        self._load_spool()

    # --- set-up ---------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        m = self.m
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             clean_session=True)
        if m.username:
            client.username_pw_set(m.username, self._password)
        if m.tls or m.tls_ca:
            for key in ("tls_ca", "tls_cert", "tls_key"):
                value = getattr(m, key)
                if value and not Path(value).is_file():
                    raise ConfigError(f"mqtt.{key}: {value} not found")
            try:
                client.tls_set(ca_certs=m.tls_ca or None, certfile=m.tls_cert or None, keyfile=m.tls_key or None)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigError(f"mqtt: TLS set-up failed: {exc}") from None
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.reconnect_delay_set(m.reconnect_min, m.reconnect_max)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self, daemon: Any) -> None:
        """Register commands and connect in the background; the daemon never waits for the broker."""
        self._daemon = daemon
        daemon.register_command("reload", self._reload_command)
        daemon.register_command("snapshot", self._snapshot_command)
        if self.m.snapshots:
            daemon.frame_listeners.append(self._keep_frame)
        self._out_thread.start()
        self._cmd_thread.start()
        self._client.connect_async(self.m.host, self.m.port, self.m.keepalive)
        self._client.loop_start()
        log.info("mqtt: connecting to %s:%d as %s, base topic %s", self.m.host, self.m.port, self.client_id,
                 self.topics.base)

    def stop(self) -> None:
        """Stop taking commands; the flush happens in ``close`` once the dispatcher has drained."""
        if self._cmd_thread.is_alive():
            self._commands.put(None)
            self._cmd_thread.join(timeout=5.0)

    def close(self) -> None:
        """Deliver what is queued (up to ``stop_timeout`` s), publish offline, disconnect, spool the rest."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            started = self._out_thread.is_alive()
            deadline = time.monotonic() + self.m.stop_timeout
            while started and self._connected and (self._pending or self._inflight):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.1))
            self._closing = True
            self._cond.notify_all()
        if started:
            self._out_thread.join(timeout=5.0)
        if self._connected:
            info = self._client.publish(self.topics.availability, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(2.0, self.m.stop_timeout or 0.1))
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        with self._cond:
            self._drain_acks_locked()
            left = len(self._pending) + len(self._inflight)
        if self.m.spool_file:
            self._write_spool()
        if left:
            log.warning("mqtt: %d undelivered message(s) %s", left,
                        f"spooled to {self.m.spool_file}" if self.m.spool_file else "lost (no spool_file)")
        log.info("mqtt: disconnected")

    # --- introspection ----------------------------------------------------------------------------
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
            return len(self._pending) + len(self._inflight)

    # --- sink: called from the dispatcher thread, never blocks ----------------------------------
    def handle(self, event: Event) -> None:
        now = time.monotonic()
        with self._cond:
            if isinstance(event, EmotionEvent):
                self._handle_emotion(event, now)
            elif isinstance(event, FaceAppeared):
                self._face_dwell[event.face_id] = LabelDwell(self.m.min_dwell)
                self._event_locked("face_appeared", event.timestamp, face_id=event.face_id, box=list(event.box))
            elif isinstance(event, FaceLost):
                self._face_dwell.pop(event.face_id, None)
                self._event_locked("face_lost", event.timestamp, face_id=event.face_id, last_label=event.last_label)
            elif isinstance(event, AudioEvent):
                self._handle_audio(event, now)
            elif isinstance(event, ButtonEvent):
                self._event_locked("button", event.timestamp, action=event.action)
                self._enqueue_locked(Outgoing(self.topics.button, event.action))
            elif isinstance(event, PrivacyEvent):
                self._privacy = event.enabled
                if event.enabled:
                    self._latest_frame = None
                self._tracker.mark_changed()
                self._event_locked("privacy", event.timestamp, enabled=event.enabled)
            elif isinstance(event, ErrorEvent):
                self._event_locked("error", event.timestamp, component=event.component, message=event.message)
            else:
                return
            self._cond.notify_all()

    def _handle_emotion(self, event: EmotionEvent, now: float) -> None:
        obs = Observation.from_event(event)
        change = self._tracker.observe(obs, now)
        if change is not None and change.new is not None:
            self._event_locked("emotion_changed", event.timestamp, scope="scene", source=obs.source, face_id=None,
                               **{"from": change.old, "to": change.new}, confidence=round(obs.confidence, 4))
        for face in event.faces:
            dwell = self._face_dwell.setdefault(face.face_id, LabelDwell(self.m.min_dwell))
            fchange = dwell.update(face.prediction.label, now)
            if fchange is not None and fchange.new is not None:
                self._event_locked("emotion_changed", event.timestamp, scope="face", source="face",
                                   face_id=face.face_id, **{"from": fchange.old, "to": fchange.new},
                                   confidence=round(face.prediction.confidence, 4))

    def _handle_audio(self, event: AudioEvent, now: float) -> None:
        result = None
        if event.prediction is not None:
            p = event.prediction
            result = {"label": p.label, "confidence": round(p.confidence, 4),
                      "probabilities": {k: round(float(v), 4) for k, v in p.probabilities.items()}}
        if event.status == "ok" and result is not None:
            self._last_audio = now
            self._tracker.mark_changed()
        self._event_locked("audio_captured", event.timestamp, trigger=event.trigger, status=event.status,
                           duration=round(event.duration, 3), result=result, error=event.error)

    def _event_locked(self, kind: str, timestamp: float, **fields: Any) -> None:
        self._seq += 1
        body = {"type": kind, "seq": self._seq, "timestamp": round(timestamp, 3), **fields}
        self._enqueue_locked(Outgoing(self.topics.events, json.dumps(body, separators=(",", ":"))))

    def _enqueue_locked(self, msg: Outgoing) -> None:
        self._pending.append(msg)
        self._spool_dirty = True
        over = len(self._pending) - self.m.queue_size
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
            self._tracker.mark_changed()
            now = time.monotonic()
            if now - self._last_drop_log >= 10.0:
                self._last_drop_log = now
                log.warning("mqtt: queue full (%d): dropped the oldest; %d dropped so far", self.m.queue_size,
                            self.dropped)

    # --- paho callbacks (paho's network thread) ---------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("mqtt: broker %s:%d refused the connection: %s", self.m.host, self.m.port, reason)
            return
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        subs = [(self.topics.commands, 1)]
        if self.m.discovery:
            subs.append((f"{self.m.discovery_prefix}/status", 1))
        client.subscribe(subs)
        with self._cond:
            self._connected = True
            self._full_publish = True
            self.connects += 1
            self._cond.notify_all()
        log.info("mqtt: connected to %s:%d%s", self.m.host, self.m.port,
                 f" after {self._connect_failures} failed attempt(s)" if self._connect_failures else "")
        self._connect_failures = 0

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._connect_failures += 1
        level = logging.WARNING if self._connect_failures == 1 else logging.DEBUG
        log.log(level, "mqtt: cannot reach %s:%d (attempt %d); retrying with backoff up to %.0f s",
                self.m.host, self.m.port, self._connect_failures, self.m.reconnect_max)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = self._subscribed = False
            self._resync = True
            self._cond.notify_all()
        if was and not self._closing:
            log.warning("mqtt: connection lost (%s); queueing events, reconnecting", reason)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("mqtt: broker refused the command subscription: %s", failed[0])
        self._subscribed = not failed

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        self._acked.append(mid)  # processed by mqtt-out, which is also the only thread registering mids
        with self._cond:
            self._cond.notify_all()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._route_message(msg)
        except Exception:  # a message must never kill paho's network thread
            log.exception("mqtt: failed to handle a message on %s", msg.topic)

    # --- commands ---------------------------------------------------------------------------------
    def _route_message(self, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if self.m.discovery and topic == f"{self.m.discovery_prefix}/status":
            if msg.payload.strip() == b"online":
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
        request_id, error, args = None, None, {}
        if not _NAME_RE.match(name):
            error = "command names are 1-64 letters, digits, '_' or '-'"
        elif msg.retain:
            error = "retained commands are ignored (publish commands without the retain flag)"
        elif len(msg.payload) > self.m.max_command_bytes:
            error = f"payload of {len(msg.payload)} bytes exceeds the limit of {self.m.max_command_bytes}"
        elif not msg.payload.strip():  # also what clearing a retained command looks like: never act on it
            error = "empty payload: send a JSON object, e.g. {}"
        else:
            try:
                parsed = json.loads(msg.payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                error = f"payload is not valid JSON: {exc}"
            else:
                if not isinstance(parsed, dict):
                    error = f"payload must be a JSON object, got {type(parsed).__name__}"
                else:
                    request_id = parsed.pop("id", None)
                    args = parsed
        if error is None:
            try:
                self._commands.put_nowait((name, args, request_id))
                return
            except queue.Full:
                error = f"busy: {COMMAND_BACKLOG} commands are already waiting"
        log.warning("mqtt: command %r rejected: %s", name[:80], error)
        self._answer(name, {"ok": False, "error": error}, request_id)

    def _answer(self, name: str, result: dict[str, Any], request_id: Any) -> None:
        body = {**result, "command": name, "timestamp": round(time.time(), 3)}
        if request_id is not None:
            body["id"] = request_id
        try:
            payload = json.dumps(body, separators=(",", ":"), default=str)
        except (TypeError, ValueError) as exc:
            payload = json.dumps({"ok": False, "error": f"result not serialisable: {exc}", "command": name,
                                  "timestamp": body["timestamp"]})
        with self._cond:
            self._enqueue_locked(Outgoing(self.topics.result(name), payload))
            self._cond.notify_all()

    def _command_loop(self) -> None:
        while True:
            item = self._commands.get()
            if item is None:
                return
            name, args, request_id = item
            if self._daemon is None:
                result = {"ok": False, "error": "daemon not running"}
            else:
                if name == "capture_audio":
                    args = {**args, "trigger": "mqtt"}  # the audio event says where the request came from
                result = self._daemon.command(name, args)
            if not result.get("ok"):
                log.warning("mqtt: command %s failed: %s", name, result.get("error"))
            self._answer(name, result, request_id)

    def _reload_command(self, args: dict[str, Any]) -> dict[str, Any]:
        """Re-read the config file: apply what is safe now, report what needs a restart."""
        from emotiond.daemon import CommandError

        if args:
            raise CommandError(f"reload takes no arguments, got {sorted(args)}")
        if self.config_path is None:
            raise CommandError("reload: no config file (running on built-in defaults)")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            raise CommandError(f"reload: {exc}") from None
        current = self._daemon.config if self._daemon is not None else self.config
        changed = _diff(current, new)
        applied = [k for k in changed if k in RELOADABLE]
        restart = [k for k in changed if k not in RELOADABLE]
        m = dataclasses.replace(
            self.m, **{k.split(".", 1)[1]: getattr(new.mqtt, k.split(".", 1)[1]) for k in applied if k.startswith("mqtt.")}
        )
        output = current.output
        if "output.log_level" in applied:
            logging.getLogger().setLevel(getattr(logging, new.output.log_level.upper()))
            output = dataclasses.replace(output, log_level=new.output.log_level)
        with self._cond:
            self.m = m
            self._tracker.configure(m.min_interval, m.min_dwell, m.heartbeat)
            for dwell in self._face_dwell.values():
                dwell.min_dwell = m.min_dwell
            self._cond.notify_all()
        self.config = dataclasses.replace(current, mqtt=m, output=output)
        if self._daemon is not None:
            self._daemon.config = self.config
        log.info("mqtt: reloaded %s: applied %s; needs restart: %s", self.config_path, applied or "nothing",
                 restart or "nothing")
        return {"config": str(self.config_path), "applied": applied, "restart_required": restart}

    def _keep_frame(self, image: Any, _events: Any) -> None:
        self._latest_frame = image  # one reference assignment: atomic, never blocks the main loop

    def _snapshot_command(self, args: dict[str, Any]) -> dict[str, Any]:
        from emotiond.daemon import CommandError

        if not self.m.snapshots:
            raise CommandError("snapshots are disabled (set snapshots = true in [mqtt] to allow them)")
        if self._privacy or (self._daemon is not None and self._daemon.privacy):
            raise CommandError("privacy mode is on: no snapshot")
        quality = args.get("quality", 80)
        if not isinstance(quality, int) or isinstance(quality, bool) or not 10 <= quality <= 95:
            raise CommandError("snapshot: 'quality' must be an integer from 10 to 95")
        image = self._latest_frame
        if image is None:
            raise CommandError("no frame captured yet")
        if not self._connected:
            raise CommandError("not connected to the broker")
        import cv2

        ok, jpeg = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        if not ok:
            raise CommandError("JPEG encoding failed")
        data = jpeg.tobytes()
        self._client.publish(self.topics.snapshot, data, qos=1, retain=False)
        return {"topic": self.topics.snapshot, "bytes": len(data), "width": int(image.shape[1]),
                "height": int(image.shape[0])}

    # --- the mqtt-out thread ----------------------------------------------------------------------
    def _state_payload_locked(self) -> str:
        body = self._tracker.snapshot()
        body.update(
            audio_age=None if self._last_audio is None else round(time.monotonic() - self._last_audio, 1),
            privacy=self._privacy,
            dropped_events=self.dropped,
            timestamp=round(time.time(), 3),
        )
        return json.dumps(body, separators=(",", ":"))

    def _out_loop(self) -> None:
        last_spool = 0.0
        while True:
            now = time.monotonic()
            with self._cond:
                self._drain_acks_locked()
                if self._closing:
                    return
                change = self._tracker.tick(now)
                if change is not None and change.new is not None and self._tracker.current is not None:
                    obs = self._tracker.current
                    self._event_locked("emotion_changed", time.time(), scope="scene", source=obs.source,
                                       face_id=None, **{"from": change.old, "to": change.new},
                                       confidence=round(obs.confidence, 4))
                if self._resync and not self._inflight:
                    self._resync = False
                batch: list[Outgoing] = []
                if self._connected and not self._resync:
                    while self._pending and len(self._inflight) + len(batch) < INFLIGHT:
                        batch.append(self._pending.popleft())
                full = self._connected and self._full_publish
                self._full_publish = self._full_publish and not full
                state = None
                if self._connected and (full or self._tracker.due(now)):
                    state = self._state_payload_locked()
                    self._tracker.published(now)
                spool = bool(self.m.spool_file) and self._spool_dirty and now - last_spool >= SPOOL_EVERY
                if not (batch or full or state or spool):
                    wait = self._tracker.seconds_until_check(now) if self._connected else 1.0
                    if self.m.spool_file and self._spool_dirty:
                        wait = min(wait, max(0.0, last_spool + SPOOL_EVERY - now))
                    self._cond.wait(min(max(wait, 0.01), 1.0))
                    continue
            # Outside the lock: paho takes its own locks and calls back into us.
            if full:
                self._publish_discovery()
            if state is not None:
                self._client.publish(self.topics.state, state, qos=0, retain=True)
            for i, msg in enumerate(batch):
                try:
                    info = self._client.publish(msg.topic, msg.payload, qos=1, retain=False)
                except Exception as exc:  # e.g. ValueError on an invalid topic: drop that one message
                    log.error("mqtt: cannot publish to %r: %s", msg.topic, exc)
                    continue
                if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # cannot happen with paho's unlimited queue
                    with self._cond:
                        self._pending.extendleft(reversed(batch[i:]))
                    break
                with self._cond:  # paho holds the message until PUBACK, re-sending it after reconnects
                    self._order += 1
                    self._inflight[info.mid] = (self._order, msg)
            if spool:
                last_spool = now
                self._write_spool()

    def _publish_discovery(self) -> None:
        if not self.m.discovery:
            return
        for topic, payload in discovery_messages(self.m.discovery_prefix, self.config.device_id,
                                                 self.config.device.name, self.topics):
            self._client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=True)
        log.info("mqtt: published Home Assistant discovery under %s/", self.m.discovery_prefix)

    # --- spool ------------------------------------------------------------------------------------
    def _drain_acks_locked(self) -> None:
        while self._acked:
            self._inflight.pop(self._acked.popleft(), None)
            self._spool_dirty = True

    def _write_spool(self) -> None:
        with self._cond:
            self._drain_acks_locked()
            inflight = [msg for _, msg in sorted(self._inflight.values(), key=lambda t: t[0])]
            messages = [[m.topic, m.payload] for m in (*inflight, *self._pending)]
            body = {"version": 1, "client_id": self.client_id, "seq": self._seq, "dropped": self.dropped,
                    "messages": messages}
            self._spool_dirty = False
        path = Path(self.m.spool_file)
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.error("mqtt: cannot write spool %s: %s", path, exc.strerror or exc)

    def _load_spool(self) -> None:
        if not self.m.spool_file:
            return
        path = Path(self.m.spool_file)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            messages = [Outgoing(str(t), str(p)) for t, p in body["messages"]]
            seq, dropped = int(body["seq"]), int(body["dropped"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("mqtt: ignoring unreadable spool %s: %s", path, exc)
            return
        base = self.topics.base + "/"
        messages = [m for m in messages if m.topic.startswith(base)]  # a changed base topic: drop stale ones
        with self._cond:
            self._seq, self.dropped = seq, dropped
            for msg in messages:
                self._enqueue_locked(msg)
        log.info("mqtt: %d undelivered message(s) restored from %s", len(messages), path)


def build(config: Config, config_path: str | os.PathLike[str] | None = None) -> MqttSink:
    """The sink for ``cli._build_daemon``; raises ConfigError for a missing password or TLS file."""
    return MqttSink(config, config_path=config_path)

