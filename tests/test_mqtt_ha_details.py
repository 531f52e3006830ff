"""Issue 13/18 Home Assistant details, on the pure translator and discovery (no broker): the privacy
state, no label without a face, late deliveries' age, the rarely-changing side topics, and the
discovery payloads (expire_after, stale-event templates, the switch and the new sensors)."""

from __future__ import annotations

import json

from emotiond.config import MqttConfig
from emotiond.events import (
    AudioEvent,
    ButtonEvent,
    EmotionEvent,
    ErrorEvent,
    FaceEmotion,
    Prediction,
    PrivacyEvent,
    SceneEmotion,
)
from emotiond.fusion.labels import EMOTIONS
from emotiond.sinks.mqtt.discovery import Topics, discovery_messages, fresh
from emotiond.sinks.mqtt.translate import LATE_AFTER, Outgoing, Translator

from mosquitto import validator

TOPICS = Topics("emotiond/t")


def pred(label: str, conf: float = 0.8) -> Prediction:
    rest = (1.0 - conf) / 6
    return Prediction({e: (conf if e == label else rest) for e in EMOTIONS}, label, conf)


def seen(label: str, conf: float = 0.8) -> EmotionEvent:
    p = pred(label, conf)
    return EmotionEvent(1, (FaceEmotion(1, (10, 20, 60, 60), 0.95, p),), SceneEmotion(1, p))


def nobody() -> EmotionEvent:
    return EmotionEvent(2, (), SceneEmotion(0, None))


def state(t: Translator, now: float = 10.0) -> dict:
    return dict(json.loads(t.state_payload(now, 1000.0 + now, dropped=0)))


def side(t: Translator, now: float) -> dict[str, dict]:
    return {topic: json.loads(body) for topic, body in t.side_payloads(now, 1000.0 + now)}


def test_privacy_state_carries_no_label_faces_or_probabilities_and_forgets_the_room() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=0.0))
    t.translate(seen("happy"), 0.0)
    t.translate(AudioEvent("gpio", "ok", 2.0, prediction=pred("sad"), arousal=0.3), 0.0)
    assert state(t)["label"] == "happy"
    t.translate(PrivacyEvent(True), 1.0)
    t.translate(seen("angry"), 1.5)  # one already on its way: ignored
    body = state(t)
    validator("state.json").validate(body)
    assert body["privacy"] is True and not {"label", "faces", "probabilities", "confidence", "valence"} & set(body)
    sides = side(t, 2.0)
    assert sides[TOPICS.attributes]["probabilities"] == {}
    assert sides[TOPICS.voice]["label"] is None and sides[TOPICS.voice]["privacy"] is True
    t.translate(PrivacyEvent(False), 3.0)
    after = state(t)  # nothing stale resurfaces: the last label and the voice are gone
    assert after["label"] is None and after["faces"] == 0 and after["audio_age"] is None
    assert side(t, 3.0)[TOPICS.voice]["label"] is None


def test_no_label_while_nobody_is_in_view_without_waiting_for_the_dwell() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=5.0))
    t.translate(seen("happy"), 0.0)
    t.translate(seen("happy"), 6.0)
    assert state(t)["label"] == "happy" and side(t, 6.0)[TOPICS.attributes]["probabilities"]["happy"] == 0.8
    t.translate(nobody(), 6.5)  # half a second later, well inside min_dwell
    body = state(t)
    assert (body["label"], body["confidence"], body["faces"]) == (None, 0.0, 0)
    assert not t.side_due(6.5)  # the attributes follow the stable label, not every dropout
    back = t.translate(seen("happy"), 7.0)  # a brief dropout: the face is back with the same label
    assert [m for m in back if json.loads(m.payload)["type"] == "emotion_changed"] == []  # no event spam
    assert state(t)["label"] == "happy"


def test_late_event_and_button_messages_get_their_age_when_handed_over() -> None:
    t = Translator(TOPICS, MqttConfig())
    messages = t.translate(ButtonEvent("press", timestamp=1000.0), 0.0)
    assert all("age" not in json.loads(t.with_age(m, 1000.0 + LATE_AFTER / 2).payload) for m in messages)
    late = [json.loads(t.with_age(m, 1600.0).payload) for m in messages]  # ten minutes in the queue
    assert [(b["timestamp"], b["age"]) for b in late] == [(1000.0, 600.0), (1000.0, 600.0)]
    validator("event.json").validate(late[0])
    again = json.loads(t.with_age(Outgoing(TOPICS.events, json.dumps(late[0])), 1700.0).payload)
    assert again["age"] == 700.0  # re-handed after the spool: recomputed from the timestamp
    answer = Outgoing(TOPICS.result("privacy"), '{"ok":true,"timestamp":1000.0}')
    assert t.with_age(answer, 1600.0) is answer  # command answers are not events


