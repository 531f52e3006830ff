#!/usr/bin/env python3
"""Make samples/demo.mp4 and samples/astronaut.jpg: the public-domain NASA astronaut portrait (scikit-image's `astronaut`)
drifting and zooming over a plain background, then leaving the frame, so the demo shows a face
appearing, being tracked, and being lost. Needs scikit-image (a dev dependency) only to run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 480, 15


def frames(seconds_with_face: float = 3.0, seconds_empty: float = 1.5) -> list[np.ndarray]:
    from skimage import data

    portrait = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:300, 100:380]  # head and shoulders
    background = np.full((HEIGHT, WIDTH, 3), (92, 110, 120), np.uint8)
    cv2.rectangle(background, (0, 380), (WIDTH, HEIGHT), (60, 70, 80), -1)  # a "sofa" edge
    out: list[np.ndarray] = []
    n_face = int(seconds_with_face * FPS)
    for i in range(n_face):
        t = i / max(1, n_face - 1)
        scale = 0.9 + 0.25 * t  # slow zoom in
        tile = cv2.resize(portrait, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        x = int(60 + 220 * t)  # drift right
        y = int(40 + 20 * np.sin(t * np.pi))
        frame = background.copy()
        h, w = tile.shape[:2]
        h, w = min(h, HEIGHT - y), min(w, WIDTH - x)
        frame[y : y + h, x : x + w] = tile[:h, :w]
        out.append(frame)
    out.extend(background.copy() for _ in range(int(seconds_empty * FPS)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "samples" / "demo.mp4"))
    args = parser.parse_args()
    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit(f"cannot write {args.out}")
    video = frames()
    for frame in video:
        writer.write(frame)
    writer.release()
    print(f"wrote {args.out}: {len(video)} frames, {WIDTH}x{HEIGHT} at {FPS} fps")
    from skimage import data

    still = Path(args.out).with_name("astronaut.jpg")
    cv2.imwrite(str(still), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {still}: the full 512x512 portrait, for `emotiond classify` and the tests")


if __name__ == "__main__":
    main()
