"""BlazeFace full-range on the real committed model: anchors, detection, small faces, wiring."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from emotiond.cli import main
from emotiond.models import Manifest, ModelError, TFLiteModel
from emotiond.perception.face_detect import (
    BlazeFaceDetector,
    HaarDetector,
    iou,
    make_detector,
)
from emotiond.perception.pipeline import FacePipeline

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def full() -> BlazeFaceDetector:
    return BlazeFaceDetector(TFLiteModel.from_manifest(MODELS / "face_detector_full.json"), min_score=0.5)


@pytest.fixture(scope="module")
def short() -> BlazeFaceDetector:
    return BlazeFaceDetector(TFLiteModel.from_manifest(MODELS / "face_detector.json"), min_score=0.5)


def small_face_frame(photo: np.ndarray, face: tuple[int, int, int, int], width: int) -> tuple[np.ndarray, tuple]:
    """The photo scaled so ``face`` is ``width`` px wide, face centred in a grey 640x480 frame.

    Returns the frame and where the face box should be in it.
    """
    k = width / face[2]
    small = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    x0 = round(320 - (face[0] + face[2] / 2) * k)
    y0 = round(240 - (face[1] + face[3] / 2) * k)
    frame = np.full((480, 640, 3), 128, np.uint8)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(640, x0 + small.shape[1]), min(480, y0 + small.shape[0])
    frame[fy0:fy1, fx0:fx1] = small[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    return frame, (x0 + face[0] * k, y0 + face[1] * k, face[2] * k, face[3] * k)


def test_full_range_anchors_are_one_48x48_grid(full) -> None:
    assert full.size == 192 and full.box_scale == 192.0
    assert full.anchors.shape == (2304, 2)
    assert np.allclose(full.anchors[0], [0.5 / 48, 0.5 / 48])
    assert np.allclose(full.anchors[1], [1.5 / 48, 0.5 / 48])  # one anchor per location: x moves at once
    assert np.allclose(full.anchors[48], [0.5 / 48, 1.5 / 48])  # row-major, y outer


def test_manifest_that_disagrees_with_itself_fails_at_load(tmp_path: Path) -> None:
    data = json.loads((MODELS / "face_detector_full.json").read_text())
    data["anchors"]["interpolated_scale_aspect_ratio"] = 1.0  # would give 2 anchors per location
    (tmp_path / "face_detector_full.tflite").symlink_to(MODELS / "face_detector_full.tflite")
    path = tmp_path / "face_detector_full.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="anchors per location"):
        BlazeFaceDetector(TFLiteModel(Manifest.load(path)))


def test_full_range_finds_the_astronaut_and_nothing_in_a_blank_frame(full, astronaut, blank) -> None:
    (face,) = full.detect(astronaut)
    assert face.score > 0.8
    haar = HaarDetector().detect(astronaut)
    assert haar and iou(face.box, haar[0].box) > 0.5
    assert full.detect(blank) == []


def test_full_range_finds_a_50px_face_that_short_range_misses(full, short, astronaut) -> None:
    """Build_models measured short-range's limit at ~70 px (640x480); full-range reaches ~40 px."""
    (ref,) = short.detect(astronaut)
    frame, expect = small_face_frame(astronaut, ref.box, 50)
    assert not [d for d in short.detect(frame) if iou(d.box, expect) > 0.1]
    (found,) = full.detect(frame)
    assert found.score > 0.6 and iou(found.box, expect) > 0.5
    # the same frame scaled back up is easy for both: the miss is about face size, not the composition
    big, expect_big = small_face_frame(astronaut, ref.box, 110)
    assert any(iou(d.box, expect_big) > 0.5 for d in short.detect(big))


def test_config_choice_picks_the_full_range_manifest(default_config) -> None:
    config = replace(default_config, faces=replace(default_config.faces, detector="blazeface_full"))
    pipeline = FacePipeline.from_config(config)
    assert isinstance(pipeline.detector, BlazeFaceDetector) and pipeline.detector.size == 192
    assert FacePipeline.from_config(default_config).detector.size == 128  # default stays short-range
    with pytest.raises(ModelError, match="face_detector_full"):
        make_detector("blazeface_full", MODELS / "face_detector.json", min_score=0.5, max_faces=4, min_face_px=24)


def test_models_command_self_tests_the_full_range_model(capsys) -> None:
    assert main(["models", "--json"]) == 0
    infos = {i["name"]: i for i in map(json.loads, capsys.readouterr().out.splitlines())}
    info = infos["face_detector_full"]
    assert info["input_shape"] == [1, 192, 192, 3] and info["task"] == "face_detection"
    assert info["self_test"].startswith("ok")
