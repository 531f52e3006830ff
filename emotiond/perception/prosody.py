"""Prosodic cues of a clip and a vocal arousal index against a rolling per-device baseline.

Cues (numpy only, on the clip resampled to 16 kHz, 10 ms hop):
- pitch: YIN (de Cheveigné & Kawahara 2002): cumulative-mean-normalised difference function over
  20 ms windows, first dip below 0.25 between 60 and 400 Hz, parabolic refinement (0.15 missed
  most voiced frames of fast espeak-ng speech; white noise stays above 0.7). ``pitch_hz`` is
  the median F0 of voiced frames, ``pitch_range_hz`` the 10th..90th percentile spread.
- ``loudness_db``: RMS level in dBFS over the active frames (within 25 dB of the loudest frame).
- ``speech_rate``: syllable nuclei per second of active speech, after de Jong & Wempe (2009):
  peaks of the intensity contour that are voiced, above the median active intensity, and separated
  from the previous nucleus by a dip of at least 2 dB.
- ``voiced_ratio``: fraction of the clip's frames with a pitch.

Arousal: louder, faster, higher and more varied speech goes with higher arousal (Juslin & Laukka 2003
review these cues). The index is the mean of the z-scores of four cues (pitch level and range in
semitones, loudness in dB, speech rate) against this device's recent clips, so a naturally loud
speaker or a noisy room does not read as permanently excited. It is relative, not calibrated.
It is the one thing the voice always contributes to fusion: ``tanh(index / 2)`` is mixed with the
face's circumplex arousal (``fusion.stage.mix_arousal``, weight ``[fusion] vocal_arousal_weight``),
whether or not the voice model's categorical result is validated.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotiond.perception.resample import resample

log = logging.getLogger(__name__)

RATE = 16000
HOP = 160  # 10 ms
WIN = 320  # 20 ms (holds a 60 Hz period)
FMIN, FMAX = 60.0, 400.0
YIN_THRESHOLD = 0.25
ACTIVE_RANGE_DB = 25.0
MIN_DIP_DB = 2.0


def yin(y: np.ndarray, sr: int, hop: int, win: int = WIN, fmin: float = FMIN, fmax: float = FMAX,
        threshold: float = YIN_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (f0 in Hz or 0 when unvoiced, minimum normalised difference: 0 periodic .. ~1 noise).

    Frame i starts at sample i*hop; frames reaching past the end are zero padded.
    """
    y = np.asarray(y, dtype=np.float64)
    tau_min, tau_max = max(2, int(sr / fmax)), int(np.ceil(sr / fmin))
    span = win + tau_max
    n_frames = max(0, 1 + (len(y) - 1) // hop) if len(y) else 0
    if n_frames == 0:
        return np.zeros(0), np.ones(0)
    padded = np.pad(y, (0, n_frames * hop + span))
    frames = np.lib.stride_tricks.sliding_window_view(padded, span)[::hop][:n_frames]
    nfft = 1 << int(np.ceil(np.log2(span + win)))
    spec_full = np.fft.rfft(frames, nfft, axis=1)
    spec_head = np.fft.rfft(frames[:, :win], nfft, axis=1)
    corr = np.fft.irfft(np.conj(spec_head) * spec_full, nfft, axis=1)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    e0 = sq[:, win]
    e_tau = sq[:, win : win + tau_max + 1] - sq[:, : tau_max + 1]
    d = np.maximum(e0[:, None] + e_tau - 2.0 * corr, 0.0)
    cum = np.cumsum(d[:, 1:], axis=1)
    taus = np.arange(1, tau_max + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cmnd = np.where(cum > 0, d[:, 1:] * taus / cum, 1.0)
    cmnd = np.concatenate([np.ones((n_frames, 1)), cmnd], axis=1)  # index = lag
    f0 = np.zeros(n_frames)
    aperiodicity = np.ones(n_frames)
    silent = e0 < 1e-10 * win
    for i in range(n_frames):
        if silent[i]:
            continue
        row = cmnd[i]
        seg = row[tau_min : tau_max + 1]
        aperiodicity[i] = float(seg.min())
        below = np.nonzero(seg < threshold)[0]
        if not below.size:
            continue
        tau = tau_min + int(below[0])
        while tau + 1 <= tau_max and row[tau + 1] < row[tau]:
            tau += 1
        shift = 0.0
        if tau_min < tau < tau_max:
            a, b, c = row[tau - 1], row[tau], row[tau + 1]
            denom = a - 2 * b + c
            if denom > 0:
                shift = 0.5 * (a - c) / denom
        f0[i] = sr / (tau + shift)
    return f0, aperiodicity


def _intensity_db(y: np.ndarray, hop: int, win: int) -> np.ndarray:
    n_frames = max(0, 1 + (len(y) - 1) // hop) if len(y) else 0
    padded = np.pad(y, (win // 2, n_frames * hop + win))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_frames]
    power = np.mean((frames * np.hanning(win)) ** 2, axis=1) / np.mean(np.hanning(win) ** 2)
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def _syllable_nuclei(intensity: np.ndarray, voiced: np.ndarray, active: np.ndarray) -> int:
    if not active.any():
        return 0
    smooth = np.convolve(intensity, np.ones(3) / 3.0, mode="same")  # 30 ms
    floor = float(np.median(smooth[active]))
    peaks = [i for i in range(1, len(smooth) - 1)
             if smooth[i] > smooth[i - 1] and smooth[i] >= smooth[i + 1] and smooth[i] > floor and active[i]
             and voiced[max(0, i - 2) : i + 3].any()]
    nuclei: list[int] = []
    for p in peaks:
        if not nuclei:
            nuclei.append(p)
            continue
        prev = nuclei[-1]
        dip = float(smooth[prev : p + 1].min())
        if dip <= min(smooth[prev], smooth[p]) - MIN_DIP_DB:
            nuclei.append(p)
        elif smooth[p] > smooth[prev]:
            nuclei[-1] = p  # same syllable: keep its higher peak
    return len(nuclei)


@dataclass(frozen=True)
class Prosody:
    pitch_hz: float  # median F0 of voiced frames (0 when nothing was voiced)
    pitch_range_hz: float  # 10th..90th percentile F0 spread
    loudness_db: float  # dBFS over active frames
    speech_rate: float  # syllable nuclei per second of active speech
    voiced_ratio: float  # voiced frames / all frames
    active_seconds: float

    def to_dict(self) -> dict[str, float]:
        return {
            "pitch_hz": round(self.pitch_hz, 2),
            "pitch_range_hz": round(self.pitch_range_hz, 2),
            "loudness_db": round(self.loudness_db, 2),
            "speech_rate": round(self.speech_rate, 3),
            "voiced_ratio": round(self.voiced_ratio, 4),
        }

    def cues(self) -> np.ndarray | None:
        """The four arousal cues (pitch st re 100 Hz, range st, loudness dB, rate); None if unvoiced."""
        if self.pitch_hz <= 0:
            return None
        lo_hi = max(self.pitch_hz - self.pitch_range_hz / 2, 1.0), self.pitch_hz + self.pitch_range_hz / 2
        range_st = 12.0 * np.log2(lo_hi[1] / lo_hi[0])
        return np.array([12.0 * np.log2(self.pitch_hz / 100.0), range_st, self.loudness_db, self.speech_rate])


def analyse_prosody(samples: np.ndarray, sample_rate: int) -> Prosody:
    y = resample(np.asarray(samples, dtype=np.float64), sample_rate, RATE)
    if len(y) < WIN:
        return Prosody(0.0, 0.0, -120.0, 0.0, 0.0, 0.0)
    f0, _ = yin(y, RATE, HOP)
    intensity = _intensity_db(y, HOP, 480)  # 30 ms
    n = min(len(f0), len(intensity))
    f0, intensity = f0[:n], intensity[:n]
    active = (intensity > intensity.max() - ACTIVE_RANGE_DB) & (intensity > -70.0)
    voiced = (f0 > 0) & active
    pitches = f0[voiced]
    pitch = float(np.median(pitches)) if pitches.size else 0.0
    prange = float(np.percentile(pitches, 90) - np.percentile(pitches, 10)) if pitches.size >= 2 else 0.0
    power = 10.0 ** (intensity[active] / 10.0)
    loudness = float(10.0 * np.log10(power.mean())) if power.size else -120.0
    active_s = float(active.sum()) * HOP / RATE
    rate = _syllable_nuclei(intensity, voiced, active) / active_s if active_s > 0 else 0.0
    return Prosody(pitch, prange, loudness, rate, float(voiced.mean()), active_s)


# minimum spread per cue so a near-constant baseline cannot turn a tiny change into a huge z-score:
# half a semitone of pitch level and range, 1 dB of loudness, 0.2 syllables per second
MIN_STD = np.array([0.5, 0.5, 1.0, 0.2])
CUE_NAMES = ("pitch_st", "pitch_range_st", "loudness_db", "speech_rate")


class ArousalBaseline:
    """The last ``size`` clips' cues for one device; optionally kept in a small JSON file so the
    baseline survives restarts. ``index`` is None until ``min_count`` clips have been seen."""

    def __init__(self, device: str = "default", size: int = 50, min_count: int = 3, path: Path | str | None = None) -> None:
        self.device = device
        self.min_count = min_count
        self.path = Path(path) if path else None
        self._cues: deque[np.ndarray] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._load()

    def __len__(self) -> int:
        return len(self._cues)

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text())
            rows = data["devices"][self.device]
            for row in rows:
                cue = np.asarray(row, dtype=np.float64)
                if cue.shape == (len(CUE_NAMES),) and np.isfinite(cue).all():
                    self._cues.append(cue)
        except KeyError:
            return
        except (OSError, ValueError, TypeError) as exc:
            log.warning("arousal baseline %s unreadable (%s); starting a new one", self.path, exc)

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            data: dict = {"version": 1, "cues": list(CUE_NAMES), "devices": {}}
            if self.path.is_file():
                try:
                    old = json.loads(self.path.read_text())
                    if isinstance(old.get("devices"), dict):
                        data["devices"] = old["devices"]
                except (OSError, ValueError):
                    pass
            data["devices"][self.device] = [[round(float(v), 4) for v in c] for c in self._cues]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".baseline-")
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not save arousal baseline to %s: %s", self.path, exc)

    def index(self, cues: np.ndarray) -> float | None:
        """Mean z-score of the cues against the baseline (positive: more aroused than usual)."""
        with self._lock:
            if len(self._cues) < self.min_count:
                return None
            hist = np.stack(self._cues)
        mean, std = hist.mean(axis=0), np.maximum(hist.std(axis=0), MIN_STD)
        return float(np.mean((np.asarray(cues) - mean) / std))

    def update(self, cues: np.ndarray) -> None:
        with self._lock:
            self._cues.append(np.asarray(cues, dtype=np.float64))
            self._save()

    def score(self, prosody: Prosody, learn: bool = True) -> float | None:
        """Index of this clip against the clips before it, then (optionally) add it to the baseline."""
        cues = prosody.cues()
        if cues is None:
            return None
        value = self.index(cues)
        if learn:
            self.update(cues)
        return value
