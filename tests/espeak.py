"""espeak-ng speech for the audio tests: real synthesised speech written to WAV files.

espeak-ng is a Debian package (apt-get install -y espeak-ng); without it the audio tests fail with
that instruction rather than being skipped silently.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

SENTENCES = (
    "I went to the market this morning to buy some bread.",
    "The weather has been quite mild for this time of year.",
    "Please remember to close the window before you leave.",
    "We have to leave right now, the train is about to go.",
)


def require_espeak() -> str:
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is not installed: apt-get install -y espeak-ng (the audio tests render speech with it)"
    return exe


def speak(text: str, out: Path, *, voice: str = "en-us", speed: int = 175, pitch: int = 50, amplitude: int = 100) -> Path:
    subprocess.run([require_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
                    "-w", str(out), text], check=True, capture_output=True)
    return out


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> Path:
    """Float samples in [-1, 1] ([n] or [n, channels]) as PCM of the given byte width."""
    x = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    if width == 1:
        data = (x * 127.0 + 128.0).round().astype(np.uint8).tobytes()
    elif width == 2:
        data = (x * 32767.0).round().astype("<i2").tobytes()
    elif width == 4:
        data = (x * 2147483647.0).round().astype("<i4").tobytes()
    else:
        raise ValueError(width)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


# class -> espeak settings: a synthetic stand-in for emotional speech (different pitch/rate/loudness);
# good enough to prove train -> export -> load -> classify runs, says nothing about real emotions
CORPUS_STYLES = {
    "happy": {"pitch": 85, "speed": 220, "amplitude": 150},
    "sad": {"pitch": 15, "speed": 110, "amplitude": 60},
    "angry": {"pitch": 45, "speed": 240, "amplitude": 200},
}
CORPUS_VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3")


def make_corpus(root: Path, voices=CORPUS_VOICES, sentences=SENTENCES) -> Path:
    """root/LABEL/SPEAKER_N.wav for every class, voice and sentence."""
    for label, style in CORPUS_STYLES.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for v, voice in enumerate(voices):
            for s, text in enumerate(sentences):
                speak(text, root / label / f"spk{v}_{s}.wav", voice=voice, **style)
    return root
