"""The MQTT sink against a real mosquitto broker and real paho clients: payloads, delivery, commands."""

from __future__ import annotations

import collections
import json
import logging
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from emotiond.config import Config, config_from_mapping
from emotiond.daemon import Daemon
from emotiond.events import (
    AudioEvent,
    ButtonEvent,
    EmotionEvent,
    ErrorEvent,
    FaceAppeared,
    FaceEmotion,
    FaceLost,
    FusedEmotion,
    Prediction,
    PrivacyEvent,
    SceneEmotion,
)
from emotiond.sinks.mqtt import MqttSink

from mosquitto import Broker, Recorder, broker_fixture, find_binary, validator, wait_until  # noqa: F401 (a fixture)

DEV = "testdev"
BASE = f"emotiond/{DEV}"



def make_config(b: Broker, **mqtt: Any) -> Config:
    settings = {"enabled": True, "host": b.host, "port": b.port, "min_interval": 0.0, "min_dwell": 0.0,
                "reconnect_min": 0.1, "reconnect_max": 0.5, **mqtt}
    return config_from_mapping({"device": {"id": DEV, "name": "Test device"}, "mqtt": settings}, environ={})


class Running:
    """A started sink with a real Daemon object (its command registry), closed at the end."""

    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.daemon = Daemon(config, pipeline=None, config_path=config_path)  # type: ignore[arg-type]  # not run
        self.sink = MqttSink(config)
        self.sink.start(self.daemon.context)

    def close(self) -> None:
        self.sink.stop()
        self.sink.close()


@pytest.fixture
def running(broker: Broker) -> Iterator[Any]:
    made: list[Running] = []

    def start(wait: bool = True, config_path: Path | None = None, **mqtt: Any) -> Running:
        r = Running(make_config(broker, **mqtt), config_path)
        made.append(r)
        if wait:
            wait_until(lambda: r.sink.ready, 10, what="the sink to connect and subscribe")
        return r

    yield start
    for r in made:
        r.close()


def pred(label: str, conf: float) -> Prediction:
    rest = (1.0 - conf) / 6
    from emotiond.fusion.labels import EMOTIONS

    return Prediction({e: (conf if e == label else rest) for e in EMOTIONS}, label, conf)


def emotion(label: str, conf: float = 0.8, fused: bool = False) -> EmotionEvent:
    p = pred(label, conf)
    f = FusedEmotion(p, valence=0.6 if label == "happy" else -0.4, arousal=0.2, modalities={"face": 0.0}) if fused else None
    return EmotionEvent(1, (FaceEmotion(7, (10, 20, 60, 60), 0.95, p),), SceneEmotion(1, p), fused=f)


def events_of(rec: Recorder) -> list[dict]:
    return rec.json_on(f"{BASE}/events")


