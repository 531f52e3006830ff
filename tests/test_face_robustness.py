"""Issue 17: alignment, illumination steps from the manifest, mirror averaging, face quality with
``uncertain`` + reason reaching the events, and the tracker keeping ids through occlusion and crossings."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from benchmarks import robustness as rb
from benchmarks import tracking as tb
from emotiond.events import EmotionEvent, FaceLost
from emotiond.models import Manifest, ModelError, TFLiteModel
from emotiond.perception.align import square_crop
from emotiond.perception.expression import ExpressionClassifier
from emotiond.perception.face_detect import Detection, iou
from emotiond.perception.face_quality import TOO_BLURRY, TOO_DARK, TOO_SMALL, TURNED, QualityLimits, assess, exposure_gain
from emotiond.perception.pipeline import FacePipeline
from emotiond.perception.tracking import FaceTracker

MODELS = Path(__file__).resolve().parent.parent / "models"


def portrait_frame(astronaut: np.ndarray) -> np.ndarray:
    canvas = np.full((480, 640, 3), 100, np.uint8)
    canvas[40:340, 40:320] = astronaut[0:300, 100:380]
    return canvas


def emotion_faces(pipeline: FacePipeline, frame: np.ndarray) -> list[dict]:
    events = [e for e in pipeline.process(frame, 0.0) if isinstance(e, EmotionEvent)]
    assert events, "no face was classified"
    return json.loads(events[-1].to_json())["faces"]


# --- alignment -----------------------------------------------------------------------------------

def test_alignment_levels_a_rolled_eye_line() -> None:
    """Two 'eyes' on a line rolled by 20 degrees come out of the aligned crop on one row."""
    frame = np.zeros((200, 200), np.uint8)
    angle = np.radians(20.0)
    centre = np.array([100.0, 100.0])
    eyes = [centre + s * 30 * np.array([np.cos(angle), np.sin(angle)]) for s in (-1, 1)]
    for x, y in eyes:
        cv2.circle(frame, (int(round(x)), int(round(y))), 5, 255, -1)
    det = Detection((60, 60, 80, 80), 1.0, tuple((float(x), float(y)) for x, y in eyes))
    assert det.roll == pytest.approx(20.0, abs=0.5)

    def eye_rows(crop: np.ndarray) -> list[float]:
        left, right = crop[:, :32], crop[:, 32:]
        return [float(np.average(np.arange(64), weights=half.sum(axis=1) + 1e-9)) for half in (left, right)]

    upright = eye_rows(square_crop(frame, det.box, 0.0, (64, 64), None))
    levelled = eye_rows(square_crop(frame, det.box, 0.0, (64, 64), det.roll))
    assert abs(upright[0] - upright[1]) > 8  # the rolled line as cropped before
    assert abs(levelled[0] - levelled[1]) < 1.5


def test_blazeface_roll_follows_the_head_and_the_crop_is_levelled(default_config, astronaut) -> None:
    frame = portrait_frame(astronaut)
    pipeline = FacePipeline.from_config(default_config)
    clean = pipeline.detector.detect(frame)[0]
    assert clean.roll is not None and abs(clean.roll) < 5
    rotation = cv2.getRotationMatrix2D((180, 190), 15, 1.0)  # counter-clockwise on screen
    rolled_frame = cv2.warpAffine(frame, rotation, (640, 480), borderMode=cv2.BORDER_REPLICATE)
    rolled = pipeline.detector.detect(rolled_frame)[0]
    assert rolled.roll is not None and rolled.roll < -5  # eye line rises to the right
    clf = pipeline.classifier
    reference = clf.crop(frame, clean.box, clean.roll).astype(np.float32)
    plain = clf.crop(rolled_frame, rolled.box, None).astype(np.float32)
    aligned = clf.crop(rolled_frame, rolled.box, rolled.roll).astype(np.float32)
    assert np.abs(aligned - reference).mean() < np.abs(plain - reference).mean()


def test_a_zoomed_view_measures_the_roll_of_a_small_face_that_the_whole_frame_gets_wrong(
        default_config, astronaut) -> None:
    detector = FacePipeline.from_config(default_config).detector
    whole, zoomed, zoomed_rolled = [], [], []
    for x in range(0, 300, 30):
        frame = rb.sideways_portrait(astronaut, x)
        first = detector.detect(frame)[0]
        closer = detector.zoomed(frame, first.box)
        assert closer is not None and iou(closer.box, first.box) > 0.5
        whole.append(first.roll)
        zoomed.append(closer.roll)
        rotation = cv2.getRotationMatrix2D((x + 110, 240), 15, 1.0)  # counter-clockwise about the head
        rolled = cv2.warpAffine(frame, rotation, (640, 480), borderMode=cv2.BORDER_REPLICATE)
        found = detector.detect(rolled)
        rolled_closer = detector.zoomed(rolled, found[0].box) if found else None
        zoomed_rolled.append(None if rolled_closer is None else rolled_closer.roll)
    # the same upright face, moved sideways: the whole-frame eye line swings by tens of degrees
    assert max(whole) - min(whole) > 15
    assert max(zoomed) - min(zoomed) < 4 and all(abs(r) < 8 for r in zoomed)
    turned = [(z, r) for z, r in zip(zoomed, zoomed_rolled) if r is not None]
    assert len(turned) >= 8 and all(abs((z - r) - 15.0) < 5 for z, r in turned)


def test_no_zoomed_view_for_a_face_that_fills_the_frame_or_where_there_is_no_face(
        default_config, astronaut) -> None:
    detector = FacePipeline.from_config(default_config).detector
    close_up = cv2.resize(astronaut[0:300, 90:390], (640, 640))[80:560]
    face = detector.detect(close_up)[0]
    assert face.box[2] * 2.5 * 1.25 > 640 and detector.zoomed(close_up, face.box) is None
    wall = np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    assert detector.zoomed(wall, (300, 200, 90, 90)) is None
    # a predicted box may reach past the edge, or be empty: no view, no error
    frame = rb.sideways_portrait(astronaut, 0)
    for box in [(-500, -500, 90, 90), (600, 400, 90, 90), (10, 10, 0, 0)]:
        assert detector.zoomed(frame, box) is None
    x, y, w, h = detector.detect(frame)[0].box
    assert detector.zoomed(frame, (x - w / 3, y + 0.5, w + 0.25, h)) is not None  # its view is padded past the edge


def rolls_asked_for(pipeline: FacePipeline, frame: np.ndarray) -> tuple[list[float | None], float, float]:
    """Spies on the classifier: the rolls its crops are levelled by, plus the face's whole-frame and
    zoomed rolls (the sideways portrait at x=0 gets rolls more than 10 degrees apart)."""
    first = pipeline.detector.detect(frame)[0]
    closer = pipeline.detector.zoomed(frame, first.box)
    assert first.roll is not None and closer is not None and closer.roll is not None
    assert abs(first.roll - closer.roll) > 10
    rolls: list[float | None] = []
    classify = pipeline.classifier.classify

    def spy(frame, box, roll=None, scales=None):  # type: ignore[no-untyped-def]
        rolls.append(roll)
        return classify(frame, box, roll, scales)

    pipeline.classifier.classify = spy  # type: ignore[method-assign]
    return rolls, first.roll, closer.roll


@pytest.mark.parametrize("zoom_align", [True, False])
def test_each_reading_is_levelled_by_the_zoomed_roll_unless_zoom_align_is_off(
        default_config, astronaut, zoom_align) -> None:
    config = dataclasses.replace(default_config,
                                 expression=dataclasses.replace(default_config.expression, zoom_align=zoom_align))
    pipeline = FacePipeline.from_config(config)
    frame = rb.sideways_portrait(astronaut, 0)
    rolls, whole, zoomed = rolls_asked_for(pipeline, frame)
    pipeline.process(frame, 0.0)
    assert rolls == [pytest.approx(zoomed if zoom_align else whole)]


@pytest.mark.parametrize("zoom", [True, False])
def test_analyze_levels_its_crops_as_the_daemon_does(default_config, astronaut, zoom) -> None:
    from emotiond.analyze.faces import observe_frame

    pipeline = FacePipeline.from_config(default_config)
    frame = rb.sideways_portrait(astronaut, 0)
    rolls, whole, zoomed = rolls_asked_for(pipeline, frame)
    obs = observe_frame(0, 0.0, frame, 0.0, pipeline.detector, pipeline.classifier,
                        pipeline.detector if zoom else None)
    assert len(obs.faces) == 1
    assert rolls == [pytest.approx(zoomed if zoom else whole)]


def test_an_upright_face_at_the_edge_of_the_frame_is_not_called_turned(default_config, astronaut) -> None:
    """The whole-frame pass gives the upright astronaut at x=0 a roll of about -50 degrees, which
    quality took for a turned head: `uncertain` (turned) instead of `happy`."""
    frame = rb.sideways_portrait(astronaut, 0)
    faces = {}
    for zoom_align in (True, False):
        config = dataclasses.replace(default_config,
                                     expression=dataclasses.replace(default_config.expression, zoom_align=zoom_align))
        (faces[zoom_align],) = FacePipeline.from_config(config).classify_still(frame)
    assert faces[True].prediction.label == "happy" and faces[True].quality_reason != TURNED
    assert faces[False].prediction.label == "uncertain" and faces[False].quality_reason == TURNED


def test_a_blurred_small_face_is_read_as_it_is_once_its_crop_is_levelled_by_the_zoomed_roll(
        default_config, astronaut) -> None:
    """At x=357 the whole-frame pass reads the upright astronaut as rolled by about -27 degrees: the
    crop turned by that, blurred, read as neutral/sad/happy in near-equal parts (uncertain)."""
    frame = rb.sideways_portrait(astronaut, 357, blur=2.0)
    readings = {}
    for zoom_align in (True, False):
        config = dataclasses.replace(default_config,
                                     expression=dataclasses.replace(default_config.expression, zoom_align=zoom_align))
        (face,) = FacePipeline.from_config(config).classify_still(frame)
        readings[zoom_align] = face.prediction
    assert readings[True].label == "happy" and readings[True].probabilities["happy"] > 0.5
    assert readings[False].probabilities["happy"] < 0.4


def test_haar_has_no_keypoints_so_faces_stay_upright_and_roll_is_not_judged() -> None:
    det = Detection((10, 10, 50, 50), 1.0)
    assert det.roll is None
    gray = np.random.default_rng(0).integers(0, 255, (100, 100), dtype=np.uint8)
    assert TURNED not in (assess(gray, det.box, None).reason,)


# --- manifest preprocessing, mirror averaging -------------------------------------------------

def manifest_with_steps(tmp_path: Path, steps: list[str]) -> Path:
    data = json.loads((MODELS / "expression.json").read_text())
    data["preprocessing"]["steps"] = steps
    shutil.copy(MODELS / data["file"], tmp_path / data["file"])
    path = tmp_path / "expression.json"
    path.write_text(json.dumps(data))
    return path


def test_manifest_preprocessing_steps_are_honoured(tmp_path, astronaut) -> None:
    frame = portrait_frame(astronaut)
    box = (120, 110, 100, 100)
    plain = ExpressionClassifier.from_manifest(manifest_with_steps(tmp_path, []), "auto")
    equalised = ExpressionClassifier.from_manifest(manifest_with_steps(tmp_path, ["equalize_hist"]), "auto")
    base = plain.crop(frame, box, 10.0)  # no align_roll step: the roll is ignored
    assert np.array_equal(base, plain.crop(frame, box, None))
    assert np.array_equal(equalised.crop(frame, box)[:, :, 0], cv2.equalizeHist(base[:, :, 0]))
    aligned = ExpressionClassifier.from_manifest(manifest_with_steps(tmp_path, ["align_roll"]), "auto")
    assert not np.array_equal(aligned.crop(frame, box, 10.0), base)


def test_shipped_manifest_asks_for_alignment_and_stretch_and_a_dim_crop_is_stretched(tmp_path, astronaut) -> None:
    clf = ExpressionClassifier.from_manifest(MODELS / "expression.json", "auto")
    assert clf.steps == ("align_roll", "stretch")
    frame = portrait_frame(astronaut)
    box = (120, 110, 100, 100)
    dim = (frame * 0.3).astype(np.uint8)
    crop = clf.crop(dim, box)
    assert int(crop.max()) - int(crop.min()) > 200  # stretched back to the full range
    plain = ExpressionClassifier.from_manifest(manifest_with_steps(tmp_path, []), "auto")
    assert int(np.ptp(plain.crop(dim, box))) < 100
    assert np.array_equal(clf.crop(frame, box), plain.crop(frame, box))  # a well-exposed crop is left alone


def test_a_dim_noisy_crop_is_smoothed_before_the_stretch_and_keeps_its_clean_label(astronaut, default_config) -> None:
    """Stretching a dark crop amplifies the sensor's grain with the face; it is smoothed first."""
    from emotiond.perception import expression

    frame = portrait_frame(astronaut)
    rng = np.random.default_rng(3)
    dark = frame.astype(np.float32) * 0.25
    noisy = np.clip(dark + rng.normal(0.0, 1.0, dark.shape) * np.sqrt(dark * 0.5 + 9.0), 0, 255).astype(np.uint8)
    grey = cv2.cvtColor(noisy[110:210, 120:220], cv2.COLOR_BGR2GRAY)
    lo, hi = np.percentile(grey, (1.0, 99.0))
    raw = cv2.convertScaleAbs(grey, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))
    smoothed = expression._stretch(grey)

    def grain(img: np.ndarray) -> float:  # high-frequency energy: pixel minus its 3x3 mean
        f = img.astype(np.float32)
        return float(np.abs(f - cv2.blur(f, (3, 3))).mean())

    assert grain(smoothed) < 0.8 * grain(raw)
    assert int(np.ptp(smoothed)) > 180  # still stretched to (nearly) the full range
    clean = emotion_faces(FacePipeline.from_config(default_config), frame)[0]["label"]
    assert emotion_faces(FacePipeline.from_config(default_config), noisy)[0]["label"] == clean


