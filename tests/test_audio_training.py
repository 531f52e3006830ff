"""scripts/train_audio_model.py: corpus layouts and the speaker-independent split (fast), and the
whole train -> int8 export -> load -> classify path on an espeak-ng corpus (slow: TensorFlow).

The slow test runs only when EMOTIOND_TF_VENV names a venv whose python imports tensorflow
(e.g. one made with `python -m venv V && V/bin/pip install tensorflow-cpu==2.15.1`). It claims no
accuracy: the corpus is synthetic speech, the point is that the pipeline works end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from espeak import make_corpus

sys.path.insert(0, str(ROOT / "scripts"))
import train_audio_model as tam  # noqa: E402


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_ravdess_cremad_and_folder_layouts(tmp_path):
    touch(tmp_path / "Actor_12" / "03-01-05-01-02-01-12.wav")
    touch(tmp_path / "Actor_01" / "03-01-02-02-01-02-01.wav")
    touch(tmp_path / "crema" / "1001_DFA_ANG_XX.wav")
    touch(tmp_path / "crema" / "1091_IEO_HAP_HI.wav")
    touch(tmp_path / "sad" / "alice_03.wav")
    touch(tmp_path / "happy" / "bob.wav")
    touch(tmp_path / "loose.wav")  # no label anywhere: ignored
    touch(tmp_path / "sad" / "notes.txt")
    clips = {c.path.name: (c.label, c.speaker) for c in tam.scan_corpus(tmp_path)}
    assert clips == {
        "03-01-05-01-02-01-12.wav": ("angry", "ravdess-12"),
        "03-01-02-02-01-02-01.wav": ("calm", "ravdess-01"),
        "1001_DFA_ANG_XX.wav": ("angry", "cremad-1001"),
        "1091_IEO_HAP_HI.wav": ("happy", "cremad-1091"),
        "alice_03.wav": ("sad", "alice"),
        "bob.wav": ("happy", "bob"),
    }


def test_label_order_follows_the_common_space():
    clips = [tam.Clip(Path(f"{label}.wav"), label, "s") for label in ("surprised", "calm", "fearful", "whisper", "angry")]
    assert tam.ordered_labels(clips) == ["angry", "fearful", "surprised", "calm", "whisper"]


def test_speaker_split_never_shares_a_speaker():
    clips = [tam.Clip(Path(f"{s}_{i}.wav"), "happy" if i % 2 else "sad", f"spk{s}") for s in range(10) for i in range(6)]
    train, test = tam.split_speakers(clips, 0.2, seed=1)
    assert {c.speaker for c in train}.isdisjoint({c.speaker for c in test})
    assert len({c.speaker for c in test}) == 2 and len(train) + len(test) == len(clips)
    assert tam.split_speakers(clips, 0.2, seed=1) == (train, test)  # reproducible
    _, two = tam.split_speakers(clips[:12], 0.9)
    assert len({c.speaker for c in two}) == 1  # at least one speaker stays for training
    with pytest.raises(ValueError, match="at least 2 speakers"):
        tam.split_speakers([c for c in clips if c.speaker == "spk0"])


def test_confusion_matrix():
    cm = tam.confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    text = tam.format_confusion(cm, ["angry", "happy", "sad"])
    assert text.splitlines()[1].split() == ["angry", "1", "1", "0"]


def tf_venv() -> str | None:
    venv = os.environ.get("EMOTIOND_TF_VENV")
    return venv if venv and (Path(venv) / "bin" / "python").is_file() else None


@pytest.mark.slow
@pytest.mark.skipif(tf_venv() is None, reason="set EMOTIOND_TF_VENV to a venv with tensorflow-cpu to run training")
def test_train_export_load_classify(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    out = tmp_path / "model"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_audio_model.py"), str(corpus), "--out", str(out),
                           "--venv", tf_venv(), "--epochs", "3"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "confusion matrix" in proc.stdout and "accuracy on" in proc.stdout
    manifest = json.loads((out / "audio_emotion.json").read_text())
    assert manifest["features"] == "mfcc_delta" and manifest["labels"] == ["angry", "happy", "sad"]
    assert manifest["input"]["dtype"] == "int8" and "quantization" in manifest["input"]
    # the held-out speaker-independent split becomes the validation block, so the daemon fuses this model
    v = manifest["validation"]
    assert v["status"] == "validated" and v["split"].startswith("speaker-independent")
    assert v["data"]["speakers"] >= 1 and v["data"]["clips"] == sum(map(sum, v["confusion_matrix"]["counts"]))
    assert v["confusion_matrix"]["labels"] == manifest["labels"] and 0 <= v["accuracy"] <= 1
    assert len(manifest["preprocessing"]["standardize"]["mean"]) == 26
    assert "float vs int8 top-1 agreement: standardised input" in proc.stdout

    from emotiond.perception.audio_emotion import AudioEmotionClassifier
    from emotiond.sources.microphone import read_wav

    clf = AudioEmotionClassifier.from_manifest(out / "audio_emotion.json")
    assert clf.model.input_dtype == np.int8 and clf.model.manifest.validated
    y, sr = read_wav(next((corpus / "sad").glob("*.wav")))
    probs = clf.classify(y, sr)
    assert probs.shape == (3,) and abs(probs.sum() - 1) < 1e-6
    common, coverage = clf.to_common(probs)
    assert [bool(c) for c in coverage] == [True, False, False, True, True, False, False]
    # the reference npz it wrote reproduces through emotiond's loader
    ref = np.load(out / "audio_emotion_reference.npz")
    got = np.stack([clf.model.run(x[None])[0].reshape(-1) for x in ref["inputs_float"]])
    assert np.abs(got - ref["int8_probs"]).max() <= 1 / 256 + 1e-6
