#!/usr/bin/env python3
"""Robustness benchmark: does the face path say the same thing when the room is darker, blurrier, rolled?

No labelled face data can be had here, so this measures AGREEMENT with the clean image, never
accuracy: each public-domain portrait is placed in a 640x480 frame (several sizes and positions,
the "clean" frames), the daemon's FacePipeline (default config) labels it, then each living-room
perturbation of the same frame is labelled by a fresh pipeline and compared.

The portraits: scikit-image's `astronaut` (NASA, public domain; samples/astronaut.jpg) at several
sizes, positions and backgrounds, and scikit-image's `camera` (the cameraman, CC0; a face in near
profile that the model reads with low confidence, so a harder case) at several zooms. Two people,
each with one expression: the figures say how stable the pipeline is, not how well it reads emotions.

Per perturbation it reports: face found (a detection overlapping the clean face), label agreement
(the perturbed face's label equals the clean label), agreement counting only faces quality did not
flag, how often quality flagged the face (label ``uncertain`` with a reason; a legitimate outcome,
counted apart rather than as agreement) and the mean shift of the clean label's probability.

With labelled images of your own (``--images DIR``, one folder per label: ``DIR/happy/*.jpg``,
``DIR/neutral/*.png``, ...) the same perturbations are also scored against the labels: correct,
refused (``uncertain``), wrong (another emotion) and missed (no face found), clean image included.
This is the only way this script gives an accuracy; the bundled faces have no labels.

    PYTHONPATH=. python benchmarks/robustness.py [--images DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from emotiond.config import Config, load_config
from emotiond.events import UNCERTAIN, EmotionEvent
from emotiond.perception.face_detect import Detection, iou
from emotiond.perception.pipeline import FacePipeline

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 640, 480


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]
    label: str
    probabilities: dict[str, float]
    quality_reason: str | None  # None when quality did not flag the face (or the code has no quality)


def clean_frames(astronaut: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The astronaut's head and shoulders at 4 sizes x 3 positions, on 2 backgrounds (24 frames)."""
    portrait = astronaut[0:300, 90:390]
    frames = []
    for bg in ((100, 100, 100), (60, 90, 130)):
        for width in (180, 220, 260, 300):
            tile = cv2.resize(portrait, (width, width), interpolation=cv2.INTER_AREA)
            for fx in (0.15, 0.5, 0.85):
                frame = np.full((HEIGHT, WIDTH, 3), bg, np.uint8)
                x = int((WIDTH - width) * fx)
                y = (HEIGHT - width) // 2
                frame[y : y + width, x : x + width] = tile
                frames.append(("astronaut", frame))
    return frames + [("cameraman", f) for f in cameraman_frames()] + [("lfw", f) for f in lfw_frames()]


