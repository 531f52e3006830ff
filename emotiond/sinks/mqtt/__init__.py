"""MQTT output in parts with one job each.

- ``translate``: events -> outgoing messages, ``seq`` numbering, dwell/rate rules applied (pure)
- ``state``: the dwell and rate rules themselves (pure)
- ``discovery``: topic names and Home Assistant discovery payloads (pure)
- ``commands``: parsing ``cmd/<name>`` messages and the thread that runs them
- ``outbox``: bounded event queue, answer queue (rate limited per topic), in-flight window
- ``journal``: the spool file: append-only, write-ahead seq reservation, group commit
- ``transport``: the paho client (credentials, TLS, will, callbacks)
- ``sink``: ``MqttSink``, which wires them together as a daemon sink and component
"""

from emotiond.sinks.mqtt.sink import MqttSink
from emotiond.sinks.mqtt.transport import base_topic, client_id, read_password

__all__ = ["MqttSink", "base_topic", "client_id", "read_password"]