def test_discovery_state_and_events_validate_against_schemas(broker: Broker, running: Any) -> None:
    rec = Recorder(broker, ["homeassistant/#", f"{BASE}/#"])
    r = running()
    kinds = {"sensor", "event", "button", "switch", "device_automation"}
    # There are more than 8 configs and they arrive one by one: wait for every kind, not a count.
    wait_until(lambda: {t.split("/")[1] for t, _, _ in rec.messages if t.startswith("homeassistant/")} >= kinds, 10,
               what="a discovery config of every kind")
    disc = [(t, json.loads(p)) for t, p, _ in rec.messages if t.startswith("homeassistant/")]
    for topic, payload in disc:
        validator("ha_discovery.json", topic.split("/")[1]).validate(payload)
        assert payload["device"]["sw_version"]
    assert {t.split("/")[1] for t, _ in disc} == kinds
    wait_until(lambda: rec.last(f"{BASE}/availability") == b"online", 10, what="availability online")

    sink = r.sink
    for ev in (
        FaceAppeared(7, (10, 20, 60, 60), 1),
        emotion("happy", 0.8),
        emotion("sad", 0.7, fused=True),
        AudioEvent("mqtt", "ok", 2.5, prediction=pred("angry", 0.6)),
        AudioEvent("gpio", "no_speech", 3.0),
    ):
        sink.handle(ev)
    # the fused state before privacy mode is turned on (the privacy state carries no label, issue 13)
    wait_until(lambda: any(s.get("label") == "sad" for s in rec.json_on(f"{BASE}/state")), 10, what="state sad")
    for ev in (
        ButtonEvent("press"),
        ButtonEvent("long_press"),
        PrivacyEvent(True),
        ErrorEvent("camera", "unplugged"),
        FaceLost(7, 40, "sad"),
    ):
        sink.handle(ev)
    wait_until(lambda: any(e["type"] == "face_lost" for e in events_of(rec)), 10, what="the last event")
    evs = events_of(rec)
    check = validator("event.json")
    for e in evs:
        check.validate(e)
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    types = [e["type"] for e in evs]
    assert types[0] == "face_appeared" and types[-1] == "face_lost"
    for kind in ("emotion_changed", "audio_captured", "button", "privacy", "error"):
        assert kind in types
    scene_changes = [(e["from"], e["to"], e["source"]) for e in evs if e["type"] == "emotion_changed" and e["scope"] == "scene"]
    assert scene_changes == [(None, "happy", "scene"), ("happy", "sad", "fused")]
    audio = [e for e in evs if e["type"] == "audio_captured"]
    assert audio[0]["result"]["label"] == "angry" and audio[1]["status"] == "no_speech" and audio[1]["result"] is None
    assert [json.loads(p)["action"] for p in rec.on(f"{BASE}/button")] == ["press", "long_press"]  # JSON since issue 13

    wait_until(lambda: any(s["privacy"] for s in rec.json_on(f"{BASE}/state")), 10, what="state with privacy on")
    states = rec.json_on(f"{BASE}/state")
    for s in states:
        validator("state.json").validate(s)
    last = [s for s in states if not s["privacy"]][-1]
    assert last["label"] == "sad" and last["source"] == "fused" and last["valence"] == pytest.approx(-0.4)
    assert last["audio_age"] is not None and last["dropped_events"] == 0
    assert "label" not in states[-1] and "faces" not in states[-1] and states[-1]["privacy"] is True
    rec.close()


