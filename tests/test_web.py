"""The web dashboard over HTTP: a real daemon on a looping image folder, fetched with urllib.

Replaces the debug-view tests: the MJPEG assertions now hold on the dashboard's /stream.mjpg.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from emotiond.config import CameraConfig, Config, ConfigError, WebConfig, config_from_mapping
from emotiond.daemon import Daemon
from emotiond.events import AudioEvent, Prediction
from emotiond.perception.pipeline import FacePipeline
from emotiond.web import dashboard_url
from emotiond.web.backend import FaceBox
from emotiond.web.frames import draw_overlay
from emotiond.web.server import BOUNDARY, WebView

REPO = Path(__file__).resolve().parent.parent
FACE = REPO / "samples" / "astronaut.jpg"  # one face, found by BlazeFace
SCHEMA = json.loads((REPO / "emotiond" / "schemas" / "state.json").read_text())


def test_overlay_draws_box_and_label_on_a_copy() -> None:
    frame = np.full((100, 120, 3), 50, np.uint8)
    out = draw_overlay(frame, (FaceBox(3, (20, 40, 50, 40)), FaceBox(4, (80, 60, 30, 30), held=True)), {3: "happy 82%"})
    assert (frame == 50).all()  # the camera frame itself is untouched
    assert tuple(out[60, 20]) == (0, 200, 0) and tuple(out[60, 70]) == (0, 200, 0)  # left/right edges
    assert tuple(out[75, 80]) == (0, 215, 255)  # a held box is yellow
    assert tuple(out[60, 45]) == (50, 50, 50)  # inside the box stays as it was


def test_an_unreadable_face_is_red_with_its_reason() -> None:
    frame = np.full((100, 160, 3), 50, np.uint8)
    out = draw_overlay(frame, (FaceBox(1, (20, 40, 50, 40), reason="too dark"),), {1: "happy 82%"})
    assert tuple(out[60, 20]) == (60, 60, 230)


def _frames(stream, n: int) -> list[bytes]:
    """Read n JPEG parts of a multipart/x-mixed-replace response."""
    parts: list[bytes] = []
    while len(parts) < n:
        line = stream.readline()
        assert line, "stream ended"
        if line.strip() != f"--{BOUNDARY}".encode():
            continue
        headers = {}
        while (line := stream.readline().strip()):
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(stream.read(int(headers["content-length"])))
    return parts


def start_daemon(tmp_path: Path, web: WebConfig, environ: dict[str, str] | None = None):
    folder = tmp_path / "frames"
    folder.mkdir(exist_ok=True)
    shutil.copy(FACE, folder / "face.jpg")
    config = Config(camera=CameraConfig(source=str(folder), loop=True, fps=10.0), web=web)
    daemon = Daemon(config, FacePipeline.from_config(config))
    view = WebView(config, environ)
    daemon.components.append(view)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while view.port is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return daemon, view, thread


@pytest.fixture
def running(tmp_path: Path):
    daemon, view, thread = start_daemon(tmp_path, WebConfig(enabled=True, port=0, fps=10.0))
    yield daemon, view
    daemon.request_stop()
    thread.join(15)
    assert not thread.is_alive()


def test_stream_serves_jpegs_with_the_face_box_drawn(running) -> None:
    daemon, view = running
    assert view.port and daemon.config.web.host == "127.0.0.1"
    base = f"http://127.0.0.1:{view.port}"
    with urllib.request.urlopen(base + "/", timeout=10) as page:
        assert b"stream.mjpg" in page.read()
    assert view.frames.encoded == 0  # nobody has watched yet: nothing encoded
    with urllib.request.urlopen(base + "/stream.mjpg", timeout=10) as resp:
        assert resp.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        deadline = time.monotonic() + 20
        while not daemon.pipeline.tracker.tracks and time.monotonic() < deadline:
            time.sleep(0.05)
        jpegs = _frames(resp, 4)
    assert view.frames.encoded > 0
    assert all(j[:3] == b"\xff\xd8\xff" and j[-2:] == b"\xff\xd9" for j in jpegs)
    original = cv2.imread(str(FACE))
    shown = cv2.imdecode(np.frombuffer(jpegs[-1], np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape == original.shape
    (x, y, _w, h) = daemon.pipeline.tracker.tracks[0].box
    edge = shown[y + 5 : y + h - 5, x - 1 : x + 2].reshape(-1, 3).astype(int)  # the box's left side
    b, g, r = edge.mean(axis=0)
    assert g > 150 and g > b + 80 and g > r + 80, (b, g, r)  # green, as drawn, not the photo
    before = original[y + 5 : y + h - 5, x - 1 : x + 2].reshape(-1, 3).astype(int)
    assert np.abs(before - edge).mean() > 40


def test_privacy_mode_serves_no_camera_picture(running) -> None:
    daemon, view = running
    base = f"http://127.0.0.1:{view.port}"
    deadline = time.monotonic() + 20
    while view.frames.next_jpeg(-1, 0.1)[0] < 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    with urllib.request.urlopen(base + "/snapshot.jpg", timeout=10) as resp:
        assert cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR).shape == (512, 512, 3)
    daemon.set_privacy(True)
    with urllib.request.urlopen(base + "/snapshot.jpg", timeout=10) as resp:
        shown = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape == (120, 320, 3)  # the placeholder, not the last camera frame


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if err.headers["Content-Type"] == "application/json" else {}


def test_state_is_the_mqtt_state_document_and_privacy_posts_toggle_it(running) -> None:
    import jsonschema

    daemon, view = running
    base = f"http://127.0.0.1:{view.port}"
    deadline = time.monotonic() + 20
    state: dict = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(base + "/api/state", timeout=10) as resp:
            state = json.loads(resp.read())
        if state["faces"] == 1:
            break
        time.sleep(0.1)
    jsonschema.validate(state, SCHEMA)
    assert state["faces"] == 1 and state["source"] == "scene" and state["privacy"] is False
    assert _post(base + "/api/privacy", {"enabled": True}) == (200, {"ok": True, "privacy": True})
    assert daemon.privacy is True
    with urllib.request.urlopen(base + "/api/state", timeout=10) as resp:
        assert json.loads(resp.read())["privacy"] is True
    assert _post(base + "/api/privacy", {"enabled": "yes"})[0] == 400
    assert _post(base + "/api/listen", {})[1]["error"].startswith("unknown command 'capture_audio'")  # no [audio] here


def test_a_form_post_is_refused(running) -> None:
    _daemon, view = running
    req = urllib.request.Request(f"http://127.0.0.1:{view.port}/api/privacy", b"enabled=true",
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 415


def test_events_stream_every_event_as_on_stdout(running) -> None:
    daemon, view = running
    with urllib.request.urlopen(f"http://127.0.0.1:{view.port}/events", timeout=10) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        event = AudioEvent("web", "ok", 2.0, Prediction({"happy": 0.9, "neutral": 0.1}, "happy", 0.9), arousal=0.3)
        daemon.emit(event)
        seen = []
        while True:
            line = resp.readline().decode().rstrip("\n")
            if line.startswith("data: "):
                seen.append(line[6:])
                if json.loads(line[6:])["type"] == "audio":
                    break
    assert seen[-1] == event.to_json()
    with urllib.request.urlopen(f"http://127.0.0.1:{view.port}/api/recent", timeout=10) as resp:
        voice = json.loads(resp.read())["voice"]
    assert voice["label"] == "happy" and voice["validated"] is True and voice["arousal"] == 0.3


def test_viewers_are_bounded(tmp_path: Path) -> None:
    daemon, view, thread = start_daemon(tmp_path, WebConfig(enabled=True, port=0, max_viewers=1, max_connections=4))
    try:
        base = f"http://127.0.0.1:{view.port}"
        with urllib.request.urlopen(base + "/events", timeout=10):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + "/events", timeout=10)
            assert err.value.code == 503
        with urllib.request.urlopen(base + "/stream.mjpg", timeout=10) as first:
            _frames(first, 1)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + "/stream.mjpg", timeout=10)
            assert err.value.code == 503
    finally:
        daemon.request_stop()
        thread.join(15)


def test_connections_are_bounded_and_silent_clients_dropped(tmp_path: Path) -> None:
    web = WebConfig(enabled=True, port=0, max_viewers=1, max_connections=2, request_timeout=1.0)
    daemon, view, thread = start_daemon(tmp_path, web)
    silent = [socket.create_connection(("127.0.0.1", view.port)) for _ in range(2)]  # send nothing
    try:
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", view.port))
        extra.settimeout(10)
        assert extra.recv(64).startswith(b"HTTP/1.1 503")
        extra.close()
        for s in silent:  # request_timeout: the server hangs up on clients that never send a request
            s.settimeout(10)
            assert s.recv(64) == b""
        with urllib.request.urlopen(f"http://127.0.0.1:{view.port}/api/state", timeout=10) as resp:
            assert resp.status == 200  # the slots are free again
    finally:
        for s in silent:
            s.close()
        daemon.request_stop()
        thread.join(15)


def _auth(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"emotiond:{password}".encode()).decode()}


def test_a_password_is_enforced_for_every_path(tmp_path: Path) -> None:
    web = WebConfig(enabled=True, port=0, password_env="WEB_PW")
    daemon, view, thread = start_daemon(tmp_path, web, environ={"WEB_PW": "s3cret"})
    try:
        base = f"http://127.0.0.1:{view.port}"
        for path in ("/", "/stream.mjpg", "/snapshot.jpg", "/events", "/api/state", "/api/recent", "/nope"):
            for headers in ({}, _auth("wrong"), {"Authorization": "Basic !!!"}):
                with pytest.raises(urllib.error.HTTPError) as err:
                    urllib.request.urlopen(urllib.request.Request(base + path, headers=headers), timeout=10)
                assert err.value.code == 401, path
                assert err.value.headers["WWW-Authenticate"].startswith("Basic ")
        assert _post(base + "/api/privacy", {"enabled": True}, _auth("wrong"))[0] == 401
        assert daemon.privacy is False
        with urllib.request.urlopen(urllib.request.Request(base + "/api/state", headers=_auth("s3cret")), timeout=10) as r:
            assert r.status == 200
    finally:
        daemon.request_stop()
        thread.join(15)


def test_unknown_paths_are_404(running) -> None:
    _daemon, view = running
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{view.port}/etc/passwd", timeout=10)
    assert err.value.code == 404


def test_a_busy_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    config = Config(web=WebConfig(enabled=True, port=taken.getsockname()[1]))
    daemon = Daemon(config, FacePipeline.from_config(config))
    view = WebView(config)
    view.start(daemon)
    try:
        assert view.port is None and daemon.context.frame_listeners == []
        assert any("web dashboard disabled" in r.message for r in caplog.records)
    finally:
        view.stop()
        taken.close()


# --- configuration --------------------------------------------------------------------------------

def test_beyond_loopback_needs_a_password() -> None:
    with pytest.raises(ConfigError, match="web: host '0.0.0.0' is reachable beyond this machine"):
        config_from_mapping({"web": {"enabled": True, "host": "0.0.0.0"}})
    config_from_mapping({"web": {"enabled": True, "host": "0.0.0.0", "password_env": "PW"}})
    config_from_mapping({"web": {"enabled": True, "host": "::1"}})
    config_from_mapping({"web": {"enabled": False, "host": "0.0.0.0"}})  # off: nothing listens


def test_a_missing_password_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="web.password_env: environment variable NOPE is not set"):
        WebView(Config(web=WebConfig(enabled=True, password_env="NOPE")), environ={})
    with pytest.raises(ConfigError, match="web.password_file: cannot read"):
        WebView(Config(web=WebConfig(enabled=True, password_file=str(tmp_path / "none"))), environ={})
    (tmp_path / "pw").write_text("from-file\n")
    view = WebView(Config(web=WebConfig(enabled=True, password_file="pw")), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert view.password == "from-file"


def test_debug_view_is_read_as_web_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    config = config_from_mapping({"debug_view": {"enabled": True, "port": 9000, "fps": 2.0}}, "old.toml")
    assert config.web == WebConfig(enabled=True, port=9000, fps=2.0)
    assert any("[debug_view] is deprecated, read as [web]" in r.message for r in caplog.records)
    with pytest.raises(ConfigError, match="keep only \\[web\\]"):
        config_from_mapping({"debug_view": {}, "web": {}}, "both.toml")


def test_dashboard_url_for_home_assistant() -> None:
    assert dashboard_url(Config()) is None
    assert dashboard_url(Config(web=WebConfig(enabled=True))) == "http://127.0.0.1:8088/"
    assert dashboard_url(Config(web=WebConfig(enabled=True, host="::1", port=9))) == "http://[::1]:9/"
    url = dashboard_url(Config(web=WebConfig(enabled=True, host="0.0.0.0", password_env="X")))
    assert url is not None and "0.0.0.0" not in url and url.endswith(":8088/")
