#!/usr/bin/env python3
"""Write samples/party.mp4: a short "party" clip for `emotiond analyze`, free to ship.

Pictures: scikit-image's sample images — astronaut (NASA, public domain), camera, coffee and chelsea
(CC0 by their photographers, per scikit-image's data documentation) — composed into a group shot with
slow pans and zooms, a close-up, a cut-away without faces, and a final wide shot. Sound: espeak-ng
speech (Debian package) with pauses over a faint noise floor. ffmpeg muxes H.264 video + AAC audio;
without ffmpeg the clip is written silent with OpenCV and the script says so.

Deterministic: same inputs, same frames (the noise has a fixed seed).

    python scripts/make_party_clip.py [--out samples/party.mp4] [--fps 15]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import cv2
import numpy as np
from skimage import data

W, H = 640, 360
AUDIO_RATE = 22050
LINES = [  # (start second, text)
    (0.3, "Happy birthday! Welcome to the party."),
    (3.2, "Everybody, smile for the camera!"),
    (6.4, "Cheers, everyone!"),
]


def bgr(rgb_or_gray: np.ndarray) -> np.ndarray:
    if rgb_or_gray.ndim == 2:
        return cv2.cvtColor(rgb_or_gray, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR)


def group_canvas() -> np.ndarray:
    """A 1280x720 'room': blurred coffee-shop background, three astronaut portraits and the cameraman."""
    room = cv2.GaussianBlur(cv2.resize(bgr(data.coffee()), (1280, 720)), (0, 0), 6)
    astro = bgr(data.astronaut())
    people = [
        (cv2.resize(astro, (360, 360)), (60, 160)),
        (cv2.flip(cv2.resize(astro, (420, 420)), 1), (430, 110)),
        (cv2.resize(bgr(data.camera()), (300, 300)), (880, 300)),
        (cv2.resize(astro, (280, 280)), (900, 20)),
    ]
    canvas = room.copy()
    for img, (x, y) in people:
        h, w = img.shape[:2]
        canvas[y:y + h, x:x + w] = img
    return canvas


def crop(canvas: np.ndarray, cx: float, cy: float, zoom: float) -> np.ndarray:
    """The W x H view centred at (cx, cy) of the canvas, showing W/zoom canvas pixels across."""
    ch, cw = canvas.shape[:2]
    vw, vh = W / zoom, H / zoom
    x0 = float(np.clip(cx - vw / 2, 0, cw - vw))
    y0 = float(np.clip(cy - vh / 2, 0, ch - vh))
    m = np.array([[zoom, 0, -x0 * zoom], [0, zoom, -y0 * zoom]], dtype=np.float64)
    return cv2.warpAffine(canvas, m, (W, H), flags=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)


def lerp(a: float, b: float, t: float) -> float:
    t = min(1.0, max(0.0, t))
    t = t * t * (3 - 2 * t)  # ease in/out
    return a + (b - a) * t


def frames(fps: int) -> list[np.ndarray]:
    group = group_canvas()
    cat = bgr(data.chelsea())
    cat = cv2.resize(cat, (cat.shape[1] * 2, cat.shape[0] * 2))
    out = []
    shots = [  # (seconds, canvas, (cx0, cy0, zoom0), (cx1, cy1, zoom1))
        (3.0, group, (520, 300, 0.75), (600, 280, 0.9)),     # group shot, slow pan and push in
        (2.0, group, (665, 230, 1.6), (665, 225, 2.0)),      # close-up on the middle guest
        (1.5, cat, (300, 300, 1.0), (600, 320, 1.1)),        # cut-away: the cat, no people
        (1.5, group, (760, 300, 0.9), (640, 360, 0.6)),      # back to the group, zooming out
    ]
    for seconds, canvas, (x0, y0, z0), (x1, y1, z1) in shots:
        n = round(seconds * fps)
        for i in range(n):
            t = i / max(1, n - 1)
            out.append(crop(canvas, lerp(x0, x1, t), lerp(y0, y1, t), lerp(z0, z1, t)))
    return out


def speech(duration: float) -> np.ndarray:
    """espeak-ng lines placed at their start times over a faint noise floor, float32 mono."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("make_party_clip: espeak-ng is not installed (apt-get install espeak-ng)")
    track = np.random.default_rng(7).normal(0.0, 0.002, int(duration * AUDIO_RATE)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for k, (start, text) in enumerate(LINES):
            path = Path(tmp) / f"line{k}.wav"
            subprocess.run([espeak, "-v", "en", "-s", "165", "-p", "60", "-w", str(path), text], check=True)
            with wave.open(str(path), "rb") as w:
                rate = w.getframerate()
                pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
            if rate != AUDIO_RATE:  # espeak-ng writes 22050 Hz; resample crudely only if that changes
                pcm = np.interp(np.arange(0, len(pcm), rate / AUDIO_RATE), np.arange(len(pcm)), pcm).astype(np.float32)
            a = int(start * AUDIO_RATE)
            b = min(len(track), a + len(pcm))
            track[a:b] += 0.8 * pcm[: b - a]
    return np.clip(track, -1.0, 1.0)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes((samples * 32767).astype("<i2").tobytes())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "samples" / "party.mp4"))
    ap.add_argument("--fps", type=int, default=15)
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    video = frames(args.fps)
    duration = len(video) / args.fps
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (W, H))
        for f in video:
            writer.write(f)
        writer.release()
        print(f"{out}: {len(video)} frames, {duration:.1f} s, NO audio (ffmpeg not installed)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, speech(duration))
        cmd = [ffmpeg, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}",
               "-r", str(args.fps), "-i", "-", "-i", str(wav), "-map", "0:v", "-map", "1:a",
               "-c:v", "libx264", "-preset", "slow", "-crf", "30", "-pix_fmt", "yuv420p", "-g", str(args.fps * 2),
               "-c:a", "aac", "-b:a", "48k", "-shortest", "-movflags", "+faststart", str(out)]
        proc = subprocess.run(cmd, input=b"".join(f.tobytes() for f in video), capture_output=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"make_party_clip: ffmpeg failed: {proc.stderr.decode(errors='replace').strip()}")
    print(f"{out}: {len(video)} frames, {duration:.1f} s, {W}x{H} @ {args.fps} fps, H.264 + AAC speech, "
          f"{out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