def test_mosquitto_sub_sees_retained_state_and_availability(broker: Broker, running: Any) -> None:
    r = running()
    r.sink.handle(emotion("happy", 0.9))
    probe = Recorder(broker, [f"{BASE}/state"])
    wait_until(lambda: any(s["label"] == "happy" for s in probe.json_on(f"{BASE}/state")), 10, what="state")
    probe.close()
    out = subprocess.run(
        [find_binary("mosquitto_sub"), "-h", broker.host, "-p", str(broker.port), "-v", "-C", "2", "-W", "10",
         "-t", f"{BASE}/state", "-t", f"{BASE}/availability"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    got = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert got[f"{BASE}/availability"] == "online"
    state = json.loads(got[f"{BASE}/state"])
    validator("state.json").validate(state)
    assert state["label"] == "happy" and state["faces"] == 1


def test_events_survive_a_broker_restart_in_order(tmp_path: Path) -> None:
    b = Broker(tmp_path / "broker", persistence=True).start()
    # A persistent session (clean=False, QoS 1) on a persisting broker: the observer misses nothing,
    # whichever of it and the sink reconnects first after the restart.
    rec = Recorder(b, [f"{BASE}/events", f"{BASE}/availability"], client_id="observer", clean=False)
    r = Running(make_config(b, queue_size=100))
    try:
        wait_until(lambda: r.sink.connected, 10, what="connect")
        for i in range(20):
            r.sink.handle(ErrorEvent("test", f"before {i}"))
        wait_until(lambda: len(events_of(rec)) >= 20, 10, what="20 events before the kill")
        b.kill()
        wait_until(lambda: not r.sink.connected, 10, what="the sink to notice the broker is gone")
        for i in range(30):
            r.sink.handle(ErrorEvent("test", f"during {i}"))  # handle() must not block while disconnected
        assert r.sink.queued >= 30
        b.start()
        wait_until(lambda: r.sink.connects >= 2, 20, what="the sink to reconnect")
        wait_until(lambda: len({e["seq"] for e in events_of(rec)}) >= 50, 20, what="all 50 events")
        evs = events_of(rec)
        first_seen: list[int] = []
        for e in evs:  # QoS 1 is at least once: a repeat carries the same seq and is skipped
            if e["seq"] not in first_seen:
                first_seen.append(e["seq"])
        assert first_seen == list(range(1, 51))
        messages = [e["message"] for e in sorted({e["seq"]: e for e in evs}.values(), key=lambda e: e["seq"])]
        assert messages == [f"before {i}" for i in range(20)] + [f"during {i}" for i in range(30)]
        wait_until(lambda: r.sink.queued == 0, 10, what="the queue to drain")
        wait_until(lambda: rec.last(f"{BASE}/availability") == b"online", 10, what="online again")
        assert rec.on(f"{BASE}/availability").count(b"online") >= 2
    finally:
        r.close()
        rec.close()
        b.stop()


def test_kill_mid_stream_keeps_order_and_loses_nothing_produced_while_down(tmp_path: Path) -> None:
    """Events flow while the broker dies: some are in paho's hands (sent, unacknowledged) at the kill.

    Those are re-sent by paho after the reconnect, before anything newer, so the stream stays in order.
    Events the dead broker had acknowledged but not yet forwarded are the broker's loss, not ours:
    everything produced from the moment the sink saw the connection drop must arrive.
    """
    b = Broker(tmp_path / "broker", persistence=True).start()
    rec = Recorder(b, [f"{BASE}/events"], client_id="observer3", clean=False)
    r = Running(make_config(b, queue_size=10000))
    stop = threading.Event()
    produced = [0]
    marks: dict[str, int] = {}

    def produce() -> None:
        while not stop.is_set():
            produced[0] += 1
            r.sink.handle(ErrorEvent("test", str(produced[0])))
            if "down" not in marks and not r.sink.connected and r.sink.connects:
                marks["down"] = produced[0]
            stop.wait(0.002)

    try:
        wait_until(lambda: r.sink.connected, 10, what="connect")
        t = threading.Thread(target=produce, daemon=True)
        t.start()
        wait_until(lambda: len(events_of(rec)) >= 200, 20, what="a stream of events")
        b.kill()
        wait_until(lambda: "down" in marks, 10, what="the sink to see the broker gone")
        wait_until(lambda: produced[0] >= marks["down"] + 300, 20, what="300 events while down")
        b.start()
        wait_until(lambda: r.sink.connects >= 2, 20, what="reconnect")
        wait_until(lambda: len({e["seq"] for e in events_of(rec)}) >= 200 + 300, 20, what="events after restart")
        stop.set()
        t.join(5)
        total = produced[0]
        wait_until(lambda: max(e["seq"] for e in events_of(rec)) == total, 20, what="the last event")
        first_seen: list[int] = []
        for e in events_of(rec):
            if not first_seen or e["seq"] > first_seen[-1]:
                first_seen.append(e["seq"])
            else:  # anything not increasing must be a QoS 1 duplicate of an already-seen event
                assert e["seq"] in set(first_seen), f"event {e['seq']} arrived out of order"
        missing = sorted(set(range(1, total + 1)) - set(first_seen))
        assert all(m < marks["down"] for m in missing), f"lost events produced while disconnected: {missing}"
        print(f"produced {total}, down at {marks['down']}, lost in the broker crash: {len(missing)}, "
              f"duplicates: {len(events_of(rec)) - len(first_seen)}")
    finally:
        stop.set()
        r.close()
        rec.close()
        b.stop()


def test_full_queue_drops_the_oldest_and_counts_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    b = Broker(tmp_path / "broker", persistence=True).start()
    rec = Recorder(b, [f"{BASE}/events", f"{BASE}/state"], client_id="observer2", clean=False)
    r = Running(make_config(b, queue_size=5))
    try:
        wait_until(lambda: r.sink.connected, 10, what="connect")
        b.kill()
        wait_until(lambda: not r.sink.connected, 10, what="disconnect")
        with caplog.at_level(logging.WARNING, logger="emotiond.sinks.mqtt"):
            for i in range(12):
                r.sink.handle(ErrorEvent("test", f"n{i}"))
        assert r.sink.queued == 5 and r.sink.dropped == 7
        assert any("queue full" in m and "7 dropped" not in m for m in caplog.messages)
        b.start()
        wait_until(lambda: len({e["seq"] for e in events_of(rec)}) >= 5, 20, what="the 5 newest events")
        seqs = sorted({e["seq"] for e in events_of(rec)})
        assert seqs == [8, 9, 10, 11, 12]
        wait_until(lambda: any(s["dropped_events"] == 7 for s in rec.json_on(f"{BASE}/state")), 10,
                   what="state reporting 7 dropped")
    finally:
        r.close()
        rec.close()
        b.stop()


def test_clean_stop_flushes_then_publishes_offline(broker: Broker, running: Any) -> None:
    rec = Recorder(broker, [f"{BASE}/events", f"{BASE}/availability"])
    r = running()
    for i in range(200):
        r.sink.handle(ErrorEvent("test", str(i)))
    r.close()
    assert not r.sink.connected or r.sink.queued == 0
    wait_until(lambda: rec.last(f"{BASE}/availability") == b"offline", 10, what="offline")
    assert len({e["seq"] for e in events_of(rec)}) == 200
    late = Recorder(broker, [f"{BASE}/availability"])  # retained for whoever subscribes later
    wait_until(lambda: late.on(f"{BASE}/availability") == [b"offline"], 10, what="retained offline")
    late.close()
    rec.close()


def test_spool_keeps_undelivered_events_across_a_restart(tmp_path: Path) -> None:
    b = Broker(tmp_path / "broker")  # not started yet: the first run never reaches a broker
    spool = tmp_path / "spool" / "mqtt.json"
    config = make_config(b, spool_file=str(spool), stop_timeout=0.5)
    first = Running(config)
    for i in range(5):
        first.sink.handle(ErrorEvent("test", f"old {i}"))
    first.close()
    assert {"used": 5} in [json.loads(line) for line in spool.read_text().splitlines()]
    b.start()
    rec = Recorder(b, [f"{BASE}/events"])
    second = Running(config)
    try:
        assert second.sink.queued == 5
        second.sink.handle(ErrorEvent("test", "new"))
        wait_until(lambda: len(events_of(rec)) >= 6, 10, what="6 events")
        evs = events_of(rec)
        assert [e["seq"] for e in evs] == [1, 2, 3, 4, 5, 6]
        assert [e["message"] for e in evs] == [f"old {i}" for i in range(5)] + ["new"]
    finally:
        second.close()
        rec.close()
        b.stop()
    assert not [line for line in spool.read_text().splitlines() if '"put"' in line]


def _command(rec: Recorder, topic: str, payload: bytes | str, retain: bool = False) -> None:
    rec.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


def test_command_fuzz_gets_errors_and_the_daemon_keeps_running(broker: Broker, running: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(broker, [f"{BASE}/cmd/#", f"{BASE}/snapshot"])
    # A retained command reaches the sink flagged as retained when it subscribes: refused, not
    # replayed on every connect. (Live subscribers get the flag cleared, so publish it beforehand.)
    _command(rec, f"{BASE}/cmd/privacy", '{"enabled": true}', retain=True)
    r = running(max_command_bytes=1024)
    wait_until(lambda: any("retained" in json.loads(p).get("error", "") for p in rec.on(f"{BASE}/cmd/privacy/result")),
               10, what="retained refusal")
    assert not r.daemon.privacy
    _command(rec, f"{BASE}/cmd/privacy", b"", retain=True)  # clear it: arrives as an empty command
    wait_until(lambda: any("empty payload" in json.loads(p).get("error", "") for p in rec.on(f"{BASE}/cmd/privacy/result")),
               10, what="the empty payload refused")
    assert not r.daemon.privacy
    rec.messages.clear()
    cases: list[tuple[str, bytes | str, str]] = [
        ("privacy", "not json", "not valid JSON"),
        ("privacy", "  ", "empty payload"),
        ("privacy", b"\xff\xfe\x00garbage", "not valid JSON"),
        ("privacy", "[1, 2, 3]", "must be a JSON object"),
        ("privacy", "42", "must be a JSON object"),
        ("privacy", '"enabled"', "must be a JSON object"),
        ("privacy", '{"enabled": "yes"}', "must be true or false"),
        ("privacy", "{" + '"k": "' + "x" * 5000 + '"}', "exceeds the limit of 1024"),
        ("privacy", "{" * 2000, "exceeds the limit"),
        ("no_such_command", "{}", "unknown command"),
        ("bad name", "{}", "command names are"),
        ("x" * 65, "{}", "command names are"),
        ("a/b", "{}", "command names are"),
        ("snapshot", "{}", "snapshots are disabled"),
        ("reload", '{"now": true}', "reload takes no arguments"),
    ]
    with caplog.at_level(logging.WARNING, logger="emotiond.sinks.mqtt"):
        for name, payload, _ in cases:
            _command(rec, f"{BASE}/cmd/{name}", payload)
        wanted = collections.Counter(c[0] for c in cases)
        wait_until(lambda: all(len(rec.on(f"{BASE}/cmd/{n}/result")) >= k for n, k in wanted.items()),
                   15, what="an answer to every bad command")
    check = validator("command_result.json")
    answers: dict[str, list[dict]] = {}
    for name, _, _ in cases:
        answers[name] = [json.loads(p) for p in rec.on(f"{BASE}/cmd/{name}/result")]
    for name, _, expected in cases:
        for a in answers[name]:
            check.validate(a)
            assert a["ok"] is False and a["command"] == name
        assert any(expected in a["error"] for a in answers[name]), (name, expected, answers[name])
    assert len(caplog.messages) >= len(cases)  # each refusal is logged

    # Still alive: a good command works and echoes its id.
    _command(rec, f"{BASE}/cmd/privacy", '{"enabled": true, "id": "req-7"}')
    ok = wait_until(lambda: [a for a in map(json.loads, rec.on(f"{BASE}/cmd/privacy/result")) if a["ok"]], 10,
                    what="a good answer")
    check.validate(ok[0])
    assert ok[0] == {**ok[0], "ok": True, "privacy": True, "id": "req-7"} and r.daemon.privacy
    assert r.sink.connected and rec.on(f"{BASE}/snapshot") == []  # no image ever published
    rec.close()


def test_reload_applies_safe_settings_and_reports_the_rest(broker: Broker, running: Any, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    base = (f'[device]\nid = "{DEV}"\nname = "Test device"\n[mqtt]\nenabled = true\n'
            f'host = "{broker.host}"\nport = {broker.port}\n'
            "min_interval = 0.0\nmin_dwell = 0.0\nreconnect_min = 0.1\nreconnect_max = 0.5\n")
    cfg.write_text(base)
    rec = Recorder(broker, [f"{BASE}/cmd/reload/result"])
    r = running(config_path=cfg)
    root = logging.getLogger()
    level = root.level
    try:
        cfg.write_text(base.replace("min_interval = 0.0", "min_interval = 5.0")
                       + '[camera]\nsource = "/dev/video3"\n[output]\nlog_level = "debug"\n')
        _command(rec, f"{BASE}/cmd/reload", "{}")
        answer = json.loads(wait_until(lambda: rec.last(f"{BASE}/cmd/reload/result"), 10, what="reload answer"))
        validator("command_result.json").validate(answer)
        assert answer["ok"] is True
        assert sorted(answer["applied"]) == ["mqtt.min_interval", "output.log_level"]
        assert answer["restart_required"] == ["camera.source"]
        assert r.sink.m.min_interval == 5.0 and r.daemon.config.mqtt.min_interval == 5.0
        assert root.level == logging.DEBUG

        cfg.write_text(base + "[mqtt.oops]\n")
        _command(rec, f"{BASE}/cmd/reload", "{}")
        wait_until(lambda: len(rec.on(f"{BASE}/cmd/reload/result")) >= 2, 10, what="second answer")
        bad = json.loads(rec.last(f"{BASE}/cmd/reload/result"))
        assert bad["ok"] is False and str(cfg) in bad["error"]
        assert r.sink.m.min_interval == 5.0  # unchanged by a broken file
    finally:
        root.setLevel(level)
        rec.close()


def test_snapshot_only_when_enabled_and_not_in_privacy(broker: Broker, running: Any) -> None:
    rec = Recorder(broker, [f"{BASE}/snapshot", f"{BASE}/cmd/snapshot/result"])
    r = running(snapshots=True)

    def answers() -> list[dict]:
        return [json.loads(p) for p in rec.on(f"{BASE}/cmd/snapshot/result")]

    _command(rec, f"{BASE}/cmd/snapshot", "{}")
    wait_until(lambda: len(answers()) == 1, 10, what="first answer")
    assert answers()[0]["ok"] is False and "no frame" in answers()[0]["error"]
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :32] = (0, 0, 255)
    r.daemon.context.note_frame(image, ())  # what the main loop does with each analysed frame
    _command(rec, f"{BASE}/cmd/snapshot", '{"quality": 90}')
    # The JPEG and the command's answer are two messages: wait for both, in whichever order they come.
    wait_until(lambda: rec.on(f"{BASE}/snapshot") and len(answers()) == 2, 10, what="a JPEG and its answer")
    jpeg = rec.on(f"{BASE}/snapshot")[0]
    assert jpeg[:2] == b"\xff\xd8" and answers()[1]["bytes"] == len(jpeg)
    import cv2

    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == image.shape
    r.sink.handle(PrivacyEvent(True))
    _command(rec, f"{BASE}/cmd/snapshot", "{}")
    wait_until(lambda: len(answers()) == 3, 10, what="third answer")
    assert "privacy" in answers()[2]["error"] and len(rec.on(f"{BASE}/snapshot")) == 1
    rec.close()


def test_home_assistant_restart_gets_discovery_and_state_again(broker: Broker, running: Any) -> None:
    rec = Recorder(broker, ["homeassistant/+/+/+/config", f"{BASE}/state"])
    r = running()
    r.sink.handle(emotion("happy"))
    wait_until(lambda: len(rec.on(f"{BASE}/state")) >= 1 and len(rec.messages) >= 9, 10, what="first round")
    configs = len([m for m in rec.messages if m[0].startswith("homeassistant/")])
    states = len(rec.on(f"{BASE}/state"))
    _command(rec, "homeassistant/status", "online")
    wait_until(lambda: len([m for m in rec.messages if m[0].startswith("homeassistant/")]) >= configs + 8, 10,
               what="discovery re-published")
    wait_until(lambda: len(rec.on(f"{BASE}/state")) > states, 10, what="state re-published")
    rec.close()


def test_discovery_switch_off_publishes_nothing_for_home_assistant(broker: Broker, running: Any) -> None:
    rec = Recorder(broker, ["homeassistant/#", f"{BASE}/availability"])
    r = running(discovery=False)
    r.sink.handle(emotion("happy"))
    wait_until(lambda: rec.last(f"{BASE}/availability") == b"online", 10, what="online")
    # A round trip through the broker after the connect: anything published before it has arrived.
    _command(rec, f"{BASE}/cmd/nope", "{}")
    probe = Recorder(broker, [f"{BASE}/cmd/nope/result"])
    _command(probe, f"{BASE}/cmd/nope", "{}")
    wait_until(lambda: probe.on(f"{BASE}/cmd/nope/result"), 10, what="an answer")
    assert not [m for m in rec.messages if m[0].startswith("homeassistant/")]
    probe.close()
    rec.close()


def test_handle_never_blocks_without_a_broker(tmp_path: Path) -> None:
    b = Broker(tmp_path / "nobroker")  # nothing listens on this port
    r = Running(make_config(b, queue_size=50, reconnect_min=0.1, reconnect_max=0.2, stop_timeout=0.0))
    done = threading.Event()

    def produce() -> None:
        for i in range(5000):
            r.sink.handle(emotion("happy" if i % 2 else "sad"))
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(60), "handle() blocked while the broker was unreachable"
    assert r.sink.queued == 50 and not r.sink.connected
    r.close()


def test_reconnect_backoff_doubles_and_is_capped(tmp_path: Path) -> None:
    """A 'broker' that accepts and hangs up at once: attempts must space out 0.2, 0.4, 0.8 s, then stay
    at the 0.8 s cap. Only lower bounds are strict (a busy machine makes sleeps longer, never shorter)."""
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    accepts: list[float] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepts.append(time.monotonic())
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    b = Broker(tmp_path / "unused")
    b.port = port
    r = Running(make_config(b, reconnect_min=0.2, reconnect_max=0.8, stop_timeout=0.0))
    try:
        wait_until(lambda: len(accepts) >= 7, 30, what="7 connection attempts")
        gaps = [later - earlier for earlier, later in zip(accepts, accepts[1:])]
        assert gaps[0] >= 0.18 and gaps[1] >= 0.36 and gaps[2] >= 0.72, gaps
        assert sorted(gaps[3:6])[1] < 1.6, f"backoff not capped at 0.8 s: {gaps}"
        assert not r.sink.connected
    finally:
        r.close()
        server.close()


def test_capture_audio_command_records_with_trigger_mqtt(broker: Broker, running: Any, repo_root: Path) -> None:
    """The Home Assistant button's command reaches the real audio capture (a WAV stands in for the mic)."""
    import dataclasses

    from emotiond.audio_capture import AudioCapture
    from emotiond.perception.audio_pipeline import AudioAnalyzer

    r = running()
    cfg = r.daemon.config
    audio = dataclasses.replace(cfg.audio, source=str(repo_root / "samples" / "speech.wav"))
    capture = AudioCapture(audio, AudioAnalyzer.from_config(dataclasses.replace(cfg, audio=audio)))
    capture.start(r.daemon)
    rec = Recorder(broker, [f"{BASE}/cmd/capture_audio/result"])
    try:
        _command(rec, f"{BASE}/cmd/capture_audio", '{"duration": 1.5, "wait": true}')
        (answer,) = wait_until(lambda: rec.json_on(f"{BASE}/cmd/capture_audio/result"), 30, what="the capture result")
        assert answer["ok"] is True
        assert answer["result"]["trigger"] == "mqtt" and answer["result"]["status"] == "ok"
        assert answer["result"]["duration"] == pytest.approx(1.5, abs=0.05)
    finally:
        capture.stop()
        rec.close()


def test_events_delivered_after_an_outage_keep_their_timestamp_and_carry_their_age(tmp_path: Path) -> None:
    """Issue 13: a late delivery says how late it is (``age``, computed at the hand-over), button too."""
    b = Broker(tmp_path / "broker", persistence=True).start()
    # a persistent session, as above: the observer misses nothing whoever reconnects first
    rec = Recorder(b, [f"{BASE}/events", f"{BASE}/button"], client_id="late-observer", clean=False)
    r = Running(make_config(b))
    try:
        wait_until(lambda: r.sink.connected, 10, what="connect")
        b.kill()
        wait_until(lambda: not r.sink.connected, 10, what="the sink to notice the outage")
        pressed = ButtonEvent("press")
        r.sink.handle(pressed)
        r.sink.handle(ErrorEvent("camera", "unplugged"))
        threading.Event().wait(1.5)  # the outage lasts at least this long
        b.start()
        wait_until(lambda: rec.on(f"{BASE}/button") and len(events_of(rec)) >= 2, 30, what="the queued messages")
        button = json.loads(rec.on(f"{BASE}/button")[-1])
        assert button["timestamp"] == round(pressed.timestamp, 3) and button["age"] >= 1.5
        for e in events_of(rec):
            validator("event.json").validate(e)
            assert e["age"] >= 1.5
    finally:
        r.close()
        rec.close()
        b.stop()
