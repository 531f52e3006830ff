#!/usr/bin/env python3
"""Render samples/speech.wav: one English sentence from espeak-ng, 16 kHz mono 16-bit, ~2.5 s.

Synthetic speech (not emotional): it exists so `emotiond demo` and `emotiond classify-audio` have a
voice clip to work on. Needs the Debian package espeak-ng; resampling uses emotiond's own resampler.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emotiond.sources.microphone import read_wav, resample  # noqa: E402

SENTENCE = "What a lovely surprise, I am so happy to see you!"
RATE = 16000


def render(text: str, out: Path, voice: str = "en-us", speed: int = 175, pitch: int = 50, amplitude: int = 100) -> None:
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed: apt-get install -y espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
                        "-w", str(raw), text], check=True)
        samples, rate = read_wav(raw)
    y = resample(samples, rate, RATE)
    pcm = (np.clip(y, -1.0, 1.0) * 32767.0).round().astype("<i2")
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "samples" / "speech.wav"))
    ap.add_argument("--text", default=SENTENCE)
    args = ap.parse_args()
    render(args.text, Path(args.out), speed=190, pitch=60)
    with wave.open(args.out, "rb") as w:
        print(f"{args.out}: {w.getnframes() / w.getframerate():.2f} s, {w.getframerate()} Hz, {w.getnchannels()} channel(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
