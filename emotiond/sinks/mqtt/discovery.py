"""Home Assistant MQTT discovery payloads: pure functions from names and topics to (topic, JSON dict).

One shared ``device`` block groups every entity under one device; ``unique_id``s are derived from
the device id only, so they survive restarts and re-installs. Every entity carries ``availability``
pointing at the sink's retained online/offline topic. Device triggers (the hardware button) are not
entities and Home Assistant's schema for them has no availability or unique_id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from emotiond import __version__
from emotiond.events import UNCERTAIN
from emotiond.fusion.labels import EMOTIONS

NO_FACE = "none"  # what the emotion sensor shows while nobody is in view
PRIVACY = "privacy"  # what the emotion and voice sensors show in privacy mode
EXPIRE_HEARTBEATS = 3  # live sensors go unavailable after this many missed heartbeats (a hung daemon)
EVENT_LABELS: tuple[str, ...] = (*EMOTIONS, UNCERTAIN)


@dataclass(frozen=True)
class Topics:
    """Every topic the MQTT sink uses, derived from the base topic in one place."""

    base: str

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def attributes(self) -> str:
        return f"{self.base}/attributes"

    @property
    def voice(self) -> str:
        return f"{self.base}/voice"

    @property
    def button(self) -> str:
        return f"{self.base}/button"

    @property
    def snapshot(self) -> str:
        return f"{self.base}/snapshot"

    @property
    def commands(self) -> str:
        return f"{self.base}/cmd/#"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def result(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/result"


def device_block(device_id: str, name: str, configuration_url: str | None = None) -> dict[str, Any]:
    """The device entry; ``configuration_url`` (the web dashboard, when on) becomes HA's "Visit" link."""
    block: dict[str, Any] = {
        "identifiers": [f"emotiond_{device_id}"],
        "name": name,
        "manufacturer": "emotiond",
        "model": "emotiond emotion sensor",
        "sw_version": __version__,
    }
    if configuration_url:
        block["configuration_url"] = configuration_url
    return block


def origin_block() -> dict[str, Any]:
    return {"name": "emotiond", "sw_version": __version__}


def fresh(stale_after: float) -> str:
    """A Jinja condition: the message is younger than ``stale_after`` s (by its ``age`` when it was
    delivered late, and by its timestamp against Home Assistant's clock); "true" when 0."""
    if stale_after <= 0:
        return "true"
    limit = f"{stale_after:g}"
    return (f"(value_json.get('age', 0) < {limit} and "
            f"(as_timestamp(now()) - value_json.get('timestamp', 0)) < {limit})")


