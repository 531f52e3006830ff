"""Camera faults (issue 12): only a regular, non-looping file may end the daemon with exit 0; a device
path, a by-id symlink, a URL or a looped file that breaks is an error event and the reconnect loop."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from emotiond.config import Config
from emotiond.daemon import Daemon
from emotiond.events import ErrorEvent, Event
from emotiond.perception.pipeline import FacePipeline
from emotiond.sources.camera import OpenCVSource, SourceError, source_kind


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.error = threading.Event()

    def handle(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, ErrorEvent) and event.component == "camera":
            self.error.set()

    def close(self) -> None:
        pass


@pytest.fixture()
def clip(tmp_path: Path, repo_root: Path) -> Path:
    path = tmp_path / "clip.mp4"
    shutil.copy(repo_root / "samples" / "demo.mp4", path)
    return path


def test_source_kinds(tmp_path: Path, clip: Path) -> None:
    by_id = tmp_path / "usb-Cam_0001-video-index0"
    by_id.symlink_to("/dev/null")  # a character device behind a stable name, like /dev/v4l/by-id/...
    assert source_kind("0") == "device"
    assert source_kind("/dev/video0") == "device"
    assert source_kind("/dev/v4l/by-id/usb-Logitech_C920-video-index0") == "device"  # even while unplugged
    assert source_kind(str(by_id)) == "device"
    assert source_kind("rtsp://cam.local/stream") == "url"
    assert source_kind(str(clip)) == "file"
    assert source_kind(str(tmp_path / "missing.mp4")) == "file"


def test_device_paths_are_never_opened_as_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="camera device '/dev/v4l/by-id/usb-gone-video-index0' is not present"):
        OpenCVSource("/dev/v4l/by-id/usb-gone-video-index0")
    with pytest.raises(SourceError, match="camera device '/dev/null' cannot be opened"):
        OpenCVSource("/dev/null")


def read_until_fault(source: OpenCVSource, limit: int = 5000) -> str:
    for _ in range(limit):
        if source.read() is None:
            return "ended"
    return "still reading"


@pytest.mark.parametrize("damage", ["emptied", "halved", "deleted"])
def test_a_looped_file_that_breaks_is_a_fault(clip: Path, damage: str) -> None:
    source = OpenCVSource(str(clip), loop=True)
    for _ in range(3):
        assert source.read() is not None
    if damage == "emptied":
        clip.write_bytes(b"")
    elif damage == "halved":
        os.truncate(clip, clip.stat().st_size // 2)
    else:
        clip.unlink()
    with pytest.raises(SourceError, match="looped video"):
        read_until_fault(source)
    source.close()


def test_an_intact_looped_file_never_ends_and_a_plain_one_does(clip: Path) -> None:
    assert read_until_fault(OpenCVSource(str(clip), loop=True), 300) == "still reading"
    assert read_until_fault(OpenCVSource(str(clip), loop=False), 5000) == "ended"


def test_a_stream_that_ends_is_a_fault(clip: Path) -> None:
    source = OpenCVSource(f"file://{clip}")  # a URL: its end is the network or camera failing
    with pytest.raises(SourceError, match="stopped delivering frames"):
        read_until_fault(source)


def run_daemon(config: Config, while_running: Callable[[ListSink], None]) -> tuple[ListSink, int | None, bool]:
    """Run the daemon on a thread; returns the sink, its exit status and whether it ended on its own."""
    sink = ListSink()
    daemon = Daemon(config, FacePipeline.from_config(config), sinks=[sink], pace_files=False)
    status: list[int] = []
    runner = threading.Thread(target=lambda: status.append(daemon.run()))
    runner.start()
    try:
        while_running(sink)
        ended_by_itself = not runner.is_alive()
    finally:
        daemon.request_stop()
        runner.join(20)
    assert not runner.is_alive()
    return sink, status[0] if status else None, ended_by_itself


def camera(default_config: Config, source: str, loop: bool) -> Config:
    return dataclasses.replace(default_config, camera=dataclasses.replace(
        default_config.camera, source=source, loop=loop, reconnect_seconds=0.1))


def test_a_by_id_symlink_to_a_device_is_a_fault_not_an_end(default_config: Config, tmp_path: Path) -> None:
    by_id = tmp_path / "usb-Cam-video-index0"
    by_id.symlink_to("/dev/null")

    def wait(sink: ListSink) -> None:
        assert sink.error.wait(20), "no camera error event"
        threading.Event().wait(0.5)  # several reconnect attempts at 0.1 s

    sink, _, ended = run_daemon(camera(default_config, str(by_id), loop=False), wait)
    assert not ended, "the daemon treated a device as a file that ended"
    assert any("camera device" in e.message for e in sink.events if isinstance(e, ErrorEvent))


def test_a_looped_file_truncated_in_place_is_a_fault(default_config: Config, clip: Path) -> None:
    def truncate_then_wait(sink: ListSink) -> None:
        threading.Event().wait(1.0)  # some frames from the intact file
        clip.write_bytes(b"")
        assert sink.error.wait(30), "no camera error event after truncation"
        threading.Event().wait(0.5)

    sink, _, ended = run_daemon(camera(default_config, str(clip), loop=True), truncate_then_wait)
    assert not ended
    messages = [e.message for e in sink.events if isinstance(e, ErrorEvent)]
    assert any("looped video" in m or "cannot be opened" in m for m in messages)


def test_a_looped_file_missing_at_start_is_a_fault(default_config: Config, tmp_path: Path) -> None:
    def wait(sink: ListSink) -> None:
        assert sink.error.wait(20)
        threading.Event().wait(0.3)

    _, _, ended = run_daemon(camera(default_config, str(tmp_path / "missing.mp4"), loop=True), wait)
    assert not ended


def test_only_a_plain_file_ends_the_daemon_with_exit_0(default_config: Config, clip: Path) -> None:
    config = camera(default_config, str(clip), loop=False)
    sink = ListSink()
    daemon = Daemon(config, FacePipeline.from_config(config), sinks=[sink], pace_files=False)
    assert daemon.run() == 0
    assert not sink.error.is_set()


def test_a_looped_folder_of_unreadable_images_is_a_fault_not_a_busy_loop(tmp_path: Path) -> None:
    from emotiond.sources.camera import ImageDirSource

    (tmp_path / "a.jpg").write_bytes(b"not an image")
    (tmp_path / "b.png").write_bytes(b"")
    with pytest.raises(SourceError, match="no image is readable"):
        ImageDirSource(str(tmp_path), loop=True).read()
    assert ImageDirSource(str(tmp_path), loop=False).read() is None
