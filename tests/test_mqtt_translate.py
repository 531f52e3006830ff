"""The pure parts of MQTT output without a broker: events -> messages, the outbox's queues and spool."""

from __future__ import annotations

import json
from pathlib import Path

from emotiond.config import MqttConfig
from emotiond.events import (
    ButtonEvent,
    EmotionEvent,
    ErrorEvent,
    FaceAppeared,
    FaceEmotion,
    FaceLost,
    ListeningEvent,
    Prediction,
    PrivacyEvent,
    SceneEmotion,
)
from emotiond.fusion.labels import EMOTIONS
from emotiond.sinks.mqtt.commands import answer_message, parse_command
from emotiond.sinks.mqtt.discovery import Topics
from emotiond.sinks.mqtt.journal import Journal
from emotiond.sinks.mqtt.outbox import INFLIGHT, Outbox
from emotiond.sinks.mqtt.translate import Outgoing, Translator

TOPICS = Topics("emotiond/t")


def pred(label: str, conf: float = 0.8) -> Prediction:
    rest = (1.0 - conf) / 6
    return Prediction({e: (conf if e == label else rest) for e in EMOTIONS}, label, conf)


def emotion(label: str, face_id: int = 7) -> EmotionEvent:
    p = pred(label)
    return EmotionEvent(1, (FaceEmotion(face_id, (10, 20, 60, 60), 0.95, p),), SceneEmotion(1, p))


def bodies(messages: list[Outgoing]) -> list[dict]:
    return [json.loads(m.payload) for m in messages if m.topic == TOPICS.events]


def test_events_are_numbered_in_order_and_unknown_events_give_nothing() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=0.0))
    out = t.translate(FaceAppeared(3, (1, 2, 3, 4), 1), 0.0) + t.translate(ErrorEvent("camera", "gone"), 0.0)
    out += t.translate(FaceLost(3, 2, "happy"), 0.0)
    assert [(b["type"], b["seq"]) for b in bodies(out)] == [("face_appeared", 1), ("error", 2), ("face_lost", 3)]
    assert bodies(out)[0]["box"] == [1, 2, 3, 4] and bodies(out)[2]["last_label"] == "happy"
    assert t.translate(ListeningEvent(True), 0.0) == []
    assert t.seq == 3


def test_button_goes_to_the_events_and_the_button_topic() -> None:
    # issue 13: the button message is JSON with its timestamp (device triggers match its action)
    out = Translator(TOPICS, MqttConfig()).translate(ButtonEvent("long", timestamp=1000.0), 0.0)
    assert [m.topic for m in out] == [TOPICS.events, TOPICS.button]
    assert json.loads(out[1].payload) == {"action": "long", "timestamp": 1000.0}


def test_emotion_changed_waits_for_the_dwell_per_scene_and_per_face() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=1.0, min_interval=0.0))
    assert bodies(t.translate(emotion("happy"), 0.0)) == []  # nothing published yet: the first label dwells too
    first = bodies(t.translate(emotion("happy"), 1.5))
    assert {(b["scope"], b["to"]) for b in first} == {("scene", "happy"), ("face", "happy")}
    face = next(b for b in first if b["scope"] == "face")
    assert face["face_id"] == 7 and face["source"] == "face" and face["from"] is None and face["confidence"] == 0.8
    assert bodies(t.translate(emotion("sad"), 2.0)) == []  # a new label must dwell before it counts
    assert bodies(t.translate(emotion("happy"), 2.5)) == []  # and flapping back cancels it


def test_tick_commits_a_dwelt_scene_label_without_a_new_event() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=1.0, min_interval=0.0))
    t.translate(emotion("happy"), 0.0)
    assert t.tick(0.5, 1000.0) == []
    (msg,) = t.tick(1.2, 1000.0)
    body = json.loads(msg.payload)
    assert body["type"] == "emotion_changed" and body["scope"] == "scene" and body["to"] == "happy"
    assert body["face_id"] is None and body["timestamp"] == 1000.0


def test_state_reports_privacy_audio_age_and_drops() -> None:
    t = Translator(TOPICS, MqttConfig())
    t.translate(PrivacyEvent(True), 0.0)
    state = json.loads(t.state_payload(5.0, 1234.5, dropped=3))
    assert state["privacy"] is True and state["dropped_events"] == 3 and state["audio_age"] is None
    assert state["timestamp"] == 1234.5


