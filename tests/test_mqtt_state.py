"""Pure parts of the MQTT sink: dwell/rate-limit rules, observations, discovery payloads, passwords."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from emotiond.config import ConfigError, config_from_mapping
from emotiond.events import EmotionEvent, FaceEmotion, FusedEmotion, Prediction, SceneEmotion
from emotiond.sinks.mqtt import read_password
from emotiond.sinks.mqtt.discovery import EVENT_LABELS, Topics, discovery_messages
from emotiond.sinks.mqtt.state import LabelDwell, Observation, StateTracker
from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parent.parent / "emotiond" / "schemas"


def schema_validator(name: str, ref: str | None = None) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    if ref is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{ref}"}
    return Draft202012Validator(schema)


def obs(label: str | None, confidence: float = 0.8, faces: int = 1, valence: float | None = None) -> Observation:
    probs = {} if label is None else {label: confidence, "neutral": 1.0 - confidence}
    return Observation(label, confidence, probs, valence, faces, "scene")


def test_label_change_counts_only_after_dwell() -> None:
    d = LabelDwell(min_dwell=2.0)
    first = d.update("happy", 0.0)
    assert first is None and d.stable is None
    assert d.update("happy", 1.9) is None
    change = d.update("happy", 2.0)
    assert change is not None and (change.old, change.new) == (None, "happy") and d.stable == "happy"


def test_flapping_label_never_commits() -> None:
    d = LabelDwell(min_dwell=1.0)
    d.update("happy", 0.0)
    d.tick(1.0)
    assert d.stable == "happy"
    for i in range(20):  # sad and angry alternate faster than the dwell
        assert d.update("sad" if i % 2 else "angry", 1.0 + i * 0.4) is None
    assert d.stable == "happy"


def test_tick_commits_a_candidate_without_new_observations() -> None:
    d = LabelDwell(min_dwell=1.5)
    d.update("sad", 10.0)
    assert d.tick(11.0) is None
    assert d.seconds_to_commit(11.0) == pytest.approx(0.5)
    change = d.tick(11.5)
    assert change is not None and change.new == "sad"


def test_returning_to_the_stable_label_cancels_the_candidate() -> None:
    d = LabelDwell(min_dwell=1.0)
    d.update("happy", 0.0)
    d.tick(1.0)
    d.update("sad", 2.0)
    d.update("happy", 2.5)
    assert d.tick(10.0) is None and d.stable == "happy"


def test_state_rate_limit_and_heartbeat() -> None:
    t = StateTracker(min_interval=1.0, min_dwell=0.0, heartbeat=30.0)
    assert t.due(0.0)  # never published
    t.observe(obs("happy"), 0.0)
    t.published(0.0)
    assert not t.due(0.5)
    t.observe(obs("sad"), 0.5)  # a real change, but inside min_interval
    assert not t.due(0.9)
    assert t.due(1.0)
    t.published(1.0)
    t.observe(obs("sad", 0.82), 2.0)  # below the significance threshold: not a change
    assert not t.due(5.0)
    assert t.seconds_until_check(5.0) == pytest.approx(26.0)
    assert t.due(31.0)  # heartbeat


def test_confidence_move_and_forced_change_are_published() -> None:
    t = StateTracker(min_interval=0.5, min_dwell=0.0, heartbeat=60.0)
    t.observe(obs("happy", 0.6), 0.0)
    t.published(0.0)
    t.observe(obs("happy", 0.9), 1.0)
    assert t.due(1.0)
    t.published(1.0)
    assert not t.due(2.0)
    t.mark_changed()  # privacy toggled, queue overflowed, audio result
    assert t.due(2.0)


def test_snapshot_reports_the_stable_label_while_a_new_one_dwells() -> None:
    t = StateTracker(min_interval=0.0, min_dwell=5.0, heartbeat=60.0)
    t.observe(obs("happy", 0.9), 0.0)
    t.tick(5.0)
    t.observe(Observation("sad", 0.7, {"sad": 0.7, "happy": 0.2, "neutral": 0.1}, None, 1, "scene"), 6.0)
    snap = t.snapshot()
    assert snap["label"] == "happy" and snap["confidence"] == pytest.approx(0.2)


def _prediction(label: str, conf: float) -> Prediction:
    return Prediction({label: conf, "neutral": round(1 - conf, 4)}, label, conf)


def test_observation_prefers_fused_then_scene() -> None:
    face = FaceEmotion(3, (1, 2, 30, 30), 0.9, _prediction("sad", 0.7))
    scene = SceneEmotion(1, _prediction("sad", 0.7))
    plain = Observation.from_event(EmotionEvent(1, (face,), scene))
    assert (plain.label, plain.source, plain.valence, plain.faces) == ("sad", "scene", None, 1)
    fused = FusedEmotion(_prediction("happy", 0.6), valence=0.5, arousal=0.1, modalities={"face": 0.0})
    f = Observation.from_event(EmotionEvent(1, (face,), scene, fused=fused))
    assert (f.label, f.source, f.valence) == ("happy", "fused", 0.5)
    empty = Observation.from_event(EmotionEvent(2, (), SceneEmotion(0, None)))
    assert (empty.label, empty.faces, empty.probabilities) == (None, 0, {})


def test_discovery_payloads_validate_and_ids_are_stable() -> None:
    topics = Topics("emotiond/kitchen")
    msgs = discovery_messages("homeassistant", "kitchen", "Kitchen", topics)
    again = discovery_messages("homeassistant", "kitchen", "Kitchen", topics)
    assert msgs == again
    components = [t.split("/")[1] for t, _ in msgs]
    # issue 13/18 added the Privacy switch and the Problems, Voice and Vocal arousal sensors
    assert sorted(set(components)) == ["button", "device_automation", "event", "sensor", "switch"]
    unique_ids = [p["unique_id"] for _, p in msgs if "unique_id" in p]
    assert len(unique_ids) == len(set(unique_ids)) == 10
    whole = schema_validator("ha_discovery.json")
    for topic, payload in msgs:
        prefix, component, node, _obj, tail = topic.split("/")
        assert (prefix, node, tail) == ("homeassistant", "kitchen", "config")
        schema_validator("ha_discovery.json", component).validate(payload)
        whole.validate(payload)
        assert payload["device"] == msgs[0][1]["device"]  # one shared device block
        if component != "device_automation":
            assert payload["availability"][0]["topic"] == "emotiond/kitchen/availability"
    event = next(p for t, p in msgs if t.split("/")[1] == "event")
    assert event["event_types"] == list(EVENT_LABELS) and "happy" in EVENT_LABELS
    button = next(p for t, p in msgs if t.split("/")[1] == "button")
    assert button["command_topic"] == "emotiond/kitchen/cmd/capture_audio"


def test_schema_rejects_a_broken_discovery_payload() -> None:
    _, payload = discovery_messages("homeassistant", "k", "K", Topics("emotiond/k"))[0]
    broken = {k: v for k, v in payload.items() if k != "availability"}
    assert not schema_validator("ha_discovery.json", "sensor").is_valid(broken)


def test_password_from_env_file_and_credentials_directory(tmp_path: Path) -> None:
    base = {"device": {"id": "x"}}
    c = config_from_mapping({**base, "mqtt": {"password_env": "MQTT_PW"}}, environ={})
    assert read_password(c.mqtt, {"MQTT_PW": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="MQTT_PW is not set"):
        read_password(c.mqtt, {})
    (tmp_path / "mqtt-password").write_text("from-file\n")
    c = config_from_mapping({**base, "mqtt": {"password_file": "mqtt-password"}}, environ={})
    assert read_password(c.mqtt, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "from-file"
    with pytest.raises(ConfigError, match="cannot read"):
        read_password(c.mqtt, {"CREDENTIALS_DIRECTORY": str(tmp_path / "nope")})


@pytest.mark.parametrize(
    "mqtt, message",
    [
        ({"reconnect_min": 10.0, "reconnect_max": 1.0}, "reconnect_min"),
        ({"base_topic": "home/#"}, "base_topic"),
        ({"base_topic": "/home"}, "base_topic"),
        ({"password_env": "A", "password_file": "b"}, "not both"),
        ({"tls_key": "k.pem"}, "tls_key needs tls_cert"),
        ({"port": 0}, "mqtt.port"),
        ({"queue_size": "many"}, "mqtt.queue_size"),
    ],
)
def test_bad_mqtt_config_is_one_line_error(mqtt: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config_from_mapping({"mqtt": mqtt}, "cfg.toml", environ={})
    assert "\n" not in str(info.value)
