"""The OLED: pure rendering against reference PNGs, and the sink driving luma's own dummy device."""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time
from pathlib import Path

import pytest
from emotiond.config import CameraConfig, Config, DisplayConfig
from emotiond.daemon import Daemon
from emotiond.display_render import DisplayState, render
from emotiond.events import (
    AudioEvent,
    EmotionEvent,
    FaceEmotion,
    FusedEmotion,
    ListeningEvent,
    Prediction,
    PrivacyEvent,
    SceneEmotion,
)
from emotiond.perception.pipeline import FacePipeline
from emotiond.sinks.display import DisplaySink, DisplayUnavailable, open_device
from luma.core.device import dummy
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
REFS = REPO / "tests" / "data" / "display"


def _refs_script():
    spec = importlib.util.spec_from_file_location("make_display_refs", REPO / "scripts" / "make_display_refs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STATES = _refs_script().STATES


def _ref(name: str) -> Image.Image:
    return Image.open(REFS / f"{name}.png").convert("1")


def _lit(img: Image.Image, box: tuple[int, int, int, int]) -> int:
    return img.crop(box).convert("L").histogram()[255]


@pytest.mark.parametrize("name", sorted(STATES))
def test_render_matches_the_reference_picture(name: str) -> None:
    img = render(STATES[name])
    assert img.mode == "1" and img.size == (128, 64)
    assert img.tobytes() == _ref(name).tobytes(), f"{name}: rerun scripts/make_display_refs.py if intended"


def test_every_reference_is_a_different_picture() -> None:
    pictures = {_ref(name).tobytes() for name in STATES}
    assert len(pictures) == len(STATES) == len(list(REFS.glob("*.png")))


def test_the_confidence_bar_grows_with_confidence() -> None:
    lit = [_lit(render(DisplayState(label="happy", confidence=c, faces=1)), (2, 41, 98, 45)) for c in (0.0, 0.3, 0.6, 1.0)]
    assert lit == sorted(lit) and lit[0] == 0 and lit[-1] == 96 * 4


def test_listening_only_changes_the_bottom_line() -> None:
    base = DisplayState(label="happy", confidence=0.8, faces=1, modalities=("face",))
    a, b = render(base), render(DisplayState(**{**base.__dict__, "listening": True}))
    assert a.crop((0, 0, 128, 50)).tobytes() == b.crop((0, 0, 128, 50)).tobytes()
    assert a.crop((0, 50, 128, 64)).tobytes() != b.crop((0, 50, 128, 64)).tobytes()


def _emotion(label: str, conf: float, faces: int, fused: bool = False) -> EmotionEvent:
    pred = Prediction({label: conf}, label, conf)
    face = tuple(FaceEmotion(i, (10, 10, 40, 40), 0.9, pred) for i in range(faces))
    fusion = FusedEmotion(pred, 0.1, 0.2, {"face": 0.1, "audio": 2.0}) if fused else None
    return EmotionEvent(7, face, SceneEmotion(faces, pred if faces else None), fusion)


def test_sink_draws_events_on_the_luma_dummy_device() -> None:
    device = dummy(width=128, height=64, mode="1")
    sink = DisplaySink(DisplayConfig(enabled=True), device=device, broker=lambda: True)
    sink.handle(_emotion("neutral", 0.46, 1))
    sink.handle(ListeningEvent(True, "gpio"))
    assert sink.refresh()
    assert device.image.tobytes() == _ref("listening").tobytes()
    assert not sink.refresh()  # unchanged picture: nothing is sent over I2C

    sink.handle(AudioEvent("gpio", "ok", 2.0))  # the capture ended
    sink.handle(_emotion("sad", 0.57, 2, fused=True))
    assert sink.refresh()
    assert device.image.tobytes() == _ref("fused_face_voice").tobytes()

    sink.handle(PrivacyEvent(True))
    assert sink.refresh()
    assert device.image.tobytes() == _ref("privacy").tobytes()
    sink.close()


def test_rotation_is_luma_s_job() -> None:
    device = dummy(width=128, height=64, mode="1", rotate=2)
    sink = DisplaySink(DisplayConfig(enabled=True, rotate=2), device=device)
    sink.handle(_emotion("happy", 0.82, 1))
    sink.refresh()
    assert device.image.tobytes() == render(DisplayState("happy", 0.82, 1, ("face",))).rotate(180).tobytes()


def test_a_missing_display_is_logged_once_and_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    config = Config(display=DisplayConfig(enabled=True, i2c_port=250))  # no /dev/i2c-250 anywhere
    with pytest.raises(DisplayUnavailable, match="/dev/i2c-250"):
        open_device(config.display)
    daemon = Daemon(config, FacePipeline.from_config(config))
    sink = DisplaySink(config.display)
    with caplog.at_level(logging.WARNING):
        sink.start(daemon.context)
        for _ in range(3):
            sink.handle(_emotion("happy", 0.9, 1))
            assert sink.refresh() is False
        sink.stop()
        sink.close()
    warnings = [r.message for r in caplog.records if r.name == "emotiond.sinks.display"]
    assert len(warnings) == 1 and "display disabled" in warnings[0]


def test_without_luma_the_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "luma.oled.device", None)  # as if luma.oled were not installed
    with pytest.raises(DisplayUnavailable, match=r"pip install 'emotiond\[display\]'"):
        open_device(DisplayConfig(enabled=True))


def test_the_display_shows_a_camera_that_cannot_be_opened(tmp_path: Path) -> None:
    """A real daemon whose camera is missing: the display's own thread picks that up from health()."""
    missing = str(tmp_path / "no-such-video.mp4")
    config = Config(camera=CameraConfig(source=missing, reconnect_seconds=0.2),
                    display=DisplayConfig(enabled=True, refresh_seconds=0.05))
    daemon = Daemon(config, FacePipeline.from_config(config))
    device = dummy(width=128, height=64, mode="1")
    sink = DisplaySink(config.display, device=device)
    daemon.sinks.append(sink)
    daemon.components.append(sink)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not daemon.health().camera_error:
            time.sleep(0.05)
        expected = render(DisplayState(camera_ok=False, camera_error=daemon.health().camera_error))
        while time.monotonic() < deadline and device.image.tobytes() != expected.tobytes():
            time.sleep(0.05)
        assert device.image.tobytes() == expected.tobytes()
    finally:
        daemon.request_stop()
        thread.join(15)
    assert not thread.is_alive()
    assert _lit(device.image, (0, 0, 128, 64)) == 0  # cleared on shutdown
