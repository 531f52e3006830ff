"""Frame sources and the latest-frame grabber (no camera here: files and in-memory sources stand in)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from emotiond.sources.camera import ImageDirSource, LatestFrameGrabber, OpenCVSource, SourceError, iterate, open_source


class CountingSource:
    """Produces numbered frames as fast as asked (a camera faster than inference)."""

    fps = 30.0

    def __init__(self, n: int) -> None:
        self.n, self.i, self.closed = n, 0, False

    def read(self) -> np.ndarray | None:
        if self.i >= self.n:
            return None
        frame = np.full((4, 4, 3), self.i % 256, np.uint8)
        self.i += 1
        return frame

    def close(self) -> None:
        self.closed = True


def test_grabber_drops_stale_frames_instead_of_queueing() -> None:
    source = CountingSource(50)
    grabber = LatestFrameGrabber(source).start()
    grabber._thread.join(timeout=10)  # the consumer took nothing while the source ran out
    frame = grabber.get(timeout=1.0)
    assert frame is not None and frame.index == 49  # only the newest survives
    assert grabber.dropped == 49
    assert grabber.get(timeout=0.1) is None  # nothing stale left behind
    grabber.stop()
    assert source.closed


def test_lossless_grabber_delivers_every_frame_in_order() -> None:
    grabber = LatestFrameGrabber(CountingSource(20), lossless=True).start()
    seen = []
    while (frame := grabber.get(timeout=2.0)) is not None:
        seen.append(frame.index)
    grabber.stop()
    assert seen == list(range(20)) and grabber.dropped == 0


def test_video_file_source_and_loop(repo_root: Path) -> None:
    video = repo_root / "samples" / "demo.mp4"
    frames = list(iterate(OpenCVSource(str(video))))
    assert len(frames) > 30 and frames[0].image.shape == (480, 640, 3)
    looping = OpenCVSource(str(video), loop=True)
    assert len(list(iterate(looping, limit=len(frames) + 5))) == len(frames) + 5


def test_image_folder_source_skips_unreadable(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "c.png"), np.ones((8, 8, 3), np.uint8))
    source = open_source(str(tmp_path))
    assert isinstance(source, ImageDirSource)
    assert [int(f.image[0, 0, 0]) for f in iterate(source)] == [0, 1]


def test_missing_sources_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="has no images"):
        open_source(str(tmp_path))
    with pytest.raises(SourceError, match="camera device 57 cannot be opened"):
        open_source("57")


def test_picamera2_missing_is_explained() -> None:
    """picamera2 exists only on a Pi (from apt); anywhere else the source says how to get it."""
    with pytest.raises(SourceError, match="python3-picamera2"):
        open_source("picamera2")
