"""The dashboard's pure parts: timeline ring buffer, voice summary, Basic auth, the SSE hub."""

from __future__ import annotations

import base64

from emotiond.events import AudioEvent, EmotionEvent, FaceEmotion, FusedEmotion, Prediction, SceneEmotion
from emotiond.web.auth import authorized
from emotiond.web.frames import FrameStore
from emotiond.web.sse import EventHub, format_event
from emotiond.web.state import LiveState, voice_summary

HAPPY = Prediction({"happy": 0.9, "neutral": 0.1}, "happy", 0.9)


def emotion(t: float, faces: int = 1, fused: bool = False) -> EmotionEvent:
    face = FaceEmotion(1, (0, 0, 10, 10), 0.9, HAPPY)
    f = FusedEmotion(HAPPY, 0.7, 0.2, {"face": 0.0}) if fused else None
    return EmotionEvent(frame=int(t), faces=(face,) * faces, scene=SceneEmotion(faces, HAPPY), fused=f, timestamp=t)


def test_timeline_keeps_one_point_per_second_for_the_configured_minutes() -> None:
    state = LiveState(history_seconds=60, min_interval=1, min_dwell=0, heartbeat=60)
    for i in range(0, 200 * 4):  # 200 s of events at 4 per second
        state.handle(emotion(1000 + i / 4, fused=i % 2 == 0), now=i / 4)
    points = state.recent(False)["points"]
    assert 55 <= len(points) <= 61
    assert points[-1]["t"] - points[0]["t"] <= 60
    assert len({int(p["t"]) for p in points}) == len(points)  # one per second


def test_fused_points_carry_valence_and_arousal_and_state_is_the_mqtt_document() -> None:
    state = LiveState(history_seconds=60, min_interval=1, min_dwell=0, heartbeat=60)
    state.handle(emotion(1000, faces=2, fused=True), now=0)
    (point,) = state.recent(False)["points"]
    assert point == {"t": 1000, "label": "happy", "faces": 2, "valence": 0.7, "arousal": 0.2}
    doc = state.state(privacy=False, dropped_events=3, now=0)
    assert (doc["label"], doc["faces"], doc["source"], doc["valence"]) == ("happy", 2, "fused", 0.7)
    assert (doc["privacy"], doc["dropped_events"], doc["audio_age"]) == (False, 3, None)
    private = state.state(privacy=True, dropped_events=3, now=0)  # as on MQTT: nothing about the room
    assert private["privacy"] is True and not {"label", "faces", "probabilities", "valence"} & set(private)


def test_voice_summary_says_whether_it_is_validated() -> None:
    assert voice_summary(AudioEvent("web", "ok", 2.0, HAPPY, arousal=0.4))["validated"] is True
    unsure = voice_summary(AudioEvent("web", "ok", 2.0, Prediction({"happy": 0.3}, "uncertain", 0.3)))
    assert unsure["validated"] is False and unsure["label"] == "uncertain"
    quiet = voice_summary(AudioEvent("web", "no_speech", 2.0))
    assert (quiet["label"], quiet["validated"], quiet["confidence"]) == ("no_speech", False, None)
    state = LiveState(60, 1, 0, 60)
    state.handle(AudioEvent("web", "ok", 2.0, HAPPY), now=10)
    state.handle(AudioEvent("web", "busy"), now=11)  # an ignored trigger does not replace the result
    assert state.recent(False)["voice"]["label"] == "happy"
    assert state.state(False, 0, now=15)["audio_age"] == 5.0


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_auth() -> None:
    assert authorized(None, None) and authorized("anything", None)  # no password set: open
    assert authorized(_basic("emotiond:pw"), "pw")
    for header in (None, "", _basic("emotiond:PW"), _basic("admin:pw"), _basic("emotiondpw"), "Basic ***", "Bearer x",
                   _basic("emotiond:pw:x")):
        assert not authorized(header, "pw"), header
    assert authorized(_basic("emotiond:pw:x"), "pw:x")  # the password may contain ':'


def test_hub_is_bounded_and_a_slow_subscriber_loses_its_oldest_events() -> None:
    hub = EventHub(max_subscribers=2, queue_size=3)
    a, b = hub.subscribe(), hub.subscribe()
    assert a is not None and b is not None and hub.subscribe() is None
    for i in range(5):
        hub.publish(f'{{"n":{i}}}')
    assert [a.get(0) for _ in range(4)] == [(3, '{"n":2}'), (4, '{"n":3}'), (5, '{"n":4}'), None]
    assert hub.dropped == 4  # two per subscriber
    b.close()
    assert hub.subscribe() is not None  # the slot is free again
    assert format_event('{"n":1}', 7) == b'id: 7\ndata: {"n":1}\n\n'


def test_the_picture_says_why_a_face_cannot_be_read() -> None:
    store = FrameStore(80, lambda: False)
    unreadable = FaceEmotion(1, (0, 0, 10, 10), 0.9, Prediction({"happy": 0.6, "sad": 0.4}, "uncertain", 0.6),
                             quality=0.1, quality_reason="too_dark")
    readable = FaceEmotion(2, (20, 0, 10, 10), 0.9, Prediction({"happy": 0.9, "sad": 0.1}, "happy", 0.9),
                           quality=0.8, quality_reason="too_small")
    store.on_event(EmotionEvent(1, (unreadable, readable), SceneEmotion(2, None)))
    assert store._labels == {1: "too dark", 2: "happy 90%"}
