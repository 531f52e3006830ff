#!/usr/bin/env python3
"""Train the seed's "CNN on MFCC (+delta)" speech-emotion model on labelled WAVs and export a
full-integer int8 TFLite model with its manifest, ready to drop into models/.

Corpus layouts understood (detected per file):
- RAVDESS: ``03-01-05-01-02-01-12.wav`` (modality-channel-EMOTION-intensity-statement-repetition-ACTOR);
  emotions 01 neutral, 02 calm (-> neutral), 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised.
- CREMA-D: ``1001_DFA_ANG_XX.wav`` (ACTOR_sentence_EMOTION_level); ANG, DIS, FEA, HAP, NEU, SAD.
- ``LABEL/*.wav``: the folder name is the label; the speaker is the file name up to its first
  ``_`` (the whole name when there is none, i.e. every file its own speaker).

Speaker-independent split: whole speakers go to the test set (``--test-fraction`` of them, at least
one), so the printed accuracy is on voices the model never heard. It says nothing beyond that corpus.

TensorFlow runs only inside a virtual environment (``--venv DIR`` to reuse one that has
tensorflow-cpu; otherwise a throwaway one is created with ``tensorflow-cpu==2.15.1``): this script
computes the features with emotiond's own ``mfcc_delta`` (python_speech_features, as the daemon
will), then re-runs itself with the venv's python for the training/conversion stage, then checks the
exported int8 model with emotiond's loader and prints the confusion matrix.

Usage: python scripts/train_audio_model.py CORPUS_DIR --out OUT_DIR [--venv /tmp/tfvenv] [--epochs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TF_REQUIREMENT = "tensorflow-cpu==2.15.1"
COMMON = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # emotiond.fusion.labels.EMOTIONS

RAVDESS = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                    "07": "disgust", "08": "surprised"}
CREMAD = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{2}|X{1,2}|\w+)$")
CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
# corpus label -> common 7-class label (labels already in COMMON map to themselves)
TO_COMMON = {"calm": "neutral", "fearful": "fear", "surprised": "surprise"}

FEATURE_PARAMS = {"sample_rate": 16000, "numcep": 13, "nfilt": 26, "nfft": 512, "winlen": 0.025, "winstep": 0.01,
                  "delta_n": 2}


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    speaker: str


def parse_name(path: Path, root: Path) -> Clip | None:
    """The clip's label and speaker from its name (RAVDESS, CREMA-D) or its folder; None if neither."""
    stem = path.stem
    m = RAVDESS.match(stem)
    if m and m.group(3) in RAVDESS_EMOTIONS:
        return Clip(path, RAVDESS_EMOTIONS[m.group(3)], f"ravdess-{m.group(7)}")
    m = CREMAD.match(stem)
    if m:
        return Clip(path, CREMAD_EMOTIONS[m.group(3)], f"cremad-{m.group(1)}")
    rel = path.relative_to(root)
    if len(rel.parts) >= 2:
        label = rel.parts[-2].lower()
        return Clip(path, label, stem.split("_", 1)[0] if "_" in stem else stem)
    return None


def scan_corpus(root: Path) -> list[Clip]:
    clips = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() == ".wav":
            clip = parse_name(path, root)
            if clip is not None:
                clips.append(clip)
    return clips


def split_speakers(clips: list[Clip], test_fraction: float = 0.2, seed: int = 0) -> tuple[list[Clip], list[Clip]]:
    """Whole speakers to the test set; raises ValueError when fewer than two speakers exist."""
    speakers = sorted({c.speaker for c in clips})
    if len(speakers) < 2:
        raise ValueError(f"a speaker-independent split needs at least 2 speakers, found {len(speakers)}")
    rng = random.Random(seed)
    rng.shuffle(speakers)
    n_test = min(len(speakers) - 1, max(1, round(len(speakers) * test_fraction)))
    test_speakers = set(speakers[:n_test])
    return [c for c in clips if c.speaker not in test_speakers], [c for c in clips if c.speaker in test_speakers]


