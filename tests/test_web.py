"""The MJPEG debug view: a real daemon on a looping image folder, fetched over HTTP with urllib."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from emotiond.config import CameraConfig, Config, DebugViewConfig
from emotiond.daemon import Daemon
from emotiond.perception.pipeline import FacePipeline
from emotiond.sinks.debug_view import BOUNDARY, DebugView, draw_overlay

REPO = Path(__file__).resolve().parent.parent
FACE = REPO / "samples" / "astronaut.jpg"  # one face, found by BlazeFace


def test_overlay_draws_box_and_label_on_a_copy() -> None:
    frame = np.full((100, 120, 3), 50, np.uint8)
    out = draw_overlay(frame, ((3, (20, 40, 50, 40), False), (4, (80, 60, 30, 30), True)), {3: "happy 82%"})
    assert (frame == 50).all()  # the camera frame itself is untouched
    assert tuple(out[60, 20]) == (0, 200, 0) and tuple(out[60, 70]) == (0, 200, 0)  # left/right edges
    assert tuple(out[75, 80]) == (0, 215, 255)  # a held box is yellow
    assert tuple(out[60, 45]) == (50, 50, 50)  # inside the box stays as it was


def _frames(stream, n: int) -> list[bytes]:
    """Read n JPEG parts of a multipart/x-mixed-replace response."""
    parts = []
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


@pytest.fixture
def running(tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(FACE, folder / "face.jpg")
    config = Config(
        camera=CameraConfig(source=str(folder), loop=True, fps=10.0),
        debug_view=DebugViewConfig(enabled=True, port=0, fps=10.0),
    )
    daemon = Daemon(config, FacePipeline.from_config(config))
    view = DebugView(config.debug_view)
    daemon.components.append(view)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while view.port is None and time.monotonic() < deadline:
        time.sleep(0.02)
    yield daemon, view
    daemon.request_stop()
    thread.join(15)
    assert not thread.is_alive()


def test_stream_serves_jpegs_with_the_face_box_drawn(running) -> None:
    daemon, view = running
    assert view.port and daemon.config.debug_view.host == "127.0.0.1"
    base = f"http://127.0.0.1:{view.port}"
    with urllib.request.urlopen(base + "/", timeout=10) as page:
        assert b"/stream.mjpg" in page.read()
    with urllib.request.urlopen(base + "/stream.mjpg", timeout=10) as resp:
        assert resp.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        deadline = time.monotonic() + 20
        while not daemon.pipeline.tracker.tracks and time.monotonic() < deadline:
            time.sleep(0.05)
        jpegs = _frames(resp, 4)
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
    with urllib.request.urlopen(base + "/snapshot.jpg", timeout=10) as resp:
        assert cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR).shape == (512, 512, 3)
    daemon.set_privacy(True)
    with urllib.request.urlopen(base + "/snapshot.jpg", timeout=10) as resp:
        shown = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape == (120, 320, 3)  # the placeholder, not the last camera frame


def test_unknown_paths_are_404(running) -> None:
    _daemon, view = running
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{view.port}/etc/passwd", timeout=10)
    assert err.value.code == 404


def test_a_busy_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    config = Config(debug_view=DebugViewConfig(enabled=True, port=taken.getsockname()[1]))
    daemon = Daemon(config, FacePipeline.from_config(config))
    view = DebugView(config.debug_view)
    view.start(daemon)
    try:
        assert view.port is None and daemon.frame_listeners == []
        assert any("debug view disabled" in r.message for r in caplog.records)
    finally:
        view.stop()
        taken.close()