def test_unknown_preprocessing_step_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="unknown preprocessing step"):
        ExpressionClassifier.from_manifest(manifest_with_steps(tmp_path, ["sharpen"]), "auto")
    data = json.loads((MODELS / "expression.json").read_text())
    data["preprocessing"]["steps"] = "clahe"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="must be a list"):
        _ = Manifest.load(bad).preprocessing_steps


def test_mirror_averaging_is_the_mean_of_crop_and_mirror(astronaut) -> None:
    model = TFLiteModel(Manifest.load(MODELS / "expression.json"))
    single = ExpressionClassifier(model, mirror_average=False)
    both = ExpressionClassifier(model, mirror_average=True)
    crop = single.crop(portrait_frame(astronaut), (120, 110, 100, 100))
    expected = (single.classify_crop(crop) + single.classify_crop(np.ascontiguousarray(crop[:, ::-1]))) / 2
    assert np.allclose(both.classify_crop(crop), expected)
    assert np.allclose(both.classify_crop(crop), both.classify_crop(np.ascontiguousarray(crop[:, ::-1])), atol=1e-6)


def test_crop_scales_average_the_readings_of_each_crop_size(astronaut) -> None:
    model = TFLiteModel(Manifest.load(MODELS / "expression.json"))
    single = ExpressionClassifier(model, mirror_average=True)
    several = ExpressionClassifier(model, mirror_average=True, crop_scales=(1.0, 0.88, 1.12))
    # blurred, so the reading is not a near-certain "happy" that every crop agrees on
    frame, box = cv2.GaussianBlur(portrait_frame(astronaut), (0, 0), 2.0), (120, 110, 100, 100)
    expected = np.mean([single.classify(frame, b) for b in ((120, 110, 100, 100), (126, 116, 88, 88), (114, 104, 112, 112))], 0)
    assert np.allclose(several.classify(frame, box), expected, atol=1e-6)
    assert not np.allclose(several.classify(frame, box), single.classify(frame, box), atol=1e-3)
    with pytest.raises(ValueError, match="crop_scales"):
        ExpressionClassifier(model, crop_scales=())


