"""The small pure parts of `emotiond analyze`: sentiment mapping, fusion, saliency, tiling, audio
segments, image statistics, flow summaries and the progress bar."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from emotiond.analyze.audio import mel_features, speech_segments
from emotiond.analyze.flow import flow_field, flow_positions, summarise
from emotiond.analyze.fusion import FusionModel, concatenate, feature_level, score_level
from emotiond.analyze.progress import Progress
from emotiond.analyze.saliency import box_mass, box_ratio, spectral_residual
from emotiond.analyze.scene import image_stats, scene_stream
from emotiond.analyze.sentiment import intensity, to_sentiment, valence
from emotiond.analyze.tiling import merge, tile_boxes
from emotiond.fusion.labels import EMOTIONS
from emotiond.models import ModelError
from emotiond.perception.face_detect import Detection

# --- sentiment -----------------------------------------------------------------------------------

def test_sentiment_mapping_sums_the_documented_classes():
    probs = np.array([0.05, 0.05, 0.1, 0.4, 0.1, 0.2, 0.1])  # angry disgust fear happy sad surprise neutral
    s = to_sentiment(EMOTIONS, probs)
    assert s == pytest.approx([0.6, 0.1, 0.3])
    assert valence(s) == pytest.approx(0.3)
    assert intensity(s) == pytest.approx(0.6)


def test_sentiment_ignores_unknown_labels_and_renormalises():
    s = to_sentiment(["calm", "happy", "sad"], np.array([0.5, 0.25, 0.25]))
    assert s == pytest.approx([0.5, 0.0, 0.5])
    assert to_sentiment(["calm"], np.array([1.0])) == pytest.approx([0.0, 1.0, 0.0])


def test_intensity_is_zero_for_a_neutral_face():
    assert intensity(to_sentiment(EMOTIONS, np.eye(7)[6])) == 0.0


# --- fusion --------------------------------------------------------------------------------------

def _stream(prefix: str, sentiment, extra: dict | None = None) -> dict:
    feats = {f"{prefix}.pos": 0.0, f"{prefix}.neu": 0.0, f"{prefix}.neg": 0.0}
    if sentiment is not None:
        feats.update(zip((f"{prefix}.pos", f"{prefix}.neu", f"{prefix}.neg"), sentiment))
    feats.update(extra or {})
    return {"features": feats, "sentiment": None if sentiment is None else np.array(sentiment)}


@pytest.fixture(scope="module")
def fusion_model(repo_root) -> FusionModel:
    return FusionModel.load(repo_root / "models" / "analyze_fusion.json")


def test_shipped_fusion_manifest_is_marked_untrained(fusion_model):
    assert fusion_model.trained is False
    assert fusion_model.classes == ("positive", "neutral", "negative")


def test_feature_level_concatenates_and_applies_the_manifest_weights(fusion_model):
    streams = {
        "faces": _stream("faces", [1.0, 0.0, 0.0], {"faces.count": 0.5}),
        "scene": _stream("scene", [0.0, 1.0, 0.0]),
        "audio": _stream("audio", None),
        "flow": {"features": {"flow.moving": 0.5, "flow.speed_mean": 3.0}, "sentiment": None},
    }
    names, x = concatenate(streams)
    assert names[:4] == ["faces.pos", "faces.neu", "faces.neg", "faces.count"] and len(x) == 12
    out = feature_level(fusion_model, streams)
    w = fusion_model.weights
    expected = np.array([w["positive"]["faces.pos"] + 0.5 * w["positive"]["flow.moving"],
                         w["neutral"]["scene.neu"],
                         0.5 * w["negative"]["flow.moving"]])
    assert [out["logits"][c] for c in ("positive", "neutral", "negative")] == pytest.approx(expected, abs=1e-3)
    probs = np.exp(expected) / np.exp(expected).sum()
    assert out["probabilities"]["positive"] == pytest.approx(probs[0], abs=1e-3)
    assert out["label"] == "positive"
    assert out["contributions"]["audio"] == {"positive": 0.0, "neutral": 0.0, "negative": 0.0}
    assert out["contributions"]["flow"]["positive"] == out["contributions"]["flow"]["negative"] > 0


def test_fusion_manifest_errors_are_model_errors(tmp_path):
    bad = tmp_path / "f.json"
    bad.write_text(json.dumps({"task": "analyze_fusion", "classes": ["a", "b"]}))
    with pytest.raises(ModelError, match="classes"):
        FusionModel.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        FusionModel.load(bad)
    with pytest.raises(ModelError, match="not found"):
        FusionModel.load(tmp_path / "missing.json")


def test_score_level_is_the_weighted_mean_of_available_streams():
    streams = {"faces": _stream("faces", [1.0, 0.0, 0.0]), "scene": _stream("scene", None),
               "audio": _stream("audio", [0.0, 0.0, 1.0])}
    out = score_level(streams, {"faces": 0.6, "scene": 0.2, "audio": 0.2})
    assert out["weights_used"] == {"faces": 0.75, "audio": 0.25}
    assert out["probabilities"] == {"positive": 0.75, "neutral": 0.0, "negative": 0.25}
    assert out["valence"] == pytest.approx(0.5)
    empty = score_level({"scene": _stream("scene", None)}, {"scene": 1.0})
    assert empty["available"] is False and empty["probabilities"] is None


# --- saliency ------------------------------------------------------------------------------------

def test_spectral_residual_marks_the_odd_one_out():
    frame = np.full((240, 320, 3), 90, np.uint8)
    cv2.rectangle(frame, (200, 40), (240, 80), (255, 255, 255), -1)
    sal = spectral_residual(frame)
    assert sal.sum() == pytest.approx(1.0)
    inside = box_ratio(sal, (200, 40, 40, 40), 320, 240)
    elsewhere = box_ratio(sal, (40, 140, 40, 40), 320, 240)
    assert inside > 3.0 > elsewhere
    assert box_mass(sal, (0, 0, 320, 240), 320, 240) == pytest.approx(1.0)


def test_spectral_residual_of_a_flat_frame_is_uniform():
    sal = spectral_residual(np.full((50, 80, 3), 17, np.uint8))
    assert np.allclose(sal, sal.flat[0])


# --- tiling --------------------------------------------------------------------------------------

@pytest.mark.parametrize("grid", [2, 3])
def test_tiles_cover_the_frame_and_overlap(grid):
    tiles = tile_boxes(640, 360, grid)
    assert len(tiles) == grid * grid
    covered = np.zeros((360, 640), bool)
    for x, y, w, h in tiles:
        assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 360
        covered[y:y + h, x:x + w] = True
    assert covered.all()
    assert tiles[0][0] + tiles[0][2] > tiles[1][0]  # neighbours overlap
    assert tile_boxes(640, 360, 1) == []


def test_merge_keeps_the_best_of_overlapping_boxes_and_drops_cut_faces():
    dets = [Detection((100, 100, 50, 50), 0.8), Detection((102, 101, 50, 50), 0.95),
            Detection((110, 105, 30, 30), 0.9),  # mostly inside the kept box (a tile cut the face)
            Detection((300, 100, 40, 40), 0.7)]
    kept = merge(dets)
    assert [d.box for d in kept] == [(102, 101, 50, 50), (300, 100, 40, 40)]
    assert len(merge(dets, max_faces=1)) == 1


# --- audio helpers -------------------------------------------------------------------------------

def test_speech_segments_merge_short_gaps_and_drop_short_runs():
    voiced = [0] * 5 + [1] * 20 + [0] * 5 + [1] * 10 + [0] * 30 + [1] * 5 + [0] * 10
    segs = speech_segments([bool(v) for v in voiced], 0.03, merge_gap_s=0.3, min_len_s=0.5)
    # runs 0.15-0.75 and 0.90-1.20 are 0.15 s apart -> one segment; the last run is 0.15 s long -> dropped
    assert segs == [(0.15, 1.2)]


def test_mel_features_follow_the_spectrum():
    low = np.full((128, 20), -80.0)
    low[:16] = -10.0
    f = mel_features(low)
    assert f["audio.mel_db_g0"] == pytest.approx(-10.0) and f["audio.mel_db_g7"] == pytest.approx(-80.0)
    high = np.full((128, 20), -80.0)
    high[-16:] = -10.0
    assert mel_features(high)["audio.mel_centroid"] > 0.8
    assert f["audio.mel_centroid"] < 0.2


# --- scene ---------------------------------------------------------------------------------------

def test_image_stats_tell_bright_colourful_from_dark_grey():
    rng = np.random.default_rng(0)
    colourful = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    grey = np.full((120, 160, 3), 30, np.uint8)
    a, b = image_stats(colourful), image_stats(grey)
    assert a["colourfulness"] > 0.2 > b["colourfulness"] == pytest.approx(0.0)
    assert a["brightness"] > b["brightness"]
    assert b["contrast"] == pytest.approx(0.0) and b["edges"] == 0.0
    assert 0.0 <= a["saliency_spread"] <= 1.0


def test_scene_stream_weights_frames_by_face_share():
    pos, neg = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    stats = [image_stats(np.full((20, 20, 3), 50, np.uint8))] * 3
    out = scene_stream([pos, neg, np.array([0.0, 1.0, 0.0])], [0.3, 0.1, 0.0], stats)
    assert out["available"]
    assert out["sentiment"] == pytest.approx([0.75, 0.0, 0.25])
    none = scene_stream([np.array([0.0, 1.0, 0.0])], [0.0], stats[:1])
    assert not none["available"] and none["features"]["scene.pos"] == 0.0


# --- flow ----------------------------------------------------------------------------------------

def test_flow_positions_are_evenly_spaced_pairs():
    assert flow_positions(100, 8) == [0, 14, 28, 42, 56, 70, 84, 98]
    assert flow_positions(3, 8) == [0, 1]
    assert flow_positions(1, 8) == []


def _texture(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (240, 360, 3), dtype=np.uint8), (0, 0), 2)


@pytest.mark.parametrize("dx, dy, expected_bin", [(3, 0, 0), (-3, 0, 4), (0, -3, 2), (0, 3, 6)])
def test_flow_direction_histogram_points_the_way_things_move(dx, dy, expected_bin):
    big = _texture()
    a = big[20:200, 20:340]
    b = big[20 - dy:200 - dy, 20 - dx:340 - dx]  # content moves by (dx, dy)
    f = summarise([flow_field(a, b)], fps=10.0)
    hist = [f[f"flow.dir_{i}"] for i in range(8)]
    assert int(np.argmax(hist)) == expected_bin and max(hist) > 0.5
    assert f["flow.speed_mean"] == pytest.approx(3 / 320 * 10, rel=0.35)


def test_flow_of_a_still_scene_is_no_motion():
    a = _texture()[20:200, 20:340]
    f = summarise([flow_field(a, a.copy())], fps=25.0)
    assert f["flow.moving"] == 0.0 and f["flow.speed_mean"] < 1e-3


# --- progress ------------------------------------------------------------------------------------

def test_progress_is_silent_when_not_a_terminal():
    out = io.StringIO()
    p = Progress(out)
    p.update("scoring", 5, 10)
    p.close()
    assert out.getvalue() == ""


def test_progress_draws_a_bar_when_enabled():
    out = io.StringIO()
    p = Progress(out, enabled=True, min_interval_s=0.0)
    p.update("scoring", 5, 10)
    assert "\rscoring" in out.getvalue() and "50%" in out.getvalue() and "5/10" in out.getvalue()
    p.close()
    assert out.getvalue().endswith("\r\x1b[K")
