"""Home Assistant MQTT discovery payloads: pure functions from names and topics to (topic, JSON dict).

One shared ``device`` block groups every entity under one device; ``unique_id``s are derived from
the device id only, so they survive restarts and re-installs. Every entity carries ``availability``
pointing at the sink's retained online/offline topic. Device triggers (the hardware button) are not
entities and Home Assistant's schema for them has no availability or unique_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emotiond import __version__
from emotiond.events import UNCERTAIN
from emotiond.fusion.labels import EMOTIONS

NO_FACE = "none"  # what the emotion sensor shows while nobody is in view
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


def device_block(device_id: str, name: str) -> dict[str, Any]:
    return {
        "identifiers": [f"emotiond_{device_id}"],
        "name": name,
        "manufacturer": "emotiond",
        "model": "emotiond emotion sensor",
        "sw_version": __version__,
    }


def origin_block() -> dict[str, Any]:
    return {"name": "emotiond", "sw_version": __version__}


def discovery_messages(
    prefix: str, device_id: str, device_name: str, topics: Topics
) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, payload) for every entity and device trigger, in a stable order."""
    device = device_block(device_id, device_name)
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
            value_template=f"{{{{ value_json.label if value_json.label else '{NO_FACE}' }}}}",
            device_class="enum",
            options=[*EVENT_LABELS, NO_FACE],
            json_attributes_topic=topics.state,
            json_attributes_template="{{ value_json.probabilities | tojson }}",
        ),
        entity(
            "sensor", "valence",
            name="Valence",
            icon="mdi:emoticon-happy-outline",
            state_topic=topics.state,
            value_template="{{ value_json.valence }}",  # null renders as None: the sensor shows unknown
            state_class="measurement",
            suggested_display_precision=2,
        ),
        entity(
            "sensor", "confidence",
            name="Emotion confidence",
            icon="mdi:percent",
            state_topic=topics.state,
            value_template="{{ (value_json.confidence * 100) | round(1) }}",
            unit_of_measurement="%",
            state_class="measurement",
        ),
        entity(
            "sensor", "faces",
            name="Faces",
            icon="mdi:face-recognition",
            state_topic=topics.state,
            value_template="{{ value_json.faces }}",
            state_class="measurement",
        ),
        entity(
            "event", "emotion_changed",
            name="Emotion changed",
            icon="mdi:emoticon-excited-outline",
            state_topic=topics.events,
            event_types=list(EVENT_LABELS),
            # Only scene-level changes become HA events; other events render empty and HA ignores them.
            value_template=(
                "{% if value_json.type == 'emotion_changed' and value_json.scope == 'scene' %}"
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
        trigger("button_press", "button_short_press", "press"),
        trigger("button_long_press", "button_long_press", "long_press"),
    ]
