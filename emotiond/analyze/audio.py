"""The audio stream: the clip's sound (its own track via ffmpeg, or a separate file) -> features.

Features follow seed 3.3 (Mel spectrogram with 128 bands, FFT window 1024, hop 512), summarised for
a Pi-sized pipeline instead of a 2D ResNet-101: mean level per 16-band group, level dynamics and the
spectral centroid; plus the audio-emotion model's probabilities on the speech segments that voice
activity detection finds, mapped to the common 7 classes and then to sentiment.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emotiond.analyze.sentiment import SENTIMENTS, to_sentiment, valence
from emotiond.fusion.labels import EMOTIONS

SEED_N_FFT, SEED_HOP, SEED_N_MELS = 1024, 512, 128
MEL_GROUPS = 8  # 128 bands summarised as 8 groups of 16
MIN_SEGMENT_S = 0.5  # speech runs shorter than this are not classified on their own
MERGE_GAP_S = 0.3  # voiced runs closer than this are one segment
FFMPEG_TIMEOUT_S = 300


class AudioUnavailable(Exception):
    """No audio can be analysed; the message says why in one line (the run continues without it)."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # mono float32 in [-1, 1]
    sample_rate: int
    source: str  # "clip" or the file path


def clip_has_audio(path: Path) -> bool:
    """Whether the container has an audio stream (needs ffprobe, which comes with ffmpeg)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise AudioUnavailable("ffprobe/ffmpeg is not installed, so the clip's own audio track cannot be read "
                               "(apt-get install ffmpeg, or pass --audio FILE.wav)")
    try:
        out = subprocess.run([ffprobe, "-v", "error", "-select_streams", "a", "-show_entries", "stream=index",
                              "-of", "csv=p=0", str(path)], capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise AudioUnavailable(f"{path}: ffprobe timed out") from None
    return out.returncode == 0 and bool(out.stdout.strip())


def decode_with_ffmpeg(path: Path, sample_rate: int) -> np.ndarray:
    """Decode the first audio stream of any file ffmpeg reads to mono float32 at sample_rate."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioUnavailable(f"{path}: has audio, but ffmpeg is not installed to decode it "
                               "(apt-get install ffmpeg, or pass --audio FILE.wav)")
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
           "-ar", str(int(sample_rate)), "-f", "f32le", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AudioUnavailable(f"{path}: ffmpeg took longer than {FFMPEG_TIMEOUT_S} s to decode the audio") from None
    if out.returncode != 0:
        first = (out.stderr.decode(errors="replace").strip().splitlines() or ["unknown error"])[0]
        raise AudioUnavailable(f"{path}: ffmpeg could not decode the audio ({first})")
    samples = np.frombuffer(out.stdout, dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise AudioUnavailable(f"{path}: the audio track is empty")
    return samples


def load_audio_file(path: Path, sample_rate: int) -> Audio:
    """A separate audio file: PCM WAV through the project's WAV reader, any other format through ffmpeg."""
    from emotiond.sources.microphone import MicrophoneError, read_wav

    p = Path(path)
    if not p.is_file():
        raise AudioUnavailable(f"{p}: no such audio file")
    try:
        samples, rate = read_wav(p)
    except MicrophoneError as exc:  # not a WAV the reader understands: let ffmpeg try any format
        if shutil.which("ffmpeg") is None:
            raise AudioUnavailable(f"{p}: not a readable WAV file ({exc})") from None
        return Audio(decode_with_ffmpeg(p, sample_rate), sample_rate, str(p))
    return Audio(np.asarray(samples, dtype=np.float32), int(rate), str(p))


def load_clip_audio(path: Path, sample_rate: int) -> Audio | None:
    """The clip's own audio track, or None when it has none; AudioUnavailable when it cannot be read."""
    if not clip_has_audio(path):
        return None
    return Audio(decode_with_ffmpeg(path, sample_rate), sample_rate, "clip")


def speech_segments(voiced: Sequence[bool], frame_s: float, merge_gap_s: float = MERGE_GAP_S,
                    min_len_s: float = MIN_SEGMENT_S) -> list[tuple[float, float]]:
    """(start, end) seconds of voiced runs, merging runs separated by short gaps, dropping short ones."""
    runs: list[list[float]] = []
    for i, v in enumerate(voiced):
        if not v:
            continue
        start, end = i * frame_s, (i + 1) * frame_s
        if runs and start - runs[-1][1] <= merge_gap_s + 1e-9:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [(round(a, 4), round(b, 4)) for a, b in runs if b - a >= min_len_s - 1e-9]


def mel_features(mel_db: np.ndarray) -> dict[str, float]:
    """Summaries of a [128, frames] dB Mel spectrogram (means per band group, dynamics, centroid)."""
    n_mels = mel_db.shape[0]
    groups = np.array_split(np.arange(n_mels), MEL_GROUPS)
    features = {f"audio.mel_db_g{i}": float(mel_db[g].mean()) for i, g in enumerate(groups)}
    frame_level = mel_db.mean(axis=0)
    power = 10.0 ** (mel_db / 10.0)
    centroid = (np.arange(n_mels)[:, None] * power).sum(axis=0) / np.maximum(power.sum(axis=0), 1e-12)
    features["audio.level_std_db"] = float(frame_level.std())
    features["audio.mel_centroid"] = float(centroid.mean() / (n_mels - 1))
    return features


def audio_weight_factor(validated: bool, audio_weight: float, unvalidated_audio_weight: float) -> float:
    """How much of its stream weight the voice model's sentiment gets: all of it for a validated model, else
    ``unvalidated_audio_weight / audio_weight`` (the daemon's fusion rule; 0 by default)."""
    if validated:
        return 1.0
    return min(1.0, unvalidated_audio_weight / audio_weight) if audio_weight > 0 else 0.0


def audio_stream(audio: Audio | None, classifier: Any, vad: Any, reason: str = "",
                 weight_factor: float | None = None) -> dict[str, Any]:
    """Features, speech segments and the model's sentiment; ``classifier`` is an AudioEmotionClassifier,
    ``vad`` a VoiceActivityDetector.

    ``weight_factor`` (see ``audio_weight_factor``; default 1 for a validated model, else 0) scales the
    sentiment features the fusion uses; at 0 the stream reports the model's sentiment but sets no valence."""
    from emotiond.perception.audio_features import mel_spectrogram

    labels = list(classifier.labels) if classifier is not None else []
    features: dict[str, float] = {f"audio.mel_db_g{i}": 0.0 for i in range(MEL_GROUPS)}
    features.update({"audio.level_std_db": 0.0, "audio.mel_centroid": 0.0, "audio.speech_ratio": 0.0})
    features.update({f"audio.p_{label}": 0.0 for label in labels})
    features.update({"audio.pos": 0.0, "audio.neu": 0.0, "audio.neg": 0.0})
    validated = bool(classifier is not None and classifier.model.manifest.validated)
    factor = (1.0 if validated else 0.0) if weight_factor is None else float(weight_factor)
    result: dict[str, Any] = {"available": False, "features": features, "sentiment": None, "valence": None,
                              "segments": [], "source": None, "reason": reason or "no audio",
                              "validated": validated, "weight_factor": factor}
    if audio is None or audio.samples.size == 0:
        return result
    y, sr = audio.samples, audio.sample_rate
    result["source"] = audio.source
    result["duration_s"] = round(len(y) / float(sr), 3)
    mel = mel_spectrogram(y, sr, n_fft=SEED_N_FFT, hop=SEED_HOP, n_mels=SEED_N_MELS)
    result["mel"] = {"n_mels": int(mel.shape[0]), "frames": int(mel.shape[1]), "n_fft": SEED_N_FFT, "hop": SEED_HOP,
                     "sample_rate": int(sr)}
    result["_mel_db"] = mel  # for the report's picture; not part of the JSON
    features.update(mel_features(mel))
    detected = vad.analyse(y, sr)
    features["audio.speech_ratio"] = float(detected.voiced_ratio)
    segments = speech_segments(detected.voiced, detected.frame_s)
    result["segments"] = [{"start": a, "end": b} for a, b in segments]
    if not segments:
        result["reason"] = f"no speech segment of at least {MIN_SEGMENT_S:.1f} s found"
        return result
    per_segment, lengths = [], []
    for (a, b), seg in zip(segments, result["segments"]):
        probs = classifier.classify(y[int(a * sr): int(b * sr)], sr)
        seg["probabilities"] = {label: round(float(p), 4) for label, p in zip(labels, probs)}
        per_segment.append(probs)
        lengths.append(b - a)
    probs = np.average(np.stack(per_segment), axis=0, weights=lengths)
    common, coverage = classifier.to_common(probs)
    sentiment = to_sentiment(EMOTIONS, common)
    features.update({f"audio.p_{label}": float(p) for label, p in zip(labels, probs)})
    features.update({"audio.pos": factor * float(sentiment[0]), "audio.neu": factor * float(sentiment[1]),
                     "audio.neg": factor * float(sentiment[2])})
    result.update({
        "available": True, "reason": None, "sentiment": sentiment,
        "valence": valence(sentiment) if factor > 0 else None,
        "note": None if factor > 0 else "the voice model is unvalidated: its sentiment is reported, not fused "
                                        "([fusion] unvalidated_audio_weight = 0)",
        "probabilities": {label: round(float(p), 4) for label, p in zip(labels, probs)},
        "common_probabilities": {e: round(float(p), 4) for e, p in zip(EMOTIONS, common)},
        "covered_classes": [e for e, c in zip(EMOTIONS, coverage) if c],
        "sentiment_probabilities": {s: round(float(v), 4) for s, v in zip(SENTIMENTS, sentiment)},
    })
    return result
