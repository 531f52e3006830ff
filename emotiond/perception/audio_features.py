"""Audio feature pipelines, chosen by name from a model manifest's ``"features"`` key.

- ``mfcc_delta``: the seed's features, MFCC + first-order delta from python_speech_features, with
  per-utterance mean/variance normalisation, padded or cut to a fixed number of frames.
- ``librosa_summary_181``: what audioanalytics' Keras model was trained on (40 MFCC means, 12 chroma
  means, 128 mel-power means, 1 zero-crossing-rate mean), re-implemented here with numpy following
  librosa 0.10/0.11 conventions (centred STFT with zero padding, periodic Hann window, Slaney mel
  scale and area normalisation, power_to_db with top_db 80, orthonormal DCT-II, chroma with estimated
  tuning, edge-padded zero-crossing frames) so the daemon never imports librosa. A dev-only test
  compares these against librosa itself.

Every function takes float samples (mono, [-1, 1]) and their rate and returns numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotiond.perception.resample import resample

# --- spectral building blocks --------------------------------------------------------------------


def hann_periodic(n: int) -> np.ndarray:
    """The periodic Hann window (librosa's default for the STFT): numpy's symmetric one of n + 1
    points without its last, as ``scipy.signal.get_window("hann", n)`` gives, without importing
    scipy.signal (see emotiond.perception.resample for what that costs)."""
    return np.hanning(n + 1)[:-1].astype(np.float64)


def frame_signal(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Frames as rows [n_frames, frame_length] (a strided view; no padding)."""
    if len(y) < frame_length:
        return np.zeros((0, frame_length), dtype=y.dtype)
    n = 1 + (len(y) - frame_length) // hop_length
    return np.lib.stride_tricks.sliding_window_view(y, frame_length)[::hop_length][:n]


def stft_magnitude(y: np.ndarray, n_fft: int = 2048, hop_length: int = 512, center: bool = True) -> np.ndarray:
    """|STFT| as [1 + n_fft/2, frames]; centred frames are zero padded (librosa pad_mode 'constant')."""
    y = np.asarray(y, dtype=np.float64)
    if center:
        y = np.pad(y, n_fft // 2, mode="constant")
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    frames = frame_signal(y, n_fft, hop_length) * hann_periodic(n_fft)
    return np.abs(np.fft.rfft(frames, n=n_fft, axis=1)).T


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular Slaney-scale filters with Slaney area normalisation, [n_mels, 1 + n_fft/2]."""
    fmax = sr / 2.0 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """10*log10(power) with ref 1.0, floored at ``amin`` and at ``top_db`` below the clip's peak."""
    db = 10.0 * np.log10(np.maximum(amin, power))
    if top_db is not None and db.size:
        db = np.maximum(db, db.max() - top_db)
    return db


def dct_ortho(x: np.ndarray, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II along axis 0 (librosa's MFCC transform, ``scipy.fft.dct(norm="ortho")``),
    first n_out rows, as one small matrix product. Not scipy's: the bundled voice model's features
    never load scipy otherwise, and ``import scipy.fft`` adds 26.5 MB of RSS on top of numpy and OpenCV
    (``emotiond bench --faces 4`` peak: 164 MB with it, 146 MB without); tests compare the two to 1e-12."""
    n = x.shape[0]
    k = np.arange(n_out)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return np.asarray(basis @ np.asarray(x, dtype=np.float64))


def _parabolic_shift(S: np.ndarray) -> np.ndarray:
    """Sub-bin offset of a parabola through each bin and its two neighbours (0 at the edges)."""
    shift = np.zeros_like(S)
    a = S[2:] + S[:-2] - 2.0 * S[1:-1]
    b = (S[2:] - S[:-2]) / 2.0
    ok = np.abs(b) < np.abs(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift[1:-1] = np.where(ok, -b / np.where(ok, a, 1.0), 0.0)
    return shift


def estimate_tuning(S: np.ndarray, sr: float, bins_per_octave: int = 12, resolution: float = 0.01) -> float:
    """Deviation from A440 in fractions of a bin, from spectral peaks between 150 Hz and 4 kHz.

    Same method as librosa.estimate_tuning on a magnitude spectrogram: parabolic-interpolated local
    maxima above 10% of the frame's peak, keep those at or above the median magnitude, histogram of
    their residuals against the equal-tempered grid, the fullest bin wins.
    """
    n_fft = 2 * (S.shape[0] - 1)
    fft_freqs = np.linspace(0.0, sr / 2.0, S.shape[0])
    shift = _parabolic_shift(S)
    dskew = 0.5 * np.gradient(S, axis=0) * shift
    freq_mask = ((fft_freqs >= 150.0) & (fft_freqs < min(4000.0, sr / 2.0)))[:, None]
    T = S * (S > 0.1 * S.max(axis=0, keepdims=True))
    localmax = np.zeros_like(S, dtype=bool)
    localmax[1:-1] = (T[1:-1] > T[:-2]) & (T[1:-1] >= T[2:])
    localmax[-1] = T[-1] > T[-2]
    idx = np.nonzero(freq_mask & localmax)
    if not idx[0].size:
        return 0.0
    pitch = (idx[0] + shift[idx]) * float(sr) / n_fft
    mag = S[idx] + dskew[idx]
    positive = pitch > 0
    if not positive.any():
        return 0.0
    threshold = np.median(mag[positive])
    freqs = pitch[(mag >= threshold) & positive]
    if not freqs.size:
        return 0.0
    residual = np.mod(bins_per_octave * np.log2(freqs / (440.0 / 16.0)), 1.0)
    residual[residual >= 0.5] -= 1.0
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, bins)
    return float(edges[np.argmax(counts)])


def chroma_filterbank(sr: float, n_fft: int, tuning: float = 0.0, n_chroma: int = 12,
                      ctroct: float = 5.0, octwidth: float = 2.0) -> np.ndarray:
    """Gaussian chroma bumps per FFT bin (Ellis' chromagram weights, as librosa.filters.chroma)."""
    freqs = np.linspace(0.0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(freqs / (a440 / 16.0))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidth = np.concatenate((np.maximum(np.diff(frqbins), 1.0), [1.0]))
    D = frqbins[None, :] - np.arange(n_chroma, dtype=np.float64)[:, None]
    half = np.round(n_chroma / 2.0)
    D = np.remainder(D + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2.0 * D / binwidth[None, :]) ** 2)
    norms = np.sqrt((wts**2).sum(axis=0, keepdims=True))
    wts = wts / np.where(norms > np.finfo(np.float64).tiny, norms, 1.0)
    wts *= np.exp(-0.5 * ((frqbins / n_chroma - ctroct) / octwidth) ** 2)[None, :]
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return wts[:, : 1 + n_fft // 2]


def zero_crossing_rate(y: np.ndarray, frame_length: int = 2048, hop_length: int = 512, center: bool = True,
                       threshold: float = 1e-10) -> np.ndarray:
    """Crossings per sample in each frame; centred frames are edge padded, |y| <= threshold counts as 0,
    and 0 counts as positive (librosa's conventions)."""
    y = np.asarray(y, dtype=np.float64)
    if center:
        y = np.pad(y, frame_length // 2, mode="edge")
    frames = frame_signal(y, frame_length, hop_length)
    if not len(frames):
        return np.zeros(0)
    f = np.where(np.abs(frames) <= threshold, 0.0, frames)
    neg = np.signbit(f)
    crossings = neg[:, 1:] != neg[:, :-1]
    return crossings.sum(axis=1) / frame_length


def mel_power(y: np.ndarray, sr: float, n_fft: int = 2048, hop: int = 512, n_mels: int = 128,
              fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Linear mel power spectrogram [n_mels, frames]."""
    S = stft_magnitude(y, n_fft, hop) ** 2
    return mel_filterbank(sr, n_fft, n_mels, fmin, fmax) @ S


def mel_spectrogram(samples: np.ndarray, sr: float, n_fft: int = 1024, hop: int = 512, n_mels: int = 128) -> np.ndarray:
    """Mel spectrogram in dB (power_to_db, ref 1.0, top_db 80) as [n_mels, frames] (the seed's 1024/512/128)."""
    return power_to_db(mel_power(samples, sr, n_fft, hop, n_mels))


def mfcc(y: np.ndarray, sr: float, n_mfcc: int = 40, n_fft: int = 2048, hop: int = 512, n_mels: int = 128) -> np.ndarray:
    """librosa-style MFCC [n_mfcc, frames]: orthonormal DCT-II of the dB mel power spectrogram."""
    return dct_ortho(power_to_db(mel_power(y, sr, n_fft, hop, n_mels)), n_mfcc)


# --- named pipelines -------------------------------------------------------------------------------


def librosa_summary_181(samples: np.ndarray, sr: int, params: Mapping[str, Any] | None = None) -> np.ndarray:
    """audioanalytics' 181 feature means: 40 MFCC, 12 chroma, 128 mel power, 1 ZCR, as float32 [181]."""
    p = dict(params or {})
    target = int(p.get("sample_rate", 22050))
    n_fft, hop = int(p.get("n_fft", 2048)), int(p.get("hop_length", 512))
    n_mels, n_mfcc, n_chroma = int(p.get("n_mels", 128)), int(p.get("n_mfcc", 40)), int(p.get("n_chroma", 12))
    y = resample(np.asarray(samples, dtype=np.float64), sr, target)
    if len(y) == 0:
        raise ValueError("no audio samples")
    mag = stft_magnitude(y, n_fft, hop)
    mel = mel_filterbank(target, n_fft, n_mels, float(p.get("fmin", 0.0)), p.get("fmax")) @ (mag**2)
    mfccs = dct_ortho(power_to_db(mel), n_mfcc)
    tuning = estimate_tuning(mag, target, n_chroma)
    raw = chroma_filterbank(target, n_fft, tuning, n_chroma) @ mag
    peak = np.abs(raw).max(axis=0, keepdims=True)
    chroma = raw / np.where(peak > np.finfo(np.float64).tiny, peak, 1.0)
    zcr = zero_crossing_rate(y, n_fft, hop)
    return np.concatenate([mfccs.mean(axis=1), chroma.mean(axis=1), mel.mean(axis=1), [zcr.mean()]]).astype(np.float32)


def mfcc_delta(samples: np.ndarray, sr: int, params: Mapping[str, Any] | None = None) -> np.ndarray:
    """MFCC + delta (python_speech_features), per-utterance normalised, [n_frames, 2 * numcep] float32.

    Params: sample_rate (16000), numcep (13), nfilt (26), nfft (512), winlen (0.025 s), winstep
    (0.01 s), delta_n (2), n_frames (198 = 2 s; shorter clips are zero padded, longer ones cut).
    """
    from python_speech_features import delta
    from python_speech_features import mfcc as psf_mfcc

    p = dict(params or {})
    target = int(p.get("sample_rate", 16000))
    y = resample(np.asarray(samples, dtype=np.float64), sr, target)
    if len(y) == 0:
        raise ValueError("no audio samples")
    feats = psf_mfcc(y, samplerate=target, winlen=float(p.get("winlen", 0.025)), winstep=float(p.get("winstep", 0.01)),
                     numcep=int(p.get("numcep", 13)), nfilt=int(p.get("nfilt", 26)), nfft=int(p.get("nfft", 512)))
    feats = np.hstack([feats, delta(feats, int(p.get("delta_n", 2)))])
    feats = (feats - feats.mean(axis=0)) / np.maximum(feats.std(axis=0), 1e-6)
    n_frames = int(p.get("n_frames", 198))
    out = np.zeros((n_frames, feats.shape[1]), dtype=np.float32)
    out[: min(n_frames, len(feats))] = feats[:n_frames]
    return out


FeatureFn = Callable[[np.ndarray, int, "Mapping[str, Any] | None"], np.ndarray]


@dataclass(frozen=True)
class FeaturePipeline:
    name: str
    fn: FeatureFn
    default_rate: int


FEATURES: dict[str, FeaturePipeline] = {
    "librosa_summary_181": FeaturePipeline("librosa_summary_181", librosa_summary_181, 22050),
    "mfcc_delta": FeaturePipeline("mfcc_delta", mfcc_delta, 16000),
}


def get_pipeline(name: str) -> FeaturePipeline:
    try:
        return FEATURES[name]
    except KeyError:
        raise KeyError(f"unknown audio feature pipeline {name!r} (known: {', '.join(sorted(FEATURES))})") from None
