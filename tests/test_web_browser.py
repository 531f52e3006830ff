"""The dashboard in headless Chromium, against a real daemon (image folder camera, WAV microphone).

Screenshots go to pytest's temp dir (``EMOTIOND_SCREENSHOTS`` names another folder to keep them).
"""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from emotiond.cli import _build_daemon
from emotiond.config import AudioConfig, CameraConfig, Config, OutputConfig, TriggersConfig, WebConfig
from emotiond.web.server import WebView

from chromium import Browser, find_chromium

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = find_chromium()
PASSWORD = "correct horse"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (scripts/test.sh installs it)")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("EMOTIOND_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("frames")
    shutil.copy(REPO / "samples" / "astronaut.jpg", folder / "face.jpg")
    config = Config(
        camera=CameraConfig(source=str(folder), loop=True, fps=10.0),
        output=OutputConfig(stdout=False),
        audio=AudioConfig(source=str(REPO / "samples" / "speech.wav"), duration=1.0, min_duration=0.5),
        triggers=TriggersConfig(signal=False, control_socket=False),
        web=WebConfig(enabled=True, port=0, password_env="EMOTIOND_TEST_WEB_PW"),
    )
    os.environ["EMOTIOND_TEST_WEB_PW"] = PASSWORD
    try:
        daemon = _build_daemon(config)
    finally:
        del os.environ["EMOTIOND_TEST_WEB_PW"]
    view = next(c for c in daemon.components if isinstance(c, WebView))
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while view.port is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert view.port is not None
    yield daemon, f"http://127.0.0.1:{view.port}/"
    daemon.request_stop()
    thread.join(15)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def browser(dashboard):
    assert CHROMIUM is not None
    b = Browser(CHROMIUM)
    yield b
    b.close()


def _login(browser: Browser, password: str) -> None:
    token = base64.b64encode(f"emotiond:{password}".encode()).decode()
    browser.page("Network.enable")
    browser.page("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {token}"})


def test_a_wrong_password_gets_no_page(dashboard, browser: Browser) -> None:
    _daemon, url = dashboard
    _login(browser, "wrong")
    browser.page("Page.navigate", url=url)
    deadline = time.monotonic() + 30
    while not browser.responses(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.responses(url) == [401]
    assert browser.js("document.getElementById('cam')") is None


def test_page_shows_the_camera_and_live_labels_on_a_phone(dashboard, browser: Browser, shots: Path) -> None:
    daemon, url = dashboard
    _login(browser, PASSWORD)
    browser.page("Emulation.setDeviceMetricsOverride", **PHONE)
    browser.page("Page.navigate", url=url)
    assert browser.wait_for("document.getElementById('cam').naturalWidth") == 512  # a camera frame arrived
    assert browser.wait_for("document.getElementById('conn').textContent === 'live'")
    # the label is written only by the SSE handler of emotion events
    label = browser.wait_for("(t => t !== '-' && t)(document.getElementById('label').textContent)")
    assert label in (*daemon.pipeline.labels, "uncertain")
    assert browser.js("document.getElementById('faces').textContent") == "1 face"
    assert browser.js("document.getElementById('facelist').textContent").startswith("#")
    assert browser.wait_for("document.querySelectorAll('#timeline rect').length")  # the timeline has points
    shot = browser.screenshot(shots / "dashboard-phone.png")
    assert shot.stat().st_size > 10_000


def test_listen_records_and_shows_the_voice(dashboard, browser: Browser, shots: Path) -> None:
    daemon, _url = dashboard
    browser.js("document.getElementById('listen').click()")
    voice = browser.wait_for("(t => t !== '-' && t)(document.getElementById('voice').textContent)")
    meta = browser.js("document.getElementById('voicemeta').textContent")
    assert voice in (*daemon.pipeline.labels, "uncertain", "no_speech"), voice
    assert "validated" in meta and "s ago" in meta
    assert browser.wait_for("document.getElementById('fused').textContent !== '-'")  # fused with the voice
    assert "valence" in browser.js("document.getElementById('fusedmeta').textContent")
    assert browser.wait_for("points.length >= 2 && new Set(points.map(p => Math.floor(p.t))).size === points.length")
    browser.screenshot(shots / "dashboard-voice.png")


def test_privacy_hides_the_picture(dashboard, browser: Browser, shots: Path) -> None:
    daemon, _url = dashboard
    browser.js("document.getElementById('privacy').click()")
    assert browser.wait_for("document.body.classList.contains('privacy')")
    assert daemon.privacy is True
    assert browser.js("getComputedStyle(document.getElementById('cam')).display") == "none"
    assert browser.js("document.getElementById('cam').hasAttribute('src')") is False
    assert "Privacy mode is on" in browser.js("document.getElementById('private').innerText")
    assert browser.js("document.getElementById('facelist').children.length") == 0  # no stale faces either
    assert browser.js("document.getElementById('faces').textContent") == "privacy mode"
    browser.screenshot(shots / "dashboard-privacy.png")
    browser.js("document.getElementById('privacy').click()")
    assert browser.wait_for("!document.body.classList.contains('privacy')")
    assert daemon.privacy is False
    assert browser.wait_for("document.getElementById('cam').naturalWidth") == 512  # the picture is back
