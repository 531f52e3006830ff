#!/usr/bin/env python3
"""Write the OLED reference pictures (tests/data/display/*.png) from emotiond.display_render.

Run after an intentional change to the display layout, look at every picture (``--preview`` also
writes 4x-enlarged copies to a folder for viewing), then commit them; tests/test_display_render.py
compares the renderer against them pixel for pixel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emotiond.display_render import DisplayState, render
from PIL import Image

REFS = Path(__file__).resolve().parent.parent / "tests" / "data" / "display"

# One state per thing the display must be able to say; names are the PNG file names.
STATES: dict[str, DisplayState] = {
    "happy_one_face": DisplayState(label="happy", confidence=0.82, faces=1, modalities=("face",), broker=True),
    "fused_face_voice": DisplayState(label="sad", confidence=0.57, faces=2, modalities=("face", "audio"), broker=True),
    "listening": DisplayState(label="neutral", confidence=0.46, faces=1, modalities=("face",), listening=True, broker=True),
    "uncertain": DisplayState(label="uncertain", confidence=0.31, faces=3, modalities=("face",)),
    "no_face": DisplayState(faces=0, broker=True),
    "camera_error_broker_down": DisplayState(camera_ok=False, camera_error="/dev/video0 cannot be opened", broker=False),
    "privacy": DisplayState(privacy=True, broker=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REFS, help="folder for the reference PNGs")
    parser.add_argument("--preview", type=Path, help="also write 4x-enlarged RGB copies here, for looking at")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, state in STATES.items():
        img = render(state)
        img.save(args.out / f"{name}.png", optimize=True)
        if args.preview:
            args.preview.mkdir(parents=True, exist_ok=True)
            big = img.convert("RGB").resize((img.width * 4, img.height * 4), Image.Resampling.NEAREST)
            big.save(args.preview / f"{name}.png")
        print(f"{args.out / name}.png")


if __name__ == "__main__":
    main()