def lfw_frames() -> list[np.ndarray]:
    """The 100 faces of scikit-image's bundled ``lfw_subset`` (Labeled Faces in the Wild, 25x25 grey,
    tightly cropped): 100 people and expressions instead of two, so one face is 1 point, not 3.
    Each is enlarged to 140 px (soft, like a face a few metres away), given its own edge pixels as
    context and centred in the frame. None when scikit-image is not installed."""
    try:
        from skimage import data
    except ImportError:
        return []
    frames = []
    for face in data.lfw_subset()[:100]:  # the first 100 are faces, the rest are not
        tile = cv2.resize((face * 255).astype(np.uint8), (140, 140), interpolation=cv2.INTER_CUBIC)
        tile = cv2.copyMakeBorder(tile, 40, 40, 40, 40, cv2.BORDER_REPLICATE)
        frame = np.full((HEIGHT, WIDTH), 100, np.uint8)
        y, x = (HEIGHT - tile.shape[0]) // 2, (WIDTH - tile.shape[1]) // 2
        frame[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        frames.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    return frames


_ENLARGE_BELOW, _ENLARGE_TO = 160, 200  # px, the larger side of an image
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def folder_frames(root: Path, labels: tuple[str, ...]) -> list[tuple[str, np.ndarray, str | None]]:
    """Your own face images under ``root`` (searched recursively), each as a 640x480 frame: shrunk to
    fit if larger (enlarged to 200 px with a replicated border if under 160 px, so the detector
    finds the face of a tightly cropped set), centred on grey. An image's true label is the name of
    its folder when that is one of the model's labels (``root/happy/x.jpg``), else it has none and
    counts for agreement only."""
    frames = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            print(f"skipped {path}: not an image OpenCV can read", file=sys.stderr)
            continue
        if max(image.shape[:2]) < _ENLARGE_BELOW:  # a tight crop (FER-style 48 px): enlarge, add context
            grow = _ENLARGE_TO / max(image.shape[:2])
            image = cv2.resize(image, None, fx=grow, fy=grow, interpolation=cv2.INTER_CUBIC)
            pad = _ENLARGE_TO // 5
            image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        scale = min(1.0, WIDTH / image.shape[1], HEIGHT / image.shape[0])
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
        h, w = image.shape[:2]
        y, x = (HEIGHT - h) // 2, (WIDTH - w) // 2
        frame[y : y + h, x : x + w] = image
        truth = path.parent.name.lower() if path.parent.name.lower() in labels else None
        frames.append((truth or "unlabelled", frame, truth))
    return frames


def cameraman_frames() -> list[np.ndarray]:
    """scikit-image's `camera` zoomed so the face is 120-210 px wide, at 3 horizontal offsets (12 frames);
    none when scikit-image (a dev dependency) is not installed."""
    try:
        from skimage import data
    except ImportError:
        return []
    cam = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    frames = []
    for scale in (1.5, 2.0, 2.5, 3.0):
        img = cv2.resize(cam, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for dx in (-60, 0, 60):
            x0, y0 = max(0, int(250 * scale) - 320 + dx), max(0, int(100 * scale) - 200)
            part = img[y0 : y0 + HEIGHT, x0 : x0 + WIDTH]
            frame = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
            frame[: part.shape[0], : part.shape[1]] = part
            frames.append(frame)
    return frames


def _darker(frame: np.ndarray, light: float, read_noise: float | None, rng: np.random.Generator) -> np.ndarray:
    """``light`` times the light; with ``read_noise``, sensor noise too (shot noise plus read noise of
    that many grey levels); without it, only the 8-bit rounding of a dimmer exposure."""
    dark = frame.astype(np.float32) * light
    if read_noise is not None:
        dark = dark + rng.normal(0.0, 1.0, dark.shape) * np.sqrt(dark * 0.5 + read_noise**2)
    return np.clip(dark, 0, 255).astype(np.uint8)


def _dim_noise(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An evening room under one lamp: a quarter of the light, then sensor noise (shot + read)."""
    return _darker(frame, 0.25, 3.0, rng)


def _blur(frame: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), 2.0)


def _roll(angle: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def rolled(frame: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        m = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), angle, 1.0)
        return cv2.warpAffine(frame, m, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REPLICATE)
    return rolled


def _small(frame: np.ndarray, _rng: np.random.Generator, clean_box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The whole frame shrunk so the face is ~100 px wide, pasted in the middle of a 640x480 frame."""
    face_w = clean_box[2] if clean_box else 150
    scale = min(1.0, 100.0 / face_w)
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = np.full_like(frame, frame[0, 0])
    y, x = (HEIGHT - small.shape[0]) // 2, (WIDTH - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def _mirror(frame: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(frame[:, ::-1])


def _combo(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _dim_noise(_blur(_roll(10.0)(frame, rng), rng), rng)


PERTURBATIONS: dict[str, Callable[..., np.ndarray]] = {
    "dim+noise": _dim_noise,
    "blur": _blur,
    "roll+15": _roll(15.0),
    "roll-15": _roll(-15.0),
    "small(100px)": _small,
    "mirror": _mirror,
    "combo(roll10+blur+dim+noise)": _combo,
}


def _graded(light: float, read_noise: float | None = None, blur: float = 0.0) -> Callable[..., np.ndarray]:
    def graded(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seen = _darker(frame, light, read_noise, rng) if light < 1.0 else frame
        return cv2.GaussianBlur(seen, (0, 0), blur) if blur else seen
    return graded


# --sweep: the same kinds at other strengths, to show where the face path stops reading and
# whether what the default table measures holds either side of the one strength it uses.
SWEEP: dict[str, Callable[..., np.ndarray]] = {
    "light 0.6": _graded(0.6),
    "light 0.4": _graded(0.4),
    "light 0.25": _graded(0.25),
    "light 0.15": _graded(0.15),
    "light 0.6 + 1 px blur": _graded(0.6, blur=1.0),
    "light 0.4 + 1 px blur": _graded(0.4, blur=1.0),
    "light 0.25 + 1 px blur": _graded(0.25, blur=1.0),
    "light 0.4 + noise": _graded(0.4, 3.0),
    "light 0.25 + noise": _graded(0.25, 3.0),
    "light 0.25 + strong noise": _graded(0.25, 10.0),
    "light 0.15 + noise": _graded(0.15, 3.0),
    "blur 1 px": _graded(1.0, blur=1.0),
    "blur 1.5 px": _graded(1.0, blur=1.5),
    "blur 3 px": _graded(1.0, blur=3.0),
}


def _expected_box(name: str, box: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """Where the clean face should be in the perturbed frame (None: any face counts)."""
    x, y, w, h = box
    if name == "mirror":
        return WIDTH - x - w, y, w, h
    if name.startswith("small"):
        s = min(1.0, 100.0 / w)
        ox, oy = (WIDTH - int(WIDTH * s + 0.5)) // 2, (HEIGHT - int(HEIGHT * s + 0.5)) // 2
        return int(ox + x * s), int(oy + y * s), int(w * s), int(h * s)
    if name.startswith("roll") or name.startswith("combo"):
        angle = 10.0 if name.startswith("combo") else float(name[4:])
        m = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), angle, 1.0)
        cx, cy = m @ np.array([x + w / 2, y + h / 2, 1.0])
        return int(cx - w / 2), int(cy - h / 2), w, h
    return box


def faces_of(pipeline: FacePipeline, frame: np.ndarray) -> list[Face]:
    out = []
    for event in pipeline.process(frame, 0.0):
        if isinstance(event, EmotionEvent):
            for f in event.to_dict()["faces"]:
                reason = f.get("quality_reason") if f.get("label") == "uncertain" else None
                out.append(Face(tuple(f["box"]), f["label"], f["probabilities"], reason))
    return out


class _KnownBox:
    """A detector that 'finds' one given box (and looks closer with the real one): with it, a
    perturbed face is read from exactly where the clean face moved to, so what is left of the
    disagreement is the reading, not the detector's box."""

    def __init__(self, real: Any, box: tuple[int, int, int, int]) -> None:
        self.real, self.box = real, box

    def detect(self, _frame: np.ndarray) -> list[Detection]:
        return [Detection(self.box, 1.0)]

    def zoomed(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> Detection | None:
        zoomed = getattr(self.real, "zoomed", None)
        return zoomed(frame, box) if zoomed is not None else None


def run(config: Config, only: str | list[str] | None = None, steps: tuple[str, ...] | None = None,
        images: Path | None = None, known_box: bool = False,
        perturbations: dict[str, Callable[..., np.ndarray]] | None = None) -> dict[str, Any]:
    """Agreement (and, for images under a label folder, accuracy) per perturbation (default
    ``PERTURBATIONS``); ``images`` replaces the bundled faces with your own; ``known_box`` reads each
    perturbed face from where the clean face's box moved to instead of detecting it (a diagnostic)."""
    def pipeline_for(box: tuple[int, int, int, int] | None = None) -> FacePipeline:  # fresh state per image
        pipeline = FacePipeline.from_config(config)
        if steps is not None:  # ablation: other preprocessing than the manifest's
            pipeline.classifier.steps = steps
            pipeline.classifier.align = "align_roll" in steps
        if box is not None:
            pipeline.detector = _KnownBox(pipeline.detector, box)
        return pipeline

    if images is not None:
        frames = folder_frames(images, FacePipeline.from_config(config).labels)
    else:
        astronaut = cv2.imread(str(ROOT / "samples" / "astronaut.jpg"), cv2.IMREAD_COLOR)
        if astronaut is None:
            raise SystemExit("samples/astronaut.jpg not found")
        frames = [(subject, frame, None) for subject, frame in clean_frames(astronaut)]
    results: dict[str, Any] = {}
    clean_faces = []
    for subject, frame, truth in frames:
        if only and subject not in ([only] if isinstance(only, str) else only):
            continue
        faces = faces_of(pipeline_for(), frame)
        clean_faces.append((frame, max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None, truth))
    usable = [(fr, f, t) for fr, f, t in clean_faces if f is not None]
    labels: dict[str, int] = {}
    for _fr, f, _t in usable:
        labels[f.label] = labels.get(f.label, 0) + 1
    results["clean"] = {"frames": len(clean_faces), "face_found": len(usable), "labels": labels,
                        **_truth_counts([(f, t) for _fr, f, t in clean_faces])}
    rng = np.random.default_rng(17)
    for name, perturb in (PERTURBATIONS if perturbations is None else perturbations).items():
        found = agree = flagged = agree_unflagged = unflagged = agree_confident = confident = other = same_top = 0
        shifts: list[float] = []
        drifts: list[float] = []
        reasons: dict[str, int] = {}
        judged: list[tuple[Face | None, str | None]] = []
        for frame, clean, truth in usable:
            assert clean is not None
            seen = perturb(frame, rng, clean.box) if name.startswith("small") else perturb(frame, rng)
            want = _expected_box(name, clean.box)
            faces = faces_of(pipeline_for(want if known_box else None), seen)
            match = max(faces, key=lambda f: iou(f.box, want) if want else 0.0, default=None)
            if match is None or (want is not None and iou(match.box, want) < 0.2):
                judged.append((None, truth))
                continue
            judged.append((match, truth))
            found += 1
            if match.quality_reason:
                flagged += 1
                reasons[match.quality_reason] = reasons.get(match.quality_reason, 0) + 1
            else:
                unflagged += 1
                agree_unflagged += match.label == clean.label
            agree += match.label == clean.label
            other += match.label not in (clean.label, UNCERTAIN)  # a different emotion: the costly outcome
            if clean.label != UNCERTAIN:  # the clean image gave an emotion, not "cannot tell"
                confident += 1
                agree_confident += match.label == clean.label
            shifts.append(match.probabilities.get(clean.label, 0.0) - clean.probabilities.get(clean.label, 0.0))
            drifts.append(0.5 * sum(abs(match.probabilities.get(k, 0.0) - v) for k, v in clean.probabilities.items()))
            same_top += _top(match) == _top(clean)
        n = len(usable)
        results[name] = {
            "images": n,
            "face_found": round(found / n, 4) if n else None,
            "agreement": round(agree / found, 4) if found else None,
            "agreement_unflagged": round(agree_unflagged / unflagged, 4) if unflagged else None,
            "agreement_confident": round(agree_confident / confident, 4) if confident else None,
            "quality_flagged": round(flagged / found, 4) if found else None,
            "other_emotion": round(other / found, 4) if found else None,
            "flag_reasons": reasons,
            "confidence_shift": round(float(np.mean(shifts)), 4) if shifts else None,
            "drift": round(float(np.mean(drifts)), 4) if drifts else None,
            "top_agreement": round(same_top / found, 4) if found else None,
            **_truth_counts(judged),
        }
    return results


def sideways_portrait(astronaut: np.ndarray, x: int, blur: float = 0.0) -> np.ndarray:
    """The astronaut's head and shoulders as a 220 px tile at ``x`` of a grey 640x480 frame: her face
    is ~90 px wide, a face across a living room, and 18 px of BlazeFace's 128 px input."""
    tile = cv2.resize(astronaut[0:300, 90:390], (220, 220), interpolation=cv2.INTER_AREA)
    frame = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    frame[130:350, x : x + 220] = tile
    return cv2.GaussianBlur(frame, (0, 0), blur) if blur else frame


def roll_spread(config: Config, astronaut: np.ndarray) -> dict[str, list[float]] | None:
    """The eye-line roll BlazeFace gives the same upright face (the astronaut, ~90 px wide) moved
    sideways in 30 px steps: from the whole frame and from the view zoomed on the face. It should
    not depend on where she stands; ``expression.zoom_align`` picks which one levels the crop."""
    detector = FacePipeline.from_config(config).detector
    zoomed = getattr(detector, "zoomed", None)
    if zoomed is None:
        return None  # Haar: no keypoints, no roll
    rolls: dict[str, list[float]] = {"whole frame": [], "zoomed": []}
    for x in range(0, 300, 30):
        frame = sideways_portrait(astronaut, x)
        found = detector.detect(frame)
        if not found or found[0].roll is None:
            continue
        rolls["whole frame"].append(round(found[0].roll, 1))
        closer = zoomed(frame, found[0].box)
        if closer is not None and closer.roll is not None:
            rolls["zoomed"].append(round(closer.roll, 1))
    return rolls


def _top(face: Face) -> str:
    """The most probable emotion, whatever the thresholds made of it."""
    return max(face.probabilities, key=lambda k: face.probabilities[k])


def _truth_counts(judged: list[tuple[Face | None, str | None]]) -> dict[str, Any]:
    """Accuracy against the folder labels, over labelled images (a face not found counts as missed):
    correct, refused (``uncertain``), wrong (another emotion). Empty without labelled images."""
    labelled = [(f, t) for f, t in judged if t is not None]
    if not labelled:
        return {}
    n = len(labelled)
    correct = sum(1 for f, t in labelled if f is not None and f.label == t)
    refused = sum(1 for f, _t in labelled if f is not None and f.label == UNCERTAIN)
    missed = sum(1 for f, _t in labelled if f is None)
    return {"labelled": n, "accuracy": round(correct / n, 4), "refused": round(refused / n, 4),
            "wrong": round((n - correct - refused - missed) / n, 4), "missed": round(missed / n, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config.toml")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--subject", action="append", choices=("astronaut", "cameraman", "lfw"),
                    help="only these subjects' frames (repeatable; default: all)")
    ap.add_argument("--steps", help="ablation: comma-separated preprocessing steps instead of the manifest's ('' for none)")
    ap.add_argument("--mirror", choices=("on", "off"), help="ablation: override expression.mirror_average")
    ap.add_argument("--zoom-align", choices=("on", "off"), help="ablation: override expression.zoom_align")
    ap.add_argument("--sure-confidence", type=float, help="ablation: override expression.sure_confidence (1.0: off)")
    ap.add_argument("--known-box", action="store_true",
                    help="diagnostic: read each perturbed face from where the clean face's box moved to, "
                    "not from a detection, to tell the detector's share of the disagreement from the reading's")
    ap.add_argument("--sweep", action="store_true",
                    help="dim light, sensor noise and blur at several strengths instead of the default perturbations")
    ap.add_argument("--images", type=Path, help="your own face images instead of the bundled ones; "
                    "those in a folder named after a label (DIR/happy/*.jpg) are also scored for accuracy")
    args = ap.parse_args(argv)
    config = load_config(args.config, environ={})
    overrides: dict[str, Any] = {}  # ablation
    if args.mirror is not None:
        overrides["mirror_average"] = args.mirror == "on"
    if args.zoom_align is not None:
        overrides["zoom_align"] = args.zoom_align == "on"
    if args.sure_confidence is not None:
        overrides["sure_confidence"] = args.sure_confidence
    if overrides:
        config = dataclasses.replace(config, expression=dataclasses.replace(config.expression, **overrides))
    steps = None if args.steps is None else tuple(s for s in args.steps.split(",") if s)
    if args.images is not None and not args.images.is_dir():
        ap.error(f"--images {args.images}: not a directory")
    if args.images is not None and args.subject:
        ap.error("--subject picks among the bundled faces; it does not apply to --images")
    results = run(config, args.subject, steps, args.images, args.known_box, SWEEP if args.sweep else None)
    clean = results.pop("clean")
    if not clean["frames"]:
        print("no images to measure", file=sys.stderr)
        return 1
    print(f"clean: {clean['face_found']}/{clean['frames']} frames with a face; labels {clean['labels']}")
    print("agreement = same label as the clean image (NOT accuracy)")
    print(f"{'perturbation':30s} {'found':>6s} {'agree':>6s} {'agree*':>7s} {'agree+':>7s} {'flagged':>8s} "
          f"{'other':>6s} {'top1':>6s} {'drift':>6s} {'conf shift':>10s}  reasons")
    for name, r in results.items():
        fmt = lambda v: "  -  " if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:30s} {fmt(r['face_found']):>6s} {fmt(r['agreement']):>6s} "
              f"{fmt(r['agreement_unflagged']):>7s} {fmt(r['agreement_confident']):>7s} "
              f"{fmt(r['quality_flagged']):>8s} {fmt(r['other_emotion']):>6s} {fmt(r['top_agreement']):>6s} "
              f"{fmt(r['drift']):>6s} {fmt(r['confidence_shift']):>10s}  "
              f"{r['flag_reasons']}")
    print("agree = all found faces (a face flagged `uncertain` by quality counts as disagreeing);"
          " agree* = faces quality did not flag; agree+ = faces whose clean label is an emotion, not uncertain;"
          " other = faces given an emotion other than the clean label (a wrong reading, not a refusal);"
          " top1 = same most probable emotion, whatever the thresholds made of it; drift = mean total-variation"
          " distance between the clean and perturbed probabilities (0 = the same reading, 1 = disjoint)")
    if args.images is None:
        astronaut = cv2.imread(str(ROOT / "samples" / "astronaut.jpg"), cv2.IMREAD_COLOR)
        spread = roll_spread(config, astronaut)
        if spread:
            print("\neye-line roll of the same upright face at 10 positions (degrees; should not depend on"
                  f" where she stands), zoom_align = {str(config.expression.zoom_align).lower()}:")
            for where, rolls in spread.items():
                if rolls:
                    print(f"  {where:12s} {min(rolls):+6.1f} .. {max(rolls):+6.1f}  (spread {max(rolls) - min(rolls):.1f})")
    if "labelled" in clean:
        print(f"\naccuracy against the folder labels ({clean['labelled']} labelled images)")
        print(f"{'':30s} {'correct':>8s} {'refused':>8s} {'wrong':>6s} {'missed':>7s}")
        for name, r in [("clean", clean), *results.items()]:
            print(f"{name:30s} {r['accuracy']:8.3f} {r['refused']:8.3f} {r['wrong']:6.3f} {r['missed']:7.3f}")
        print("refused = `uncertain` (cannot tell); wrong = another emotion; missed = no face found")
    if args.json:
        results["clean"] = clean
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