def test_reconfigure_changes_the_dwell_of_faces_already_tracked() -> None:
    t = Translator(TOPICS, MqttConfig(min_dwell=10.0, min_interval=0.0))
    t.translate(emotion("happy"), 0.0)
    t.configure(MqttConfig(min_dwell=0.0, min_interval=0.0))
    assert {b["scope"] for b in bodies(t.translate(emotion("happy"), 0.1))} == {"scene", "face"}


def test_commands_are_checked_before_they_run() -> None:
    assert parse_command("bad name", b"{}", False, 100).error
    assert "retained" in (parse_command("privacy", b"{}", True, 100).error or "")
    assert "exceeds" in (parse_command("privacy", b"{" + b" " * 200 + b"}", False, 100).error or "")
    assert "not valid JSON" in (parse_command("privacy", b"{", False, 100).error or "")
    assert "JSON object" in (parse_command("privacy", b"[1]", False, 100).error or "")
    ok = parse_command("privacy", b'{"enabled": true, "id": 5}', False, 100)
    assert ok.error is None and ok.args == {"enabled": True} and ok.request_id == 5
    answer = json.loads(answer_message("t/cmd/x/result", "x", {"ok": True, "v": object()}, 5, 10.0).payload)
    assert answer["command"] == "x" and answer["id"] == 5 and answer["v"].startswith("<object")


def test_outbox_keeps_the_newest_events_and_answers_apart() -> None:
    box = Outbox(queue_size=3, answer_size=2)
    for i in range(5):
        box.put(Outgoing(TOPICS.events, str(i)))
    for i in range(3):
        box.put_answer(Outgoing(TOPICS.result("x"), f"a{i}"))
    assert box.dropped == 2 and box.dropped_answers == 1 and box.queued == 5
    batch = box.take(connected=True)
    assert [m.payload for m in batch] == ["a1", "a2", "2", "3", "4"]  # answers first, then events in order


def test_outbox_window_and_resync_after_a_reconnect() -> None:
    box = Outbox(queue_size=100)
    for i in range(INFLIGHT + 5):
        box.put(Outgoing(TOPICS.events, str(i)))
    assert box.take(connected=False) == []
    batch = box.take(connected=True)
    assert len(batch) == INFLIGHT
    for mid, msg in enumerate(batch):
        box.sent(mid, msg)
    assert box.take(connected=True) == []  # the window is full
    box.disconnected()
    box.ack(0)
    assert box.take(connected=True) == []  # paho's re-sends come first
    for mid in range(1, INFLIGHT):
        box.ack(mid)
    assert [m.payload for m in box.take(connected=True)] == [str(i) for i in range(INFLIGHT, INFLIGHT + 5)]


def test_spool_round_trip_keeps_order_and_drops_other_base_topics(tmp_path: Path) -> None:
    """The journal replaced the version 1 snapshot: same order and base-topic filter across a restart."""
    path = tmp_path / "spool.json"
    journal = Journal(path, TOPICS.base)
    journal.open()
    box = Outbox(queue_size=10, journal=journal)
    box.put(Outgoing(TOPICS.events, "in flight"))
    box.sent(1, box.take(connected=True)[0])
    box.put(Outgoing(TOPICS.events, "waiting"))
    box.put(Outgoing("elsewhere/events", "stale"))
    box.put_answer(Outgoing(TOPICS.result("privacy"), "answer"))
    journal.close(used_seq=9, dropped=0)
    again_journal = Journal(path, TOPICS.base)
    restored = again_journal.open()
    assert restored.next_seq == 10 and not restored.crashed
    assert [m.payload for _, m in restored.messages] == ["in flight", "waiting", "answer"]
    again = Outbox(queue_size=10, journal=again_journal)
    again.restore(restored.messages, restored.dropped, TOPICS.base + "/cmd/")
    assert [m.payload for m in again.take(connected=True)] == ["answer", "in flight", "waiting"]
    (tmp_path / "bad.json").write_text("{")
    assert Journal(tmp_path / "bad.json", TOPICS.base).open().messages == []
    assert Journal(tmp_path / "missing.json", TOPICS.base).open().next_seq == 1