def test_probabilities_go_out_only_on_a_label_change_or_the_heartbeat_rounded() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=0.0, heartbeat=60.0))
    t.translate(seen("happy", 0.8123), 0.0)
    first = side(t, 0.0)[TOPICS.attributes]
    assert first["probabilities"]["happy"] == 0.81
    for i in range(1, 50):  # the confidence wobbles with the same label: no new attributes
        t.translate(seen("happy", 0.7 + (i % 7) / 100), i * 0.2)
        assert not t.side_due(i * 0.2)
    t.translate(seen("sad"), 11.0)
    assert t.side_due(11.0)  # the label changed
    side(t, 11.0)
    assert not t.side_due(70.0) and t.side_due(71.0)  # and the heartbeat
    assert t.seconds_until_side(20.0) == 51.0


def test_voice_side_topic_has_label_or_status_validated_arousal_and_age() -> None:
    t = Translator(TOPICS, MqttConfig())
    t.translate(AudioEvent("gpio", "ok", 2.0, prediction=pred("fear", 1.0), arousal=0.4567, validated=False,
                           timestamp=999.0), 5.0)
    voice = side(t, 17.9)[TOPICS.voice]
    validator("voice.json").validate(voice)
    assert (voice["label"], voice["validated"], voice["arousal"], voice["age"]) == ("fear", False, 0.46, 12)
    assert voice["result_timestamp"] == 999.0
    t.translate(AudioEvent("gpio", "busy"), 20.0)  # an ignored trigger is no result
    assert side(t, 20.0)[TOPICS.voice]["label"] == "fear"
    t.translate(AudioEvent("gpio", "no_speech", 2.0), 21.0)
    assert side(t, 21.0)[TOPICS.voice]["label"] == "no_speech"


def test_problems_carry_the_last_error() -> None:
    t = Translator(TOPICS, MqttConfig())
    assert state(t)["last_error"] is None
    t.translate(ErrorEvent("camera", "unplugged", timestamp=1234.0), 0.0)
    assert state(t)["last_error"] == {"component": "camera", "message": "unplugged", "timestamp": 1234.0}


def test_discovery_expire_after_switch_sensors_and_stale_templates() -> None:
    msgs = dict(discovery_messages("homeassistant", "k", "K", Topics("emotiond/k"), heartbeat=20.0, stale_after=600))
    for payload in msgs.values():
        validator("ha_discovery.json").validate(payload)
    sensors = {t.split("/")[3]: p for t, p in msgs.items() if t.split("/")[1] == "sensor"}
    assert set(sensors) == {"emotion", "valence", "confidence", "faces", "voice", "vocal_arousal", "problems"}
    assert {p["expire_after"] for p in sensors.values()} == {60}  # three heartbeats
    assert sensors["emotion"]["json_attributes_topic"] == "emotiond/k/attributes"
    assert sensors["faces"]["unit_of_measurement"] == "faces"
    assert sensors["voice"]["state_topic"] == sensors["vocal_arousal"]["state_topic"] == "emotiond/k/voice"
    switch = msgs["homeassistant/switch/k/privacy/config"]
    assert switch["command_topic"] == "emotiond/k/cmd/privacy"
    assert json.loads(switch["payload_on"]) == {"enabled": True}
    event = msgs["homeassistant/event/k/emotion_changed/config"]
    assert fresh(600) in event["value_template"] and "as_timestamp(now())" in fresh(600)
    trigger = msgs["homeassistant/device_automation/k/button_press/config"]
    assert fresh(600) in trigger["value_template"] and "value_json.action" in trigger["value_template"]
    assert fresh(0) == "true"


def test_the_device_links_to_the_web_dashboard_only_while_it_is_on() -> None:
    from emotiond.config import Config, WebConfig
    from emotiond.web import dashboard_url

    topics = Topics("emotiond/abc")
    off = dashboard_url(Config())
    on = dashboard_url(Config(web=WebConfig(enabled=True, port=8123)))
    assert off is None and on == "http://127.0.0.1:8123/"
    for url, expected in ((off, None), (on, on)):
        messages = discovery_messages("homeassistant", "abc", "Living room", topics, configuration_url=url)
        devices = [payload["device"] for _topic, payload in messages if "device" in payload]
        assert devices and all(d.get("configuration_url") == expected for d in devices)
        for topic, payload in messages:
            validator("ha_discovery.json", topic.split("/")[1]).validate(payload)


def test_the_state_says_why_the_room_cannot_be_read() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=0.0))
    p = Prediction(pred("happy").probabilities, "uncertain", 0.8)
    dark = EmotionEvent(1, (FaceEmotion(1, (10, 20, 60, 60), 0.95, p, quality=0.1, quality_reason="too_dark"),),
                        SceneEmotion(1, p, "too_dark", 0.1))
    t.translate(dark, 0.0)
    body = state(t)
    validator("state.json").validate(body)
    assert (body["label"], body["quality_reason"]) == ("uncertain", "too_dark")
    t.translate(seen("happy"), 1.0)
    assert state(t, 1.0)["quality_reason"] is None