def discovery_messages(
    prefix: str, device_id: str, device_name: str, topics: Topics, *, heartbeat: float = 60.0,
    stale_after: float = 120.0, configuration_url: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, payload) for every entity and device trigger, in a stable order."""
    device = device_block(device_id, device_name, configuration_url)
    expire = {"expire_after": max(1, math.ceil(EXPIRE_HEARTBEATS * heartbeat))}
    is_fresh = fresh(stale_after)
    origin = origin_block()
    availability = [{"topic": topics.availability, "payload_available": "online", "payload_not_available": "offline"}]

    def entity(component: str, object_id: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        payload = {
            "unique_id": f"emotiond_{device_id}_{object_id}",
            "device": device,
            "origin": origin,
            "availability": availability,
            **fields,
        }
        return f"{prefix}/{component}/{device_id}/{object_id}/config", payload

    def trigger(object_id: str, kind: str, payload: str) -> tuple[str, dict[str, Any]]:
        body = {
            "automation_type": "trigger",
            "topic": topics.button,
            "type": kind,
            "subtype": "button_1",
            "payload": payload,
            # a stale press (delivered late after an outage) renders empty and matches nothing
            "value_template": f"{{% if {is_fresh} %}}{{{{ value_json.action }}}}{{% endif %}}",
            "qos": 1,
            "device": device,
            "origin": origin,
        }
        return f"{prefix}/device_automation/{device_id}/{object_id}/config", body

    return [
        entity(
            "sensor", "emotion",
            name="Emotion",
            icon="mdi:emoticon-outline",
            state_topic=topics.state,
            value_template=(f"{{{{ '{PRIVACY}' if value_json.privacy else "
                            f"(value_json.get('label') or '{NO_FACE}') }}}}"),
            device_class="enum",
            options=[*EVENT_LABELS, NO_FACE, PRIVACY],
            # probabilities come from their own topic, published on a label change and at the heartbeat
            json_attributes_topic=topics.attributes,
            json_attributes_template="{{ value_json.probabilities | tojson }}",
            **expire,
        ),
        entity(
            "sensor", "valence",
            name="Valence",
            icon="mdi:emoticon-happy-outline",
            state_topic=topics.state,
            value_template="{{ value_json.get('valence') }}",  # null/absent renders None: unknown
            state_class="measurement",
            suggested_display_precision=2,
            **expire,
        ),
        entity(
            "sensor", "confidence",
            name="Emotion confidence",
            icon="mdi:percent",
            state_topic=topics.state,
            value_template="{{ None if value_json.privacy else ((value_json.confidence * 100) | round(1)) }}",
            unit_of_measurement="%",
            state_class="measurement",
            **expire,
        ),
        entity(
            "sensor", "faces",
            name="Faces",
            icon="mdi:face-recognition",
            state_topic=topics.state,
            value_template="{{ value_json.get('faces') }}",
            unit_of_measurement="faces",
            state_class="measurement",
            **expire,
        ),
        entity(
            "sensor", "voice",
            name="Voice",
            icon="mdi:account-voice",
            state_topic=topics.voice,
            value_template=(f"{{{{ '{PRIVACY}' if value_json.privacy else "
                            f"(value_json.label or '{NO_FACE}') }}}}"),
            json_attributes_topic=topics.voice,
            json_attributes_template=("{{ {'status': value_json.status, 'validated': value_json.validated, "
                                      "'arousal': value_json.arousal, 'age': value_json.age, "
                                      "'result_timestamp': value_json.result_timestamp} | tojson }}"),
            **expire,
        ),
        entity(
            "sensor", "vocal_arousal",
            name="Vocal arousal",
            icon="mdi:waveform",
            state_topic=topics.voice,
            value_template="{{ value_json.arousal }}",
            state_class="measurement",
            suggested_display_precision=2,
            **expire,
        ),
        entity(
            "sensor", "problems",
            name="Problems",
            icon="mdi:alert-circle-outline",
            entity_category="diagnostic",
            state_topic=topics.state,
            value_template="{{ value_json.dropped_events }}",
            unit_of_measurement="events",
            state_class="total_increasing",
            json_attributes_topic=topics.state,
            json_attributes_template=("{{ {'dropped_events': value_json.dropped_events, "
                                      "'last_error': value_json.last_error} | tojson }}"),
            **expire,
        ),
        entity(
            "event", "emotion_changed",
            name="Emotion changed",
            icon="mdi:emoticon-excited-outline",
            state_topic=topics.events,
            event_types=list(EVENT_LABELS),
            # Only fresh scene-level changes become HA events; other and stale events render empty and
            # HA ignores them.
            value_template=(
                f"{{% if value_json.type == 'emotion_changed' and value_json.scope == 'scene' and {is_fresh} %}}"
                "{{ {'event_type': value_json.to, 'from': value_json['from'], "
                "'confidence': value_json.confidence} | tojson }}{% endif %}"
            ),
        ),
        entity(
            "button", "capture_audio",
            name="Listen",
            icon="mdi:microphone",
            command_topic=topics.command("capture_audio"),
            payload_press="{}",
            qos=1,
        ),
        entity(
            "switch", "privacy",
            name="Privacy",
            icon="mdi:eye-off",
            command_topic=topics.command("privacy"),
            payload_on='{"enabled":true}',
            payload_off='{"enabled":false}',
            state_topic=topics.state,
            value_template="{{ 'ON' if value_json.privacy else 'OFF' }}",
            state_on="ON",
            state_off="OFF",
            qos=1,
        ),
        trigger("button_press", "button_short_press", "press"),
        trigger("button_long_press", "button_long_press", "long_press"),
    ]
