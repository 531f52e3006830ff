"""The paho-mqtt v2 client, thinly wrapped: credentials and TLS from config, last will, callbacks
forwarded to a ``Link`` (the sink). Nothing here queues, decides or translates.

paho calls the ``Link`` methods on its network thread, some with its own lock held: they must only
update memory and never call back into the client.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from emotiond.config import Config, ConfigError, MqttConfig
from emotiond.secrets_file import read_secret
from emotiond.sinks.mqtt.discovery import Topics

log = logging.getLogger(__name__)


def base_topic(config: Config) -> str:
    return config.mqtt.base_topic or f"emotiond/{config.device_id}"


def client_id(config: Config) -> str:
    return config.mqtt.client_id or f"emotiond-{config.device_id}"


def read_password(m: MqttConfig, environ: dict[str, str] | None = None) -> str | None:
    """The broker password from an environment variable or a file (systemd ``LoadCredential=``)."""
    return read_secret("mqtt", m.password_env, m.password_file, environ)


class Link(Protocol):
    """What the transport reports, from paho's network thread."""

    def on_connected(self) -> None: ...

    def on_connect_failed(self) -> None: ...

    def on_disconnected(self, reason: Any) -> None: ...

    def on_subscribed(self, ok: bool) -> None: ...

    def on_acked(self, mid: int) -> None: ...

    def on_message(self, topic: str, payload: bytes, retain: bool) -> None: ...


class Transport:
    """One paho client for one broker; ``publish`` returns paho's message id, or None if paho refused."""

    def __init__(self, m: MqttConfig, topics: Topics, client_id: str, password: str | None, link: Link) -> None:
        self.m = m
        self.topics = topics
        self._link = link
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if m.username:
            client.username_pw_set(m.username, password)
        if m.tls or m.tls_ca:
            for key, value in (("tls_ca", m.tls_ca), ("tls_cert", m.tls_cert), ("tls_key", m.tls_key)):
                if value and not Path(value).is_file():
                    raise ConfigError(f"mqtt.{key}: {value} not found")
            try:
                client.tls_set(ca_certs=m.tls_ca or None, certfile=m.tls_cert or None, keyfile=m.tls_key or None)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigError(f"mqtt: TLS set-up failed: {exc}") from None
        client.will_set(topics.availability, "offline", qos=1, retain=True)
        # paho's stubs say int; it computes with floats and sub-second back-off is what the tests use
        client.reconnect_delay_set(m.reconnect_min, m.reconnect_max)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = lambda _c, _u: link.on_connect_failed()
        client.on_disconnect = lambda _c, _u, _f, reason, _p: link.on_disconnected(reason)
        client.on_publish = lambda _c, _u, mid, _r, _p: link.on_acked(mid)
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client

    def start(self) -> None:
        """Connect in the background; paho retries with back-off and never blocks the caller."""
        self._client.connect_async(self.m.host, self.m.port, self.m.keepalive)
        self._client.loop_start()

    def stop(self, connected: bool, timeout: float) -> None:
        """Publish offline (when connected), disconnect, stop paho's thread."""
        if connected:
            info = self._client.publish(self.topics.availability, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(2.0, timeout or 0.1))
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    def alive(self) -> bool:
        """paho's network thread (``loop_start``) is still running."""
        thread = getattr(self._client, "_thread", None)
        return thread is not None and thread.is_alive()

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> int | None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return None if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE else info.mid

    # --- paho callbacks ---------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("mqtt: broker %s:%d refused the connection: %s", self.m.host, self.m.port, reason)
            return
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        subs = [(self.topics.commands, 1)]
        if self.m.discovery:
            subs.append((f"{self.m.discovery_prefix}/status", 1))
        client.subscribe(subs)
        self._link.on_connected()

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("mqtt: broker refused the command subscription: %s", failed[0])
        self._link.on_subscribed(not failed)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._link.on_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # a message must never kill paho's network thread
            log.exception("mqtt: failed to handle a message on %s", msg.topic)
