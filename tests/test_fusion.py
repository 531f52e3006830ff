"""Fusion maths on hand-computed cases (coverage, fading, weights, renormalisation), the stage's
behaviour over time, the circumplex projection, and the demo showing both modalities."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from emotiond.config import FusionConfig
from emotiond.events import AudioEvent, EmotionEvent, FaceAppeared, Prediction, SceneEmotion
from emotiond.fusion.circumplex import COORDINATES, FusionModel, project
from emotiond.fusion.labels import EMOTIONS, to_vector
from emotiond.fusion.stage import FEATURE_NAMES, FusionStage, freshness, fuse_scores
from emotiond.models import ModelError
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MODELS, ROOT

AUDIO_COVERAGE = {e: e in ("neutral", "happy", "fear", "disgust") for e in EMOTIONS}


def vec(**kw):
    return np.array([kw.get(e, 0.0) for e in EMOTIONS])


def test_score_fusion_hand_computed_with_coverage():
    face = vec(angry=0.5, happy=0.3, neutral=0.2)
    audio = vec(happy=0.8, neutral=0.2)
    cov = np.array([AUDIO_COVERAGE[e] for e in EMOTIONS])
    fused = fuse_scores(face, audio, cov, 0.6, 0.4)
    # angry is not covered: it keeps the face's 0.5 exactly; the face's 0.5 on the covered classes is
    # split by 0.6 * face|C + 0.4 * audio|C: happy 0.6*0.6 + 0.4*0.8 = 0.68, neutral 0.6*0.4 + 0.4*0.2 = 0.32
    assert fused == pytest.approx(vec(angry=0.5, happy=0.5 * 0.68, neutral=0.5 * 0.32))


def test_a_voice_result_cannot_move_mass_from_a_class_it_cannot_say():
    # the case: a sad face plus any fresh voice result stays sad = 1.0 (the voice cannot say sad)
    cov = np.array([AUDIO_COVERAGE[e] for e in EMOTIONS])
    assert fuse_scores(vec(sad=1.0), vec(fear=1.0), cov, 0.6, 0.4) == pytest.approx(vec(sad=1.0))
    assert fuse_scores(vec(sad=0.5, fear=0.5), vec(happy=1.0), cov, 0.6, 0.4) == pytest.approx(
        vec(sad=0.5, fear=0.3, happy=0.2))


distributions = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=7, max_size=7).filter(
    lambda v: sum(v) > 1e-3).map(lambda v: np.array(v) / sum(v))
masks = st.lists(st.booleans(), min_size=7, max_size=7).filter(any).map(np.array)
weights = st.floats(0.01, 1.0)


def _voice(audio: np.ndarray, cov: np.ndarray) -> np.ndarray:
    a = np.where(cov, audio, 0.0)
    return a / a.sum() if a.sum() > 0 else np.where(cov, 1.0, 0.0) / cov.sum()


@settings(max_examples=200, deadline=None)
@given(distributions, distributions, masks, weights, weights)
def test_property_uncovered_classes_unchanged_and_sum_to_one(face, audio, cov, wf, wa):
    fused = fuse_scores(face, _voice(audio, cov), cov, wf, wa)
    assert fused[~cov] == pytest.approx(face[~cov], abs=1e-12)
    assert fused[cov].sum() == pytest.approx(face[cov].sum(), abs=1e-9)
    assert fused.sum() == pytest.approx(1.0, abs=1e-9)
    assert (fused >= 0).all()


@settings(max_examples=200, deadline=None)
@given(distributions, distributions, weights, weights)
def test_property_full_coverage_is_the_weighted_mean(face, audio, wf, wa):
    full = np.ones(7, bool)
    expected = (wf * face + wa * audio) / (wf + wa)
    assert fuse_scores(face, audio, full, wf, wa) == pytest.approx(expected, abs=1e-9)
    assert fuse_scores(face, audio, None, wf, wa) == pytest.approx(expected, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(distributions, distributions, masks, weights)
def test_property_zero_voice_weight_gives_the_face_alone(face, audio, cov, wf):
    assert fuse_scores(face, _voice(audio, cov), cov, wf, 0.0) == pytest.approx(face, abs=1e-12)


def test_score_fusion_weights_and_no_softmax():
    face, audio = vec(happy=1.0), vec(sad=1.0)
    assert fuse_scores(face, audio, None, 0.6, 0.4) == pytest.approx(vec(happy=0.6, sad=0.4))
    assert fuse_scores(face, audio, None, 0.3, 0.7) == pytest.approx(vec(happy=0.3, sad=0.7))
    # a softmax over these would give 0.1857 / 0.1520 / 0.1109...; renormalising keeps them
    assert fuse_scores(vec(happy=0.7, sad=0.3), None, None, 0.6, 0.4) == pytest.approx(vec(happy=0.7, sad=0.3))
    assert fuse_scores(None, None, None, 0.6, 0.4) is None
    assert fuse_scores(None, vec(fear=1.0), None, 0.6, 0.4) == pytest.approx(vec(fear=1.0))


def test_fading():
    assert freshness(0.0, 10.0) == 1.0
    assert freshness(2.5, 10.0) == pytest.approx(0.75)
    assert freshness(10.0, 10.0) == 0.0 and freshness(50.0, 10.0) == 0.0
    assert freshness(-1.0, 10.0) == 1.0  # clock skew: treated as brand new
    # at age 5 of 10 the audio weight is 0.4 * 0.5 = 0.2
    assert fuse_scores(vec(happy=1.0), vec(sad=1.0), None, 0.6, 0.4 * freshness(5.0, 10.0)) == pytest.approx(
        vec(happy=0.75, sad=0.25))


def emotion_event(ts, **probs):
    p = vec(**probs)
    pred = Prediction({e: float(v) for e, v in zip(EMOTIONS, p)}, EMOTIONS[int(p.argmax())], float(p.max()))
    return EmotionEvent(frame=int(ts), faces=(), scene=SceneEmotion(1, pred), timestamp=ts)


def audio_event(ts, arousal=None, validated=True, **probs):
    p = vec(**probs)
    pred = Prediction({e: float(v) for e, v in zip(EMOTIONS, p)}, EMOTIONS[int(p.argmax())], float(p.max()))
    return AudioEvent("gpio", "ok", 2.0, prediction=pred, coverage=AUDIO_COVERAGE,
                      prosody={"pitch_hz": 120.0, "pitch_range_hz": 20.0, "loudness_db": -20.0, "speech_rate": 4.0,
                               "voiced_ratio": 0.4}, arousal=arousal, validated=validated, timestamp=ts)


def stage(**kw):
    return FusionStage(FusionConfig(**{"smoothing": "mean", "history": 1, **kw}))


def test_stage_face_only_is_the_normal_state():
    s = stage()
    (out,) = s(emotion_event(100.0, happy=0.7, neutral=0.3))
    assert out.fused.modalities == {"face": 0.0}
    assert out.fused.prediction.label == "happy" and out.fused.prediction.confidence == pytest.approx(0.7)
    assert len(out.fused.features) == len(FEATURE_NAMES) == 28
    assert out.fused.features[7:21] == (0.0,) * 14  # no audio probabilities, no coverage


def test_stage_fuses_fades_and_expires_audio():
    s = stage(audio_validity_s=10.0)
    assert s(FaceAppeared(1, (0, 0, 10, 10), 0)) [0].type == "face_appeared"  # other events pass untouched
    (passed,) = s(audio_event(100.0, fear=1.0))
    assert passed.type == "audio"
    (out,) = s(emotion_event(100.0, happy=1.0))
    assert out.fused.modalities == {"face": 0.0, "audio": 0.0}
    assert to_vector(out.fused.prediction.probabilities) == pytest.approx(vec(happy=0.6, fear=0.4))
    (out,) = s(emotion_event(105.0, happy=1.0))  # half faded: weight 0.2
    assert out.fused.modalities == {"face": 0.0, "audio": 5.0}
    assert to_vector(out.fused.prediction.probabilities) == pytest.approx(vec(happy=0.75, fear=0.25))
    (out,) = s(emotion_event(110.0, happy=1.0))  # expired
    assert out.fused.modalities == {"face": 0.0}
    assert to_vector(out.fused.prediction.probabilities) == pytest.approx(vec(happy=1.0))


def test_unvalidated_voice_model_is_not_fused_by_default_but_its_arousal_is():
    s = stage(audio_validity_s=10.0)
    s(audio_event(100.0, arousal=3.0, validated=False, fear=1.0))
    (out,) = s(emotion_event(100.0, neutral=1.0))
    assert to_vector(out.fused.prediction.probabilities) == pytest.approx(vec(neutral=1.0))
    assert out.fused.valence == 0.0 and out.fused.modalities == {"face": 0.0, "audio": 0.0}
    # arousal: (0.6 * face 0 + 0.4 * tanh(3 / 2)) / (0.6 + 0.4), then fading with age like the categories
    assert out.fused.arousal == pytest.approx(0.4 * np.tanh(1.5))
    (out,) = s(emotion_event(105.0, neutral=1.0))
    assert out.fused.arousal == pytest.approx(0.2 * np.tanh(1.5) / 0.8)
    (out,) = s(emotion_event(110.0, neutral=1.0))
    assert out.fused.arousal == 0.0 and out.fused.modalities == {"face": 0.0}


def test_unvalidated_weight_can_be_raised_and_arousal_weight_zeroed():
    s = stage(unvalidated_audio_weight=0.4, vocal_arousal_weight=0.0)
    s(audio_event(0.0, arousal=3.0, validated=False, fear=1.0))
    (out,) = s(emotion_event(0.0, happy=1.0))
    assert to_vector(out.fused.prediction.probabilities) == pytest.approx(vec(happy=0.6, fear=0.4))
    assert out.fused.arousal == pytest.approx(project(vec(happy=0.6, fear=0.4))[1])


def test_stage_ignores_unusable_audio_and_uses_audio_alone_without_a_face():
    s = stage()
    s(AudioEvent("gpio", "no_speech", 2.0, timestamp=100.0))
    s(AudioEvent("gpio", "busy", timestamp=100.0))
    (out,) = s(emotion_event(101.0, sad=1.0))
    assert out.fused.modalities == {"face": 0.0}
    s(audio_event(101.0, happy=1.0))
    no_face = EmotionEvent(frame=5, faces=(), scene=SceneEmotion(0, None), timestamp=102.0)
    (out,) = s(no_face)
    assert out.fused.modalities == {"audio": 1.0} and out.fused.prediction.label == "happy"


def test_stage_smoothing_and_uncertain_threshold():
    s = stage(history=2, uncertain_below=0.6)
    s(emotion_event(1.0, happy=1.0))
    (out,) = s(emotion_event(2.0, sad=1.0))
    assert to_vector(out.fused.prediction.probabilities) == pytest.approx(vec(happy=0.5, sad=0.5))
    assert out.fused.prediction.label == "uncertain"
    e = FusionStage(FusionConfig(smoothing="ema", ema_alpha=0.25))
    e(emotion_event(1.0, happy=1.0))
    (out,) = e(emotion_event(2.0, sad=1.0))
    assert to_vector(out.fused.prediction.probabilities) == pytest.approx(vec(happy=0.75, sad=0.25))


def test_feature_vector_keeps_both_modalities_and_cues():
    s = stage()
    s(audio_event(10.0, arousal=1.5, happy=0.8, neutral=0.2))
    (out,) = s(emotion_event(10.0, angry=0.5, happy=0.5))
    f = dict(zip(FEATURE_NAMES, out.fused.features))
    assert f["face_angry"] == 0.5 and f["audio_happy"] == 0.8 and f["audio_angry"] == 0.0
    assert f["coverage_angry"] == 0.0 and f["coverage_fear"] == 1.0
    assert f["pitch_hz"] == 120.0 and f["speech_rate"] == 4.0 and f["vocal_arousal"] == 1.5
    assert f["audio_share"] == pytest.approx(0.4)
    assert json.loads(out.to_json())["fused"]["features"][0] == 0.5


def test_circumplex_projection():
    assert project(vec(neutral=1.0)) == (0.0, 0.0)
    assert project(vec(happy=1.0)) == COORDINATES["happy"]
    v, a = project(vec(happy=0.5, sad=0.5))
    assert v == pytest.approx((0.8 - 0.7) / 2) and a == pytest.approx((0.5 - 0.5) / 2)
    # the vocal arousal index pulls arousal toward tanh(index / 2) by the audio share
    _, a = project(vec(neutral=1.0), vocal_arousal=2.0, vocal_share=0.4)
    assert a == pytest.approx(0.4 * np.tanh(1.0))
    _, a_low = project(vec(neutral=1.0), vocal_arousal=-2.0, vocal_share=0.4)
    assert a_low == pytest.approx(-0.4 * np.tanh(1.0))


def test_valence_arousal_in_the_event_use_the_vocal_index():
    calm, excited = stage(), stage()
    calm(audio_event(0.0, arousal=-3.0, neutral=1.0))
    excited(audio_event(0.0, arousal=3.0, neutral=1.0))
    (a,) = calm(emotion_event(0.0, neutral=1.0))
    (b,) = excited(emotion_event(0.0, neutral=1.0))
    assert a.fused.valence == b.fused.valence == 0.0
    assert b.fused.arousal > 0 > a.fused.arousal


def test_fusion_model_loading_path_checks_its_manifest(tmp_path):
    # no fusion model is trained or shipped; the loader refuses what is not one
    with pytest.raises(ModelError, match="manifest not found"):
        FusionModel.from_manifest(tmp_path / "fusion.json", len(FEATURE_NAMES))
    manifest = json.loads((MODELS / "expression.json").read_text())
    manifest["file"] = str(MODELS / manifest["file"])
    (tmp_path / "wrong.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="expected 'fusion_va'"):
        FusionModel.from_manifest(tmp_path / "wrong.json", len(FEATURE_NAMES))
    manifest["task"] = "fusion_va"
    (tmp_path / "shape.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="the fusion feature vector has 28"):
        FusionModel.from_manifest(tmp_path / "shape.json", len(FEATURE_NAMES))


def test_demo_publishes_the_voice_but_fuses_only_what_it_can_tell():
    proc = subprocess.run([sys.executable, "-m", "emotiond", "-c", str(ROOT / "config.toml"), "demo"],
                          capture_output=True, text=True, timeout=600, env={**__import__("os").environ,
                                                                            "EMOTIOND_MQTT__ENABLED": "false"})
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    audio = [e for e in events if e["type"] == "audio"]
    assert len(audio) == 1 and audio[0]["trigger"] == "demo" and audio[0]["status"] == "ok"
    # the bundled voice model is unvalidated (published, not fused) and the demo's arousal baseline is
    # empty (one clip), so the voice takes no part: every fused result is the face's
    assert audio[0]["validated"] is False and audio[0]["arousal"] is None and audio[0]["prediction"]["label"]
    fused = [e["fused"] for e in events if e["type"] == "emotion" and e["fused"]]
    assert fused and all(set(f["modalities"]) == {"face"} for f in fused), fused
    assert abs(sum(fused[-1]["probabilities"].values()) - 1.0) < 1e-3
