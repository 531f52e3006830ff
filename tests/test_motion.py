"""The motion gate (issue 15): an empty room is analysed at the idle rate and its frames in between are
skipped undecoded; motion or a face wakes it; slow light changes do not. Clips are real mp4 files
written with OpenCV, so codec noise is part of every test."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from emotiond.bench import compose_room_clip, room_background
from emotiond.config import ConfigError, config_from_mapping, sample_path
from emotiond.daemon import Daemon
from emotiond.events import FaceAppeared
from emotiond.perception.pipeline import FacePipeline
from emotiond.sources.camera import LatestFrameGrabber, OpenCVSource

FPS = 30.0
SIZE = (640, 480)


NOISE = [np.random.default_rng(k).normal(0.0, 2.0, (SIZE[1], SIZE[0], 3)).astype(np.float32) for k in range(7)]


def write_clip(path: Path, frames: Iterator[np.ndarray]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, SIZE)
    for i, frame in enumerate(frames):  # float BGR plus sensor noise: a camera's picture is never still
        writer.write(np.clip(frame + NOISE[i % len(NOISE)], 0, 255).astype(np.uint8))
    writer.release()
    return path


def pipeline_for(config, **motion) -> FacePipeline:
    cfg = dataclasses.replace(config, motion=dataclasses.replace(config.motion, **motion))
    return FacePipeline.from_config(cfg)


def analyse(pipeline: FacePipeline, path: Path) -> tuple[list[int], list[tuple[int, object]]]:
    """Every frame offered to the pipeline with its source index (like a file analysed frame by frame);
    returns the indices it analysed and (index, event) for each event."""
    src = OpenCVSource(str(path))
    analysed: list[int] = []
    events: list[tuple[int, object]] = []
    i = 0
    while (image := src.read()) is not None:
        if pipeline.wants(i):
            analysed.append(i)
        events += [(i, e) for e in pipeline.process(image, i / FPS, i)]
        i += 1
    src.close()
    return analysed, events


def room_clip(tmp_path: Path, frames: int, light: Callable[[int], float | np.ndarray] = lambda i: 1.0) -> Path:
    bg = room_background(*SIZE)
    return write_clip(tmp_path / "room.mp4", (bg * light(i) for i in range(frames)))


def test_an_empty_room_is_analysed_at_the_idle_rate(tmp_path: Path, default_config) -> None:
    pipeline = pipeline_for(default_config, idle_fps=2.0, idle_after=30)
    analysed, events = analyse(pipeline, room_clip(tmp_path, 150))
    stride = pipeline.gate.stride if pipeline.gate else 0
    assert stride == 15 and events == [] and pipeline.idle
    assert analysed[:30] == list(range(30))  # awake at first ...
    assert analysed[30:] == list(range(29 + stride, 150, stride))  # ... then one frame in 15: 2 fps


def test_motion_wakes_it_within_the_configured_frames(tmp_path: Path, default_config) -> None:
    bg = room_background(*SIZE)

    def frame(i: int) -> np.ndarray:
        out = bg.copy()
        if i >= 80:  # something (not a face) starts moving across the room at frame 80
            x = 20 + 12 * (i - 80)
            out[200:300, x : x + 60] = (230, 40, 40)
        return out

    pipeline = pipeline_for(default_config, idle_fps=2.0, idle_after=30)
    analysed, _ = analyse(pipeline, write_clip(tmp_path / "moving.mp4", (frame(i) for i in range(120))))
    before = [i for i in analysed if 30 <= i < 80]
    assert before and all(b - a == 15 for a, b in zip(before, before[1:], strict=False))  # idle
    woke = next(i for i in analysed if i >= 80)
    assert woke < 80 + 15  # the first idle frame that sees it
    assert analysed[analysed.index(woke):] == list(range(woke, 120))  # full rate while it moves
    assert not pipeline.idle


@pytest.mark.parametrize("light", [
    pytest.param(lambda i: 1.0 - 0.55 * i / 300, id="lamp-dimming-over-10-s"),
    pytest.param(lambda i: 1.0 - 0.6 * min(1.0, i / 30), id="lamp-dimming-in-1-s"),
    pytest.param(lambda i: 1.0 - 0.6 * i / 300 * np.linspace(0, 1, SIZE[0], dtype=np.float32)[None, :, None],
                 id="sunset-from-one-side"),
])
def test_slow_light_changes_do_not_wake_it(tmp_path: Path, default_config, light) -> None:
    pipeline = pipeline_for(default_config, idle_fps=2.0, idle_after=30)
    analysed, events = analyse(pipeline, room_clip(tmp_path, 300, light))
    assert events == []
    assert analysed[30:] == list(range(44, 300, 15))  # idle from frame 30 to the end


def test_a_face_walking_in_is_found_and_wakes_it(tmp_path: Path, default_config) -> None:
    clip = compose_room_clip(tmp_path / "visitor.mp4", *SIZE, FPS, visitor=True)
    assert clip.enter_start is not None and clip.first_full is not None
    pipeline = pipeline_for(default_config, idle_fps=2.0, idle_after=30)
    analysed, events = analyse(pipeline, tmp_path / "visitor.mp4")
    idle_before = [i for i in analysed if 30 <= i < clip.enter_start]
    assert len(idle_before) < clip.enter_start - 30 - 15  # it really was idle when the face came
    appeared = [i for i, e in events if isinstance(e, FaceAppeared)]
    assert appeared, "the visitor was never found"
    # found within detect_every frames of the whole face being in: 5 frames, 167 ms at 30 fps
    assert appeared[0] <= clip.first_full + default_config.faces.detect_every
    assert pipeline.gate is not None and pipeline.gate.wakes >= 1


def test_a_still_face_is_found_at_the_idle_rate(tmp_path: Path, default_config) -> None:
    """A face that appears without moving much (lights on, someone sitting down out of sight first)
    is found by the detector on an idle frame, which wakes the gate."""
    bg = room_background(*SIZE)
    face = cv2.imread(str(sample_path("astronaut.jpg")))[20:240, 120:330].astype(np.float32)
    with_face = bg.copy()
    with_face[130:350, 215:425] = face

    pipeline = pipeline_for(default_config, idle_fps=2.0, idle_after=30, min_area=1.0)  # motion never counts
    frames = (bg if i < 60 else with_face for i in range(100))
    analysed, events = analyse(pipeline, write_clip(tmp_path / "still.mp4", frames))
    appeared = [i for i, e in events if isinstance(e, FaceAppeared)]
    assert appeared and 60 <= appeared[0] < 60 + 15
    assert analysed[analysed.index(appeared[0]):] == list(range(appeared[0], 100))  # awake from then on


@pytest.mark.parametrize("name", ["demo.mp4", "party.mp4"])
def test_events_are_unchanged_on_the_bundled_samples(name: str, default_config) -> None:
    def events(enabled: bool) -> list[str]:
        _, evs = analyse(pipeline_for(default_config, enabled=enabled), sample_path(name))
        return [repr(e) for _, e in evs]

    gated = events(True)
    assert any("FaceAppeared" in e for e in gated) and any("EmotionEvent" in e for e in gated)
    assert gated == events(False)


class CountingSource(OpenCVSource):
    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self.decoded = self.skips = 0

    def read(self) -> np.ndarray | None:
        self.decoded += 1
        return super().read()

    def skip(self) -> bool:
        self.skips += 1
        return super().skip()


def test_the_grabber_skips_unwanted_frames_without_decoding(tmp_path: Path) -> None:
    src = CountingSource(str(room_clip(tmp_path, 30)))
    grabber = LatestFrameGrabber(src, lossless=True, want=lambda i: i % 3 == 0).start()
    got = []
    while (frame := grabber.get(timeout=5.0)) is not None:
        got.append(frame.index)
    grabber.stop()
    assert got == list(range(0, 30, 3))
    assert src.skips == grabber.skipped == 20 and src.decoded == 11  # 10 frames + the read that found the end


def test_the_daemon_decodes_few_frames_of_an_empty_room(tmp_path: Path, default_config) -> None:
    path = room_clip(tmp_path, 240)
    cfg = dataclasses.replace(default_config, output=dataclasses.replace(default_config.output, stdout=False))
    sources: list[CountingSource] = []

    def factory() -> CountingSource:
        sources.append(CountingSource(str(path)))
        return sources[-1]

    daemon = Daemon(cfg, FacePipeline.from_config(cfg), source_factory=factory, pace_files=False, lossless=True)
    assert daemon.run() == 0
    src = sources[0]
    assert src.decoded + src.skips == 241  # every frame passed by once (+ the read that found the end)
    # awake for 30 frames, then one in 15 (1 s at 30 fps, then 2 fps): the rest were never decoded
    assert src.decoded <= 30 + 210 // 15 + 3
    assert daemon.pipeline.idle


@pytest.mark.parametrize(("key", "value"), [("idle_fps", 0), ("idle_after", 0), ("threshold", 300), ("min_area", 2)])
def test_bad_motion_settings_are_one_line_errors(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"motion.{key}"):
        config_from_mapping({"motion": {key: value}})
