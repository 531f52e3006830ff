"""The daemon's lifecycle with stand-in sources: a camera that fails is reported and reopened."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
from emotiond.daemon import Daemon
from emotiond.events import ErrorEvent, Event
from emotiond.perception.pipeline import FacePipeline
from emotiond.sources.camera import SourceError


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


class FlakyCamera:
    """Delivers a few frames, then fails the way an unplugged USB camera does."""

    fps = 30.0

    def __init__(self, frames: int) -> None:
        self.left = frames

    def read(self) -> np.ndarray:
        if self.left <= 0:
            raise SourceError("camera '0' stopped delivering frames")
        self.left -= 1
        return np.full((120, 160, 3), 90, np.uint8)

    def close(self) -> None:
        pass


def test_camera_failure_is_reported_once_and_the_camera_reopened(default_config) -> None:
    config = dataclasses.replace(default_config, camera=dataclasses.replace(default_config.camera, reconnect_seconds=0.1))
    opened: list[int] = []
    reopened = threading.Event()

    def factory() -> FlakyCamera:
        opened.append(1)
        if len(opened) >= 3:
            reopened.set()
        return FlakyCamera(frames=2)

    sink = ListSink()
    daemon = Daemon(config, FacePipeline.from_config(config), sinks=[sink], source_factory=factory, pace_files=False,
                    lossless=True)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        assert reopened.wait(20), "the daemon did not reopen the camera"
    finally:
        daemon.request_stop()
        runner.join(20)
    assert not runner.is_alive()
    errors = [e for e in sink.events if isinstance(e, ErrorEvent)]
    assert errors and errors[0].component == "camera" and "stopped delivering frames" in errors[0].message
    # Each outage (after frames had come again) is reported: one error per reopened camera that failed.
    assert len(opened) - 1 <= len(errors) <= len(opened)
    assert daemon.health().frames >= 2 * (len(opened) - 1)  # every reopened camera delivered again


def test_unopenable_camera_retries_without_crashing(default_config) -> None:
    config = dataclasses.replace(
        default_config, camera=dataclasses.replace(default_config.camera, source="/nonexistent/cam.mp4", reconnect_seconds=0.1)
    )
    sink = ListSink()
    daemon = Daemon(config, FacePipeline.from_config(config), sinks=[sink])
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        for _ in range(100):
            if any(isinstance(e, ErrorEvent) for e in sink.events):
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.6)  # several more attempts at 0.1 s intervals
    finally:
        daemon.request_stop()
        runner.join(20)
    assert not runner.is_alive()
    (error,) = [e for e in sink.events if isinstance(e, ErrorEvent)]  # one outage: one event, not one per retry
    assert "no such file" in error.message and not daemon.health().camera_ok