def ordered_labels(clips: list[Clip]) -> list[str]:
    found = {c.label for c in clips}
    common_order = {label: COMMON.index(TO_COMMON.get(label, label)) for label in found if TO_COMMON.get(label, label) in COMMON}
    return sorted(common_order, key=lambda label: (common_order[label], label)) + sorted(found - set(common_order))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        cm[int(t), int(p)] += 1
    return cm


def format_confusion(cm: np.ndarray, labels: list[str]) -> str:
    width = max(8, *(len(label) for label in labels)) + 1
    first = max(width, len("true \\ predicted") + 1)
    lines = ["true \\ predicted".ljust(first) + "".join(label.rjust(width) for label in labels)]
    for label, row in zip(labels, cm):
        lines.append(label.ljust(first) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


# --- stage 2: inside the TensorFlow venv -----------------------------------------------------------------

def tf_stage(work: Path, epochs: int, seed: int) -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    data = np.load(work / "features.npz")
    x_train, y_train, x_test = data["x_train"], data["y_train"], data["x_test"]
    mean, std = data["mean"], data["std"]
    raw_train, raw_test = x_train * std + mean, x_test * std + mean  # x_* arrive standardised
    n_classes = int(data["n_classes"])
    frames, dims = x_train.shape[1:]
    model = tf.keras.Sequential([
        tf.keras.layers.Input((frames, dims)),
        tf.keras.layers.Conv1D(32, 5, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling1D(2),
        tf.keras.layers.Conv1D(64, 5, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling1D(2),
        tf.keras.layers.Conv1D(64, 3, padding="same", activation="relu"),
        tf.keras.layers.GlobalAveragePooling1D(),
        tf.keras.layers.Dropout(0.3),
        tf.keras.layers.Dense(n_classes, activation="softmax"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, shuffle=True, verbose=2)
    float_test = model.predict(x_test, verbose=0)

    # The same full-int8 conversion as the shipped models (this stage runs from scripts/, so the
    # build script, which imports only the standard library at module level, is importable).
    from build_models import quantize_keras

    calibration = x_train[np.random.default_rng(seed).permutation(len(x_train))[:200]]
    quantize_keras(model, calibration, work / "model.tflite")
    np.save(work / "float_test.npy", float_test)
    # "before": the same float function taking raw features (standardisation inside the graph), so the
    # int8 input has one scale over the raw feature ranges, as an unstandardised model would
    raw_in = tf.keras.Input((frames, dims))
    raw_model = tf.keras.Model(raw_in, model((raw_in - mean.astype("float32")) / std.astype("float32")))
    quantize_keras(raw_model, raw_train[np.random.default_rng(seed).permutation(len(raw_train))[:200]],
                   work / "model_raw.tflite")
    np.save(work / "raw_test.npy", raw_test.astype(np.float32))


# --- stage 1: here ---------------------------------------------------------------------------------------

def venv_python(venv: str | None, keep: Path) -> Path:
    """The python of a venv with TensorFlow: the given one, else a new one made in ``keep``."""
    if venv:
        py = Path(venv) / "bin" / "python"
        if not py.is_file():
            sys.exit(f"--venv {venv}: no bin/python there")
    else:
        target = keep / "tfvenv"
        print(f"creating a throwaway venv with {TF_REQUIREMENT} in {target} (this downloads ~200 MB)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
        py = target / "bin" / "python"
        subprocess.run([str(py), "-m", "pip", "install", "-q", TF_REQUIREMENT], check=True)
    probe = subprocess.run([str(py), "-c", "import tensorflow"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"{py}: tensorflow does not import ({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else '?'})")
    return py


def int8_top1(path: Path, xs: np.ndarray) -> np.ndarray:
    """Top-1 classes of an int8 TFLite file on float inputs, through emotiond's loader."""
    sys.path.insert(0, str(ROOT))
    from emotiond.models import Manifest, TFLiteModel

    manifest = Manifest(path=path.with_suffix(".json"), name=path.stem, task="audio_emotion", file=path.name)
    model = TFLiteModel(manifest)
    return np.array([int(model.run(x[None])[0].reshape(-1).argmax()) for x in xs])


def validation_block(corpus: Path, train: list[Clip], test: list[Clip], labels: list[str], cm: np.ndarray,
                     accuracy: float) -> dict:
    """The manifest's ``validation``: what the int8 model scored on speakers it never heard."""
    return {
        "status": "validated",
        "data": {"name": corpus.name, "path": str(corpus), "clips": len(test),
                 "speakers": len({c.speaker for c in test}), "train_clips": len(train),
                 "train_speakers": len({c.speaker for c in train})},
        "split": "speaker-independent (whole speakers held out, see --test-fraction/--seed)",
        "accuracy": round(float(accuracy), 4),
        "confusion_matrix": {"labels": labels, "rows": "true", "columns": "predicted", "counts": cm.tolist()},
        "measured_by": "scripts/train_audio_model.py (int8 TFLite through emotiond's loader)",
        "note": "valid for that corpus's speakers, language and recording conditions only",
    }


def featurise(clips: list[Clip], labels: list[str], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    sys.path.insert(0, str(ROOT))
    from emotiond.perception.audio_features import mfcc_delta
    from emotiond.sources.microphone import read_wav

    xs, ys = [], []
    for clip in clips:
        samples, rate = read_wav(clip.path)
        xs.append(mfcc_delta(samples, rate, {**FEATURE_PARAMS, "n_frames": n_frames}))
        ys.append(labels.index(clip.label))
    return np.stack(xs).astype(np.float32), np.array(ys, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", help="folder of labelled WAV files")
    ap.add_argument("--out", default="trained", help="output folder for the .tflite, .json and reference .npz")
    ap.add_argument("--name", default="audio_emotion", help="model name (file names)")
    ap.add_argument("--venv", help="existing venv with tensorflow (default: create a throwaway one)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--duration", type=float, default=2.0, help="seconds of each clip used (padded/cut)")
    ap.add_argument("--test-fraction", type=float, default=0.2, help="fraction of speakers held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", choices=["main", "tf"], default="main", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stage == "tf":
        tf_stage(Path(args.work), args.epochs, args.seed)
        return 0
    if not args.corpus:
        ap.error("CORPUS folder is required")
    corpus = Path(args.corpus)
    clips = scan_corpus(corpus)
    if not clips:
        sys.exit(f"{corpus}: no labelled WAV files (RAVDESS or CREMA-D names, or LABEL/*.wav)")
    labels = ordered_labels(clips)
    if len(labels) < 2:
        sys.exit(f"{corpus}: need at least 2 labels, found {labels}")
    try:
        train, test = split_speakers(clips, args.test_fraction, args.seed)
    except ValueError as exc:
        sys.exit(f"{corpus}: {exc}")
    print(f"{len(clips)} clips, {len(labels)} labels {labels}; train {len(train)} clips "
          f"({len({c.speaker for c in train})} speakers), test {len(test)} clips ({len({c.speaker for c in test})} speakers: "
          f"{', '.join(sorted({c.speaker for c in test}))})")
    n_frames = int(round(args.duration / FEATURE_PARAMS["winstep"])) - 2
    x_train, y_train = featurise(train, labels, n_frames)
    x_test, y_test = featurise(test, labels, n_frames)
    # per-feature standardisation (statistics of the training speakers), applied before int8 quantisation
    mean = x_train.reshape(-1, x_train.shape[2]).mean(axis=0)
    std = np.maximum(x_train.reshape(-1, x_train.shape[2]).std(axis=0), 1e-6)
    x_train, x_test = ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="train-audio-") as tmp:
        work = Path(tmp)
        np.savez(work / "features.npz", x_train=x_train, y_train=y_train, x_test=x_test, n_classes=len(labels),
                 mean=mean, std=std)
        py = venv_python(args.venv, work)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        subprocess.run([str(py), str(Path(__file__).resolve()), "--stage", "tf", "--work", str(work),
                        "--epochs", str(args.epochs), "--seed", str(args.seed)], check=True, env=env)
        tflite_bytes = (work / "model.tflite").read_bytes()
        float_test = np.load(work / "float_test.npy")
        before = int8_top1(work / "model_raw.tflite", np.load(work / "raw_test.npy"))
    tflite_path = out / f"{args.name}.tflite"
    tflite_path.write_bytes(tflite_bytes)
    manifest_path = out / f"{args.name}.json"
    reference = f"{args.name}_reference.npz"
    manifest = {
        "name": args.name,
        "task": "audio_emotion",
        "file": tflite_path.name,
        "labels": labels,
        "label_map": {label: TO_COMMON.get(label, label) for label in labels if TO_COMMON.get(label, label) in COMMON},
        "input": {"shape": [1, n_frames, x_train.shape[2]], "dtype": "int8",
                  "range": [round(float(x_train.min()), 4), round(float(x_train.max()), 4)]},
        "output": {"shape": [1, len(labels)], "dtype": "int8", "activation": "softmax"},
        "preprocessing": {"standardize": {"mean": [round(float(v), 6) for v in mean],
                                          "std": [round(float(v), 6) for v in std],
                                          "fitted_on": f"{len(train)} training clips (all frames)"}},
        "features": "mfcc_delta",
        "feature_params": {**FEATURE_PARAMS, "n_frames": n_frames},
        "reference": reference,
        "provenance": {"script": "scripts/train_audio_model.py", "corpus": str(corpus), "epochs": args.epochs,
                       "seed": args.seed, "train_clips": len(train), "test_clips": len(test),
                       "test_speakers": sorted({c.speaker for c in test})},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    sys.path.insert(0, str(ROOT))
    from emotiond.models import TFLiteModel

    model = TFLiteModel.from_manifest(manifest_path)
    int8_test = np.stack([model.run(x[None])[0].reshape(-1) for x in x_test])
    np.savez(out / reference, inputs_float=x_test[:32], float_probs=float_test[:32], int8_probs=int8_test[:32])
    in_q, out_q = model._inputs[0]["quantization"], model._outputs[0]["quantization"]
    manifest["input"]["quantization"] = {"scale": float(in_q[0]), "zero_point": int(in_q[1])}
    manifest["output"]["quantization"] = {"scale": float(out_q[0]), "zero_point": int(out_q[1])}
    float_acc = float(np.mean(float_test.argmax(1) == y_test))
    int8_acc = float(np.mean(int8_test.argmax(1) == y_test))
    agreement = float(np.mean(float_test.argmax(1) == int8_test.argmax(1)))
    agreement_raw = float(np.mean(float_test.argmax(1) == before))
    manifest["measured"] = {
        "test_accuracy_float": round(float_acc, 4), "test_accuracy_int8": round(int8_acc, 4),
        "float_int8_top1_agreement": round(agreement, 4),
        "float_int8_top1_agreement_raw_input": round(agreement_raw, 4),
        "note": "on the held-out speakers of the training corpus only; _raw_input: the same model quantised "
                "with one int8 scale over the unstandardised features",
    }
    cm = confusion_matrix(y_test, int8_test.argmax(1), len(labels))
    manifest["validation"] = validation_block(corpus, train, test, labels, cm, int8_acc)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print("confusion matrix (int8 TFLite, held-out speakers):")
    print(format_confusion(cm, labels))
    print(f"accuracy on {len(test)} held-out clips: float {float_acc:.3f}, int8 {int8_acc:.3f}")
    print(f"float vs int8 top-1 agreement: standardised input {agreement:.3f}, raw input {agreement_raw:.3f}")
    print(f"wrote {tflite_path} ({tflite_path.stat().st_size} bytes), {manifest_path}, {out / reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
