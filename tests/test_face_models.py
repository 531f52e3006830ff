"""The real interpreter on the real committed models: detection, expression, int8-vs-float agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from emotiond.models import Manifest, ModelError, TFLiteModel, sha256_file
from emotiond.perception.expression import ExpressionClassifier
from emotiond.perception.face_detect import BlazeFaceDetector, HaarDetector, iou, ssd_anchors

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector(TFLiteModel.from_manifest(MODELS / "face_detector.json"), min_score=0.5)


@pytest.fixture(scope="module")
def classifier() -> ExpressionClassifier:
    return ExpressionClassifier.from_manifest(MODELS / "expression.json")


def test_anchor_layout_matches_blazeface_short_range() -> None:
    anchors = ssd_anchors(128, [8, 16, 16, 16])
    assert anchors.shape == (896, 2)
    assert np.allclose(anchors[0], [0.5 / 16, 0.5 / 16]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[512], [0.5 / 8, 0.5 / 8])  # first anchor of the 8x8 grid


def test_blazeface_finds_the_astronaut_and_nothing_in_a_blank_frame(detector, astronaut, blank) -> None:
    (face,) = detector.detect(astronaut)
    assert face.score > 0.8
    # The face in the NASA portrait sits around x 180-270, y 80-180 (checked by eye and by Haar).
    haar = HaarDetector().detect(astronaut)
    assert haar and iou(face.box, haar[0].box) > 0.5
    assert detector.detect(blank) == []
    assert HaarDetector().detect(blank) == []


def test_detector_unletterboxes_non_square_frames(detector, astronaut) -> None:
    wide = np.full((512, 640, 3), 90, np.uint8)  # a 5:4 frame, padded top and bottom by the letterbox
    wide[:, 100:612] = astronaut
    (face,) = detector.detect(wide)
    (direct,) = detector.detect(astronaut)
    shifted = (direct.box[0] + 100, direct.box[1], direct.box[2], direct.box[3])
    assert iou(face.box, shifted) > 0.8


def test_expression_int8_matches_recorded_reference(classifier) -> None:
    """The committed int8 model reproduces what build_models.py recorded, and stays close to float."""
    ref = np.load(MODELS / "expression_reference.npz")
    got = np.stack([classifier.model.run(x[None])[0].reshape(-1) for x in ref["inputs_float"]])
    assert np.allclose(got, ref["int8_probs"], atol=1e-6)
    assert np.mean(got.argmax(1) == ref["float_probs"].argmax(1)) >= 0.8
    assert np.abs(got - ref["float_probs"]).mean() < 0.05


def test_expression_model_is_full_integer(classifier) -> None:
    assert classifier.model.input_dtype == np.int8
    assert classifier.labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_smiling_astronaut_reads_happy(detector, classifier, astronaut) -> None:
    (face,) = detector.detect(astronaut)
    probs = classifier.classify(astronaut, face.box)
    assert probs.shape == (7,) and abs(probs.sum() - 1.0) < 1e-5
    assert classifier.labels[int(probs.argmax())] == "happy"


def test_manifest_sha256_matches_file() -> None:
    for path in MODELS.glob("*.json"):
        data = json.loads(path.read_text())
        if "sha256" in data and "file" in data:
            assert sha256_file(MODELS / data["file"]) == data["sha256"], path.name


def test_corrupt_or_missing_model_gives_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.tflite").write_bytes(b"\x00garbage" * 100)
    (tmp_path / "bad.json").write_text(json.dumps({"name": "bad", "task": "expression", "file": "bad.tflite"}))
    with pytest.raises(ModelError, match="bad.tflite: not a usable TFLite model"):
        TFLiteModel.from_manifest(tmp_path / "bad.json")
    (tmp_path / "gone.json").write_text(json.dumps({"name": "g", "task": "expression", "file": "gone.tflite"}))
    with pytest.raises(ModelError, match="gone.tflite: model file not found"):
        TFLiteModel.from_manifest(tmp_path / "gone.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        Manifest.load(tmp_path / "broken.json")
    with pytest.raises(ModelError, match="unknown interpreter backend"):
        TFLiteModel.from_manifest(MODELS / "expression.json", backend="onnx")