def test_averaging_crop_sizes_steadies_the_reading_when_the_box_moves_a_few_pixels() -> None:
    """What the detector's box does between a clean and a blurred, noisy or mirrored view of one face;
    on a face the model reads hesitantly (the cameraman, top probability ~0.35), where it matters."""
    data = pytest.importorskip("skimage.data")  # a dev dependency, as for benchmarks/robustness.py
    model = TFLiteModel(Manifest.load(MODELS / "expression.json"))
    frame = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    x, y, side = 190, 50, 130
    jitters = [(dx, dy, dw) for dx in (-5, 0, 5) for dy in (-5, 0, 5) for dw in (-8, 0, 8)]

    def spread(classifier: ExpressionClassifier) -> float:
        centre = classifier.classify(frame, (x, y, side, side))
        moved = [classifier.classify(frame, (x + dx, y + dy, side + dw, side + dw)) for dx, dy, dw in jitters]
        return float(np.mean([0.5 * np.abs(p - centre).sum() for p in moved]))

    single = spread(ExpressionClassifier(model, mirror_average=True))
    several = spread(ExpressionClassifier(model, mirror_average=True, crop_scales=(1.0, 0.88, 1.12)))
    assert several < 0.75 * single, (single, several)


def test_a_tracked_face_reads_every_crop_size_first_then_one_in_turn(default_config, astronaut) -> None:
    pipeline = FacePipeline.from_config(default_config)
    asked: list[tuple[float, ...] | None] = []
    classify = pipeline.classifier.classify

    def spy(frame, box, roll=None, scales=None):  # type: ignore[no-untyped-def]
        asked.append(scales)
        return classify(frame, box, roll, scales)

    pipeline.classifier.classify = spy  # type: ignore[method-assign]
    frame = portrait_frame(astronaut)
    for n in range(4 * default_config.expression.every):
        pipeline.process(frame, n / 30.0)
    sizes = default_config.expression.crop_scales
    assert asked == [sizes, (sizes[0],), (sizes[1],), (sizes[2],)]


