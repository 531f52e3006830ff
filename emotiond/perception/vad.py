"""Voice-activity detection before classification: a clip with too little speech is ``no_speech``.

webrtcvad (the WebRTC GMM detector, pip ``webrtcvad-wheels``) judges 30 ms frames of 16-bit PCM at
16 kHz. On its own it calls steady white noise and mains hum "speech" in every mode (measured here:
voiced ratio 1.0 on Gaussian noise and on a 50 Hz tone at aggressiveness 0..3), so a frame counts as
speech only when webrtcvad says so AND a pitched (YIN-periodic, 60-400 Hz) frame lies within
``periodic_context_s`` of it: voiced syllables carry their unvoiced consonants, noise has no pitch.
Frames quieter than ``min_level_db`` dBFS are silence without asking either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emotiond.perception.prosody import yin
from emotiond.perception.resample import resample

VAD_RATE = 16000


@dataclass(frozen=True)
class VadResult:
    voiced: np.ndarray  # bool per frame
    frame_s: float
    voiced_ratio: float
    speech: bool

    @property
    def voiced_seconds(self) -> float:
        return float(self.voiced.sum()) * self.frame_s

    def to_dict(self) -> dict[str, float | bool | int]:
        return {"speech": self.speech, "voiced_ratio": round(self.voiced_ratio, 4),
                "voiced_seconds": round(self.voiced_seconds, 3), "frames": int(self.voiced.size)}


class VoiceActivityDetector:
    def __init__(self, aggressiveness: int = 2, min_voiced_ratio: float = 0.2, frame_ms: int = 30,
                 min_level_db: float = -55.0, periodic_context_s: float = 0.15) -> None:
        try:
            import webrtcvad
        except ImportError:
            raise ImportError("voice-activity detection needs webrtcvad: pip install webrtcvad-wheels") from None
        if frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad frames must be 10, 20 or 30 ms")
        self._vad = webrtcvad.Vad(int(aggressiveness))
        self.min_voiced_ratio = float(min_voiced_ratio)
        self.frame_ms = frame_ms
        self.min_level_db = float(min_level_db)
        self.periodic_context_s = float(periodic_context_s)

    def analyse(self, samples: np.ndarray, sample_rate: int) -> VadResult:
        y = resample(np.asarray(samples, dtype=np.float64), sample_rate, VAD_RATE)
        n = VAD_RATE * self.frame_ms // 1000
        frames = len(y) // n
        voiced = np.zeros(frames, dtype=bool)
        pcm = (np.clip(y[: frames * n], -1.0, 1.0) * 32767.0).astype("<i2")
        for i in range(frames):
            chunk = pcm[i * n : (i + 1) * n]
            rms = np.sqrt(np.mean((chunk.astype(np.float64) / 32768.0) ** 2))
            if 20.0 * np.log10(max(rms, 1e-12)) < self.min_level_db:
                continue
            voiced[i] = self._vad.is_speech(chunk.tobytes(), VAD_RATE)
        if frames:
            f0, _ = yin(y[: frames * n], VAD_RATE, hop=n)
            pitched = f0[:frames] > 0
            reach = int(round(self.periodic_context_s * 1000 / self.frame_ms))
            near = np.convolve(pitched.astype(float), np.ones(2 * reach + 1), mode="same") > 0
            voiced &= near
        ratio = float(voiced.mean()) if frames else 0.0
        return VadResult(voiced, self.frame_ms / 1000.0, ratio, frames > 0 and ratio >= self.min_voiced_ratio)
