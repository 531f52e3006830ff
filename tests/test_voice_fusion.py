"""The issue-18 acceptance checks, end to end with the real voice model and real speech: an
unvalidated voice model cannot move a neutral face's distribution, label or valence, while the
voice's arousal (prosody against the device baseline) does move the fused arousal. Plus the
manifests' validation blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from emotiond.config import FusionConfig, load_config
from emotiond.events import EmotionEvent, Prediction, SceneEmotion
from emotiond.fusion.labels import to_vector
from emotiond.fusion.stage import FusionStage
from emotiond.models import Manifest, ModelError
from emotiond.perception.audio_pipeline import AudioAnalyzer
from emotiond.perception.prosody import ArousalBaseline
from emotiond.sources.microphone import read_wav

from conftest import MODELS, ROOT
from espeak import SENTENCES, speak

NEUTRAL_FACE = {"angry": 0.02, "disgust": 0.01, "fear": 0.01, "happy": 0.05, "sad": 0.05, "surprise": 0.01,
                "neutral": 0.85}


def face_event(ts: float) -> EmotionEvent:
    pred = Prediction(NEUTRAL_FACE, "neutral", 0.85)
    return EmotionEvent(frame=int(ts), faces=(), scene=SceneEmotion(1, pred), timestamp=ts)


@pytest.fixture(scope="module")
def analyzer():
    config = load_config(ROOT / "config.toml", environ={})
    a = AudioAnalyzer.from_config(config, baseline=False)
    a.baseline = ArousalBaseline(min_count=3)
    return a


@pytest.fixture(scope="module")
def warmed(analyzer, tmp_path_factory):
    """The analyser after three ordinary clips, so the arousal index has a baseline."""
    tmp = tmp_path_factory.mktemp("voice")
    for i, text in enumerate(SENTENCES[:3]):
        y, sr = read_wav(speak(text, tmp / f"b{i}.wav"))
        assert analyzer.analyse(y, sr, "cli").status == "ok"
    return analyzer, tmp


def fused_after(audio_event, ts: float = 1000.0):
    stage = FusionStage(FusionConfig(smoothing="mean", history=1))
    face_only = stage.fuse(face_event(ts))
    stage(audio_event)
    (out,) = stage(face_event(ts))
    return face_only, out.fused


def test_bundled_model_says_it_is_unvalidated():
    manifest = Manifest.load(MODELS / "audio_emotion.json")
    assert manifest.raw["validation"]["status"] == "unvalidated" and not manifest.validated
    for name in ("expression", "face_detector", "face_detector_full"):
        assert Manifest.load(MODELS / f"{name}.json").raw["validation"]["status"] == "unvalidated"


def test_neutral_face_plus_the_bundled_speech_keeps_the_face(warmed):
    analyzer, _ = warmed
    y, sr = read_wav(ROOT / "samples" / "speech.wav")
    audio = analyzer.analyse(y, sr, "cli", timestamp=1000.0)
    assert audio.status == "ok" and audio.validated is False and audio.prediction is not None
    assert audio.to_dict()["validated"] is False and "arousal" in audio.to_dict()
    face_only, fused = fused_after(audio)
    assert face_only is not None and fused is not None and set(fused.modalities) == {"face", "audio"}
    a, b = to_vector(face_only.prediction.probabilities), to_vector(fused.prediction.probabilities)
    print(f"voice said {audio.prediction.label}; max per-class change {np.abs(a - b).max():.4f}; "
          f"valence {face_only.valence:.3f} -> {fused.valence:.3f}, arousal {face_only.arousal:.3f} -> {fused.arousal:.3f}")
    assert np.abs(a - b).max() <= 0.05
    assert fused.prediction.label == face_only.prediction.label == "neutral"
    assert fused.valence == face_only.valence


def test_louder_faster_higher_speech_raises_the_fused_arousal(warmed):
    analyzer, tmp = warmed
    results = {}
    for name, style in {"calm": {}, "excited": {"amplitude": 200, "speed": 260, "pitch": 90}}.items():
        y, sr = read_wav(speak(SENTENCES[3], tmp / f"{name}.wav", **style))
        audio = analyzer.analyse(y, sr, "cli", timestamp=1000.0)
        assert audio.arousal is not None
        results[name] = (audio, fused_after(audio))
    (calm, (face_calm, f_calm)), (excited, (_, f_exc)) = results["calm"], results["excited"]
    print(f"arousal index calm {calm.arousal:.2f}, excited {excited.arousal:.2f}; fused arousal "
          f"face-only {face_calm.arousal:.3f}, calm {f_calm.arousal:.3f}, excited {f_exc.arousal:.3f}")
    assert excited.arousal > calm.arousal + 1.0
    assert f_exc.arousal > f_calm.arousal + 0.2 and f_exc.arousal > face_calm.arousal + 0.2
    assert f_exc.valence == f_calm.valence == face_calm.valence  # valence stays the face's


def test_validation_block_is_checked(tmp_path):
    base = {"name": "m", "task": "audio_emotion", "file": "m.tflite"}
    cases = {
        "bad_status": ({"status": "maybe"}, "status 'validated' or 'unvalidated'"),
        "missing": ({"status": "validated", "accuracy": 0.5}, "needs data, split, confusion_matrix, measured_by"),
        "accuracy": ({"status": "validated", "data": {}, "split": "s", "accuracy": 7, "confusion_matrix": {},
                      "measured_by": "me"}, "accuracy must be a number in"),
    }
    for name, (block, message) in cases.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({**base, "validation": block}))
        with pytest.raises(ModelError, match=message):
            Manifest.load(tmp_path / f"{name}.json")
    good = {"status": "validated", "data": {"name": "c", "clips": 10, "speakers": 2}, "split": "speaker-independent",
            "accuracy": 0.6, "confusion_matrix": {"labels": ["a", "b"], "counts": [[3, 2], [2, 3]]}, "measured_by": "me"}
    (tmp_path / "good.json").write_text(json.dumps({**base, "validation": good}))
    assert Manifest.load(tmp_path / "good.json").validated
    (tmp_path / "none.json").write_text(json.dumps(base))
    assert not Manifest.load(tmp_path / "none.json").validated