# --- quality ----------------------------------------------------------------------------------

def test_quality_flags_dark_blurred_small_and_rolled_faces(astronaut) -> None:
    gray = cv2.cvtColor(portrait_frame(astronaut), cv2.COLOR_BGR2GRAY)
    box = (120, 110, 100, 100)
    good = assess(gray, box, 0.0)
    assert good.score == 1.0 and good.reason is None
    assert assess((gray * 0.05).astype(np.uint8), box, 0.0).reason == TOO_DARK
    assert assess(cv2.GaussianBlur(gray, (0, 0), 4), box, 0.0).reason == TOO_BLURRY
    small = cv2.resize(gray, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    assert assess(small, (24, 22, 20, 20), 0.0).reason == TOO_SMALL
    assert assess(gray, box, 60.0).reason == TURNED
    for q in (assess((gray * 0.05).astype(np.uint8), box, 0.0), assess(gray, box, 60.0)):
        assert 0.0 <= q.score < 0.3


def test_sharpness_is_judged_at_a_normal_exposure(astronaut) -> None:
    gray = cv2.cvtColor(portrait_frame(astronaut), cv2.COLOR_BGR2GRAY)
    box = (120, 110, 100, 100)
    soft = cv2.GaussianBlur(gray, (0, 0), 1.0)  # a little soft, as a lamp-lit room's longer exposure gives
    bright = assess(soft, box, 0.0)
    assert bright.score == pytest.approx(1.0)
    for light in (0.4, 0.3):  # the same face in less light: as sharp as in full light, so still readable
        dim = assess((soft * light).astype(np.uint8), box, 0.0)
        assert dim.score >= 0.5, (light, dim)  # it scored 0.08 at 0.3 of the light when judged as it came
    # a dim face that is blurred as well is still called blurred
    assert assess((cv2.GaussianBlur(gray, (0, 0), 4) * 0.3).astype(np.uint8), box, 0.0).reason == TOO_BLURRY
    limits = QualityLimits()
    assert exposure_gain(150.0, limits) == exposure_gain(100.0, limits) == 1.0
    assert exposure_gain(50.0, limits) == pytest.approx(2.0) and exposure_gain(5.0, limits) == 4.0


def test_a_dim_slightly_soft_face_is_read_not_refused_as_blurred(default_config, astronaut) -> None:
    frame = portrait_frame(astronaut)
    (clean,) = emotion_faces(FacePipeline.from_config(default_config), frame)
    assert clean["label"] == "happy"
    dim_soft = cv2.GaussianBlur((frame * 0.25).astype(np.uint8), (0, 0), 1.0)
    (face,) = emotion_faces(fixed_box_pipeline(default_config, clean["box"]), dim_soft)
    assert face["label"] == "happy" and face["quality"] >= default_config.expression.min_quality, face


def fixed_box_pipeline(config, box) -> FacePipeline:
    """The default face path with the detector pinned to ``box``: a spoiled face may or may not be
    detected, and these tests are about what is done with it once it is."""
    pipeline = FacePipeline.from_config(config)
    pipeline.detector = type("Fixed", (), {"detect": lambda self, _f: [Detection(tuple(box), 0.9)]})()
    return pipeline


@pytest.mark.parametrize("spoil, reason", [
    (lambda f: (f * 0.06).astype(np.uint8), TOO_DARK),
    (lambda f: cv2.GaussianBlur(f, (0, 0), 4), TOO_BLURRY),
])
def test_a_poor_face_is_uncertain_with_its_reason_in_the_event(default_config, astronaut, spoil, reason) -> None:
    frame = portrait_frame(astronaut)
    (clean,) = emotion_faces(FacePipeline.from_config(default_config), frame)
    assert clean["label"] == "happy" and clean["quality_reason"] is None and clean["quality"] == 1.0
    pipeline = fixed_box_pipeline(default_config, clean["box"])
    events = [e for e in pipeline.process(spoil(frame), 0.0) if isinstance(e, EmotionEvent)]
    body = json.loads(events[-1].to_json())
    (face,) = body["faces"]
    assert face["label"] == "uncertain" and face["quality_reason"] == reason and face["quality"] < 0.3
    for key in ("face_id", "box", "detector_score", "held", "probabilities", "confidence"):
        assert key in face  # existing keys kept
    assert body["scene"]["label"] == "uncertain" and body["scene"]["quality_reason"] == reason


def test_the_confidence_a_poor_view_needs_rises_from_sure_confidence_to_never(default_config) -> None:
    pipeline = FacePipeline.from_config(default_config)
    e = default_config.expression
    assert pipeline.needed_confidence(1.0) == pipeline.needed_confidence(e.min_quality) == e.uncertain_below
    bars = [pipeline.needed_confidence(q) for q in (0.29, 0.2, 0.1, 0.01)]
    assert bars == sorted(bars) and bars[0] >= e.sure_confidence > e.uncertain_below and bars[-1] < 1.0
    assert pipeline.needed_confidence(0.0) == float("inf")
    never = FacePipeline.from_config(dataclasses.replace(
        default_config, expression=dataclasses.replace(e, sure_confidence=1.0)))
    assert never.needed_confidence(0.29) == float("inf") and never.needed_confidence(0.3) == e.uncertain_below
    low = FacePipeline.from_config(dataclasses.replace(
        default_config, expression=dataclasses.replace(e, sure_confidence=0.1)))
    assert low.needed_confidence(0.29) >= e.uncertain_below  # never below the bar of a good view


def test_a_blurred_face_is_read_only_while_the_model_stays_sure_of_it(default_config, astronaut) -> None:
    frame = portrait_frame(astronaut)
    (clean,) = emotion_faces(FacePipeline.from_config(default_config), frame)
    assert clean["label"] == "happy"
    # sigma 2.3: quality ~0.23 (too blurry) but the smile still reads at ~0.93, above the bar for it
    pipeline = fixed_box_pipeline(default_config, clean["box"])
    events = [e for e in pipeline.process(cv2.GaussianBlur(frame, (0, 0), 2.3), 0.0) if isinstance(e, EmotionEvent)]
    body = json.loads(events[-1].to_json())
    (face,) = body["faces"]
    assert face["quality"] < default_config.expression.min_quality and face["quality_reason"] == TOO_BLURRY
    assert face["confidence"] >= pipeline.needed_confidence(face["quality"])
    assert face["label"] == "happy"
    assert body["scene"]["label"] == "happy" and body["scene"]["quality"] == pytest.approx(face["quality"], abs=1e-3)
    # the same view is refused with sure_confidence 1.0, and so are blurrier ones whose reading wavers
    never = dataclasses.replace(default_config, expression=dataclasses.replace(
        default_config.expression, sure_confidence=1.0))
    (refused,) = emotion_faces(fixed_box_pipeline(never, clean["box"]), cv2.GaussianBlur(frame, (0, 0), 2.3))
    assert refused["label"] == "uncertain" and refused["quality_reason"] == TOO_BLURRY
    for sigma in (2.5, 3.5):  # still mostly "happy" at 2.5 (~0.8), but not sure enough for that view
        pipeline = fixed_box_pipeline(default_config, clean["box"])
        (blurrier,) = emotion_faces(pipeline, cv2.GaussianBlur(frame, (0, 0), sigma))
        assert blurrier["confidence"] < pipeline.needed_confidence(blurrier["quality"])
        assert blurrier["label"] == "uncertain" and blurrier["quality_reason"] == TOO_BLURRY


def test_min_quality_zero_turns_the_check_off(default_config, astronaut) -> None:
    expression = dataclasses.replace(default_config.expression, min_quality=0.0, uncertain_below=0.0)
    cfg = dataclasses.replace(default_config, expression=expression)
    pipeline = FacePipeline.from_config(cfg)
    frame = portrait_frame(astronaut)
    box = pipeline.detector.detect(frame)[0].box
    pipeline.detector = type("Fixed", (), {"detect": lambda self, _f: [Detection(box, 0.9)]})()
    (face,) = emotion_faces(pipeline, cv2.GaussianBlur(frame, (0, 0), 4))
    assert face["label"] != "uncertain" and face["quality_reason"] == TOO_BLURRY


# --- tracking -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene(astronaut) -> tuple[np.ndarray, np.ndarray]:
    return tb._head(astronaut), tb._background()


@pytest.mark.parametrize("speed, occlusion, phase", [(12, 4, 0), (16, 6, 2), (16, 6, 4), (8, 6, 1)])
def test_an_occluded_walker_keeps_its_id(default_config, scene, speed, occlusion, phase) -> None:
    head, background = scene
    clip = tb.walker(head, speed, occlusion, phase)
    score = tb.run_clip(clip, default_config, head, background)
    assert (score.id_switches, score.fragments, score.ghost_frames) == (0, 0, 0)


@pytest.mark.parametrize("turn, speed, occlusion, phase", [
    ("stop", 16, 6, 0), ("stop", 12, 4, 2), ("stop", 8, 6, 4), ("back", 16, 6, 1), ("back", 8, 4, 3)])
def test_a_walker_who_stops_or_turns_back_while_hidden_keeps_its_id(default_config, scene, turn, speed,
                                                                    occlusion, phase) -> None:
    """The prediction runs on past a person who stopped (or turned back) behind a passer-by; when they
    are seen again they are still within walking reach of their last detection, and look the same."""
    head, background = scene
    score = tb.run_clip(tb.stopper(head, speed, occlusion, phase, turn), default_config, head, background)
    assert (score.id_switches, score.swaps, score.fragments) == (0, 0, 0)


@pytest.mark.parametrize("offset, same_face", [(75, True), (150, False)])
def test_a_held_face_is_found_again_within_reach_but_not_across_the_room(offset, same_face) -> None:
    """A same-looking face 1.5 box widths from where a held face was last seen (a person who stopped)
    is that face; one 3 widths away is someone else, however alike their colours."""
    def frame_with(box: tuple[int, int, int, int]) -> np.ndarray:
        frame = np.full((240, 400, 3), 40, np.uint8)
        x, y, w, h = box
        frame[y : y + h, x : x + w] = (60, 120, 200)  # one skin-like colour for both
        return frame
    tracker = FaceTracker(hold_frames=15)
    home = (60, 80, 50, 50)
    for i in range(0, 15, 5):
        tracker.update(i, cv2.cvtColor(frame_with(home), cv2.COLOR_BGR2GRAY), [Detection(home, 0.9)], frame_with(home))
    (first,) = tracker.tracks
    empty = np.full((240, 400, 3), 40, np.uint8)
    for i in range(15, 19):
        tracker.update(i, cv2.cvtColor(empty, cv2.COLOR_BGR2GRAY), [], empty)
    assert first.held
    there = (home[0] + offset, home[1], 50, 50)
    update = tracker.update(19, cv2.cvtColor(frame_with(there), cv2.COLOR_BGR2GRAY), [Detection(there, 0.9)],
                            frame_with(there))
    if same_face:
        assert not update.appeared and not first.held and first.box == there
    else:
        assert [t.face_id for t in update.appeared] != [first.face_id] and update.appeared and first.held


def test_the_detector_runs_on_every_frame_while_a_face_is_held_and_the_cadence_keeps_its_phase(
        default_config, astronaut) -> None:
    pipeline = FacePipeline.from_config(dataclasses.replace(
        default_config, motion=dataclasses.replace(default_config.motion, enabled=False)))
    calls: list[int] = []
    real = pipeline.detector

    class Counting:
        def detect(self, frame):
            calls.append(frame_no)
            return real.detect(frame)

    pipeline.detector = Counting()
    face, empty = portrait_frame(astronaut), np.full((480, 640, 3), 100, np.uint8)
    lost_at = None
    for frame_no in range(40):
        events = pipeline.process(face if frame_no < 12 else empty, frame_no / 30.0)
        if any(isinstance(e, FaceLost) for e in events):
            lost_at = frame_no
    every = default_config.faces.detect_every
    assert [n for n in calls if n < 12] == list(range(0, 12, every))  # seen: the regular cadence
    assert lost_at is not None
    searching = [n for n in calls if 12 <= n <= lost_at]  # gone from view, not yet given up
    assert searching[0] <= 15 and searching == list(range(searching[0], lost_at + 1))  # every frame
    assert lost_at - searching[0] >= default_config.faces.hold_frames - 1  # for the whole hold
    assert [n for n in calls if n > lost_at] == [n for n in range(lost_at + 1, 40) if n % every == 0]  # same phase


@pytest.mark.parametrize("speed", [4, 12, 16])
def test_crossers_keep_their_ids(default_config, scene, speed) -> None:
    head, background = scene
    trace: list[dict] = []
    score = tb.run_clip(tb.crossers(head, speed), default_config, head, background, trace)
    assert (score.id_switches, score.swaps) == (0, 0)
    ids = {pid: {t["matched"][pid] for t in trace if pid in t["matched"]} for pid in (1, 2)}
    assert len(ids[1]) == len(ids[2]) == 1 and ids[1] != ids[2]


def test_a_face_that_walked_out_stops_counting_at_once() -> None:
    """A held box predicted out of the frame is dropped long before the hold expires."""
    tracker = FaceTracker(hold_frames=30)
    frame = np.full((240, 320), 40, np.uint8)
    for i in range(0, 25, 5):  # detected every 5 frames walking right at 10 px/frame
        tracker.update(i, frame, [Detection((180 + 10 * i // 1, 80, 50, 50), 0.9)] if 180 + 10 * i < 320 else [])
        for j in range(i + 1, i + 5):
            tracker.update(j, frame, None)
    lost_at = None
    for i in range(25, 60):
        update = tracker.update(i, frame, [] if i % 5 == 0 else None)
        if update.lost:
            lost_at = i
            break
    assert lost_at is not None and lost_at < 25 + 30


def test_fusion_weighs_a_poorly_seen_scene_less_against_the_voice() -> None:
    from emotiond.config import FusionConfig
    from emotiond.events import AudioEvent, Prediction, SceneEmotion
    from emotiond.fusion.labels import EMOTIONS
    from emotiond.fusion.stage import FusionStage

    def pred(label: str) -> Prediction:
        return Prediction({e: (1.0 if e == label else 0.0) for e in EMOTIONS}, label, 1.0)

    def fused_sad(quality: float | None) -> float:
        stage = FusionStage(FusionConfig(smoothing="mean", history=1))
        stage(AudioEvent("gpio", "ok", 2.0, prediction=pred("sad"), timestamp=100.0, validated=True))
        event = EmotionEvent(1, (), SceneEmotion(1, pred("happy"), None, quality), timestamp=100.5)
        fused = stage.fuse(event)
        assert fused is not None
        return fused.prediction.probabilities["sad"]

    assert fused_sad(None) == pytest.approx(fused_sad(1.0))  # no quality known: as before
    assert fused_sad(0.2) > fused_sad(1.0) + 0.2


def test_the_display_says_why_it_cannot_tell() -> None:
    from emotiond.config import DisplayConfig
    from emotiond.display_render import DisplayState, render
    from emotiond.events import Prediction, SceneEmotion
    from emotiond.sinks.display import DisplaySink
    from luma.core.device import dummy

    device = dummy(width=128, height=64, mode="1")
    sink = DisplaySink(DisplayConfig(enabled=True), device=device)
    guess = Prediction({"happy": 0.6, "sad": 0.4}, "uncertain", 0.6)
    sink.handle(EmotionEvent(3, (), SceneEmotion(1, guess, "too_dark", 0.1)))
    assert sink.refresh()
    said = render(DisplayState(label="uncertain", confidence=0.6, faces=1, modalities=("face",), reason="too_dark"))
    silent = render(DisplayState(label="uncertain", confidence=0.6, faces=1, modalities=("face",)))
    assert device.image.tobytes() == said.tobytes() != silent.tobytes()
    sink.close()
