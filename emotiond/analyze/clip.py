"""Analyse one clip end to end: score frames, pick keyframes, run the four streams, fuse.

Two sequential passes over the video keep memory bounded: pass 1 scores sampled frames (faces,
expressions, saliency) and measures inter-frame differences; pass 2 fetches only the keyframes and
the optical-flow frame pairs. Models are the daemon's own Pi-sized TFLite ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emotiond import __version__
from emotiond.analyze.audio import (
    Audio,
    AudioUnavailable,
    audio_stream,
    audio_weight_factor,
    load_audio_file,
    load_clip_audio,
)
from emotiond.analyze.faces import FrameObs, face_stream, observe_frame
from emotiond.analyze.flow import flow_positions, flow_stream
from emotiond.analyze.fusion import FusionModel, feature_level, score_level
from emotiond.analyze.keyframes import Keyframe, select_keyframes
from emotiond.analyze.progress import Progress
from emotiond.analyze.saliency import spectral_residual
from emotiond.analyze.scene import image_stats, scene_stream
from emotiond.analyze.sentiment import SENTIMENTS, label_of
from emotiond.analyze.tiling import TiledDetector
from emotiond.analyze.video import (
    ClipError,
    ClipMissing,
    iter_frames,
    probe_clip,
    read_frames,
)
from emotiond.config import Config
from emotiond.models import ModelError
from emotiond.perception.audio_emotion import AudioEmotionClassifier
from emotiond.perception.face_detect import FaceDetector
from emotiond.perception.face_path import build_face_models
from emotiond.perception.vad import VoiceActivityDetector

log = logging.getLogger(__name__)

DIFF_SIZE = 64  # inter-frame difference is measured on a 64x64 grey copy
THUMB_WIDTH = 320


@dataclass
class Analysis:
    result: dict[str, Any]  # the JSON document
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)  # keyframe frame index -> BGR image
    thumb_scale: float = 1.0  # thumbnail pixels per clip pixel
    mel_db: np.ndarray | None = None  # the audio's [128, frames] Mel spectrogram, for the report


def _r(x: float, n: int = 4) -> float:
    return round(float(x), n)


def _sent(s: np.ndarray | None) -> dict[str, float] | None:
    return None if s is None else {k: _r(v) for k, v in zip(SENTIMENTS, s)}


def _stream_json(stream: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in stream.items() if k not in ("sentiment", "features") and not k.startswith("_")}
    out["sentiment"] = _sent(stream.get("sentiment"))
    out["valence"] = None if stream.get("valence") is None else _r(stream["valence"])
    out["features"] = {k: _r(v, 5) for k, v in stream["features"].items()}
    return out


def _load_audio(clip: Path, audio_path: Path | None, sample_rate: int) -> tuple[Audio | None, str]:
    """(audio or None, reason when None). An explicit --audio file that fails is an input error."""
    if audio_path is not None:
        try:
            return load_audio_file(audio_path, sample_rate), ""
        except AudioUnavailable as exc:
            raise (ClipMissing if not Path(audio_path).exists() else ClipError)(str(exc)) from None
    try:
        audio = load_clip_audio(clip, sample_rate)
    except AudioUnavailable as exc:
        return None, str(exc)
    return audio, "" if audio is not None else "the clip has no audio track (pass --audio FILE to add one)"


def _audio_models(config: Config) -> tuple[Any, Any, str]:
    """(classifier, vad, reason when unusable); audio problems never stop a video analysis."""
    try:  # the VAD needs webrtcvad, an optional dependency
        vad = VoiceActivityDetector()
    except ImportError as exc:
        return None, None, str(exc)
    try:
        classifier = AudioEmotionClassifier.from_manifest(
            config.models_dir / config.models.audio_emotion, config.models.backend, config.models.num_threads)
    except ModelError as exc:
        return None, None, str(exc)
    return classifier, vad, ""


def _timeline(frames: list[FrameObs], seconds: int) -> list[dict[str, Any]]:
    """Per whole second: mean sentiment of its sampled frames and its best keyframe score."""
    out = []
    for sec in range(seconds):
        here = [f for f in frames if int(np.floor(f.time)) == sec]
        if not here:
            continue
        mean = np.mean([f.sentiment for f in here], axis=0)
        out.append({"second": sec, "sentiment": _sent(mean), "best_score": _r(max(f.score for f in here)),
                    "faces": max(len(f.faces) for f in here)})
    return out


def analyze_clip(clip: str | Path, config: Config, *, audio_path: str | Path | None = None,
                 keyframes: int | None = None, progress: Progress | None = None) -> Analysis:
    """The whole analysis; raises ClipError (exit 65/66) for unusable input, ModelError for models."""
    cfg = config.analyze
    progress = progress or Progress(enabled=False)
    info = probe_clip(clip)
    n_key = int(keyframes if keyframes is not None else cfg.keyframes)
    warnings: list[str] = []
    if not info.fps_stated:
        warnings.append(f"the clip states no frame rate; assumed {info.fps:g} fps")

    models = build_face_models(config, min_score=cfg.min_face_score, max_faces=cfg.max_faces)
    detector: FaceDetector = models.detector
    if cfg.tiles > 1:
        detector = TiledDetector(detector, cfg.tiles, max_faces=cfg.max_faces)
    classifier = models.classifier
    zoomer = models.detector if config.expression.zoom_align else None  # the untiled one: it looks at one face
    fusion = FusionModel.load(config.models_dir / cfg.fusion_model)

    # pass 1: score sampled frames, measure inter-frame differences
    step = max(1, round(info.fps / cfg.score_fps))
    frames: list[FrameObs] = []
    prev: np.ndarray | None = None
    count = 0
    for index, frame in iter_frames(info.path):
        small = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (DIFF_SIZE, DIFF_SIZE),
                           interpolation=cv2.INTER_AREA).astype(np.float32)
        diff = float(np.abs(small - prev).mean() / 255.0) if prev is not None else 0.0
        prev = small
        count = index + 1
        if index % step == 0:
            frames.append(observe_frame(index, index / info.fps, frame, diff, detector, classifier, zoomer))
        progress.update("scoring", count, max(info.frame_count, count))
    if not frames:
        raise ClipError(f"{info.path}: no decodable video frames")
    duration = count / info.fps

    chosen: list[Keyframe] = select_keyframes([f.time for f in frames], [f.score for f in frames],
                                              [f.diff for f in frames], n_key, cfg.sentiment_threshold, duration)
    key_frames = [frames[k.index] for k in chosen]

    # pass 2: fetch keyframes and flow pairs
    positions = flow_positions(count, cfg.flow_frames)
    wanted = {f.index for f in key_frames} | set(positions) | {p + 1 for p in positions}
    progress.update("fetching", 0, 1)
    images = read_frames(info.path, wanted)
    progress.update("fetching", 1, 1)

    stats, thumbs = [], {}
    scale = min(1.0, THUMB_WIDTH / float(info.width))
    keyframe_json = []
    for k, fr in zip(chosen, key_frames):
        image = images.get(fr.index)
        st = image_stats(image, spectral_residual(image)) if image is not None else None
        if image is not None and st is not None:
            stats.append(st)
            thumbs[fr.index] = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                                          interpolation=cv2.INTER_AREA)
        keyframe_json.append({
            "frame": fr.index, "time": _r(fr.time, 3), "score": _r(fr.score), "reason": k.reason,
            "inter_frame_diff": _r(fr.diff, 5), "sentiment": _sent(fr.sentiment),
            "label": label_of(fr.sentiment) if fr.faces else None,
            "face_share_of_saliency": _r(fr.face_share),
            "faces": [{"box": list(f.box), "detector_score": _r(f.score),
                       "label": classifier.labels[int(np.argmax(f.probs))], "confidence": _r(float(np.max(f.probs))),
                       "sentiment": _sent(f.sentiment)} for f in fr.faces],
            "image_stats": None if st is None else {k2: _r(v) for k2, v in st.items()},
        })

    progress.update("streams", 0, 4)
    streams: dict[str, dict[str, Any]] = {}
    streams["faces"] = face_stream(key_frames, classifier.labels, cfg.max_faces)
    with_stats = [fr for fr in key_frames if fr.index in images]
    streams["scene"] = scene_stream([fr.sentiment for fr in with_stats], [fr.face_share for fr in with_stats], stats)
    progress.update("streams", 2, 4)

    audio_classifier, vad, audio_reason = _audio_models(config)
    audio, why = (None, audio_reason) if audio_classifier is None else _load_audio(
        info.path, Path(audio_path) if audio_path else None, audio_classifier.sample_rate)
    if audio_path and audio_classifier is None:
        raise ModelError(f"--audio given but audio analysis is unavailable: {audio_reason}")
    factor = audio_weight_factor(bool(audio_classifier is not None and audio_classifier.model.manifest.validated),
                                 config.fusion.audio_weight, config.fusion.unvalidated_audio_weight)
    streams["audio"] = audio_stream(audio, audio_classifier, vad, why, factor)
    if not streams["audio"]["available"]:
        warnings.append(f"audio stream: {streams['audio']['reason']}")
    progress.update("streams", 3, 4)

    pairs = [(images[p], images[p + 1]) for p in positions if p in images and p + 1 in images]
    streams["flow"] = flow_stream(pairs, info.fps)
    streams["flow"]["frames"] = [p for p in positions if p in images and p + 1 in images]
    progress.update("streams", 4, 4)
    progress.close()

    weights = {"faces": cfg.weight_faces, "scene": cfg.weight_scene, "audio": cfg.weight_audio}
    fused_weights = {**weights, "audio": cfg.weight_audio * factor}  # an unvalidated voice model: 0 by default
    feat = feature_level(fusion, streams)
    unknown = fusion.unknown_features([n for s in streams.values() for n in s["features"]])
    if unknown:
        warnings.append(f"fusion manifest weights features this version does not produce: {', '.join(unknown)}")
    result = {
        "emotiond": __version__,
        "clip": {"path": str(info.path), "fps": _r(info.fps, 3), "frames": count, "duration_s": _r(duration, 3),
                 "width": info.width, "height": info.height},
        "settings": {"keyframes": n_key, "score_fps": cfg.score_fps, "sampled_every_frames": step,
                     "sentiment_threshold": cfg.sentiment_threshold, "flow_frames": cfg.flow_frames,
                     "max_faces": cfg.max_faces, "detector": config.faces.detector, "tiles": cfg.tiles,
                     "min_face_score": cfg.min_face_score,
                     "stream_weights": weights, "audio_weight_factor": factor},
        "sampled_frames": len(frames),
        "frames_with_faces": sum(1 for f in frames if f.faces),
        "timeline": _timeline(frames, int(np.ceil(duration))),
        "keyframes": keyframe_json,
        "faces": streams["faces"]["faces"],
        "streams": {name: _stream_json(s) for name, s in streams.items()},
        "fusion": {"feature_level": feat, "score_level": score_level(streams, fused_weights)},
        "warnings": warnings,
    }
    result["streams"]["faces"].pop("faces", None)  # listed once, at top level
    return Analysis(result, thumbs, scale, streams["audio"].get("_mel_db"))
