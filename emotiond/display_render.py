"""What the 128x64 OLED shows, as a pure function from a ``DisplayState`` to a 1-bit PIL image.

Only Pillow's built-in bitmap font and hand-drawn pixel icons are used (no anti-aliasing, no
TrueType, no ellipses), so the same state gives the same pixels on every Pillow version and the
pictures can be checked against reference PNGs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 128, 64


REASON_TEXT = {  # face quality reasons (perception.face_quality) as the bottom line says them
    "too_dark": "too dark to tell",
    "low_contrast": "too flat to tell",
    "too_blurry": "too blurry to tell",
    "too_small": "face too far away",
    "turned": "face turned away",
}


@dataclass(frozen=True)
class DisplayState:
    label: str | None = None  # fused (else face-scene) emotion label, "uncertain", or None: no result
    confidence: float = 0.0  # 0..1, top probability behind the label
    faces: int = 0
    modalities: tuple[str, ...] = ()  # what the label is based on, e.g. ("face", "audio")
    listening: bool = False  # a voice capture is recording
    privacy: bool = False  # privacy mode: camera deliberately closed
    camera_ok: bool = True
    camera_error: str = ""
    broker: bool | None = None  # MQTT connected? None: no MQTT configured (no icon)
    reason: str | None = None  # why the faces could not be read (scene quality_reason, e.g. "too_dark")


def _bitmap(rows: tuple[str, ...]) -> Image.Image:
    img = Image.new("1", (len(rows[0]), len(rows)), 0)
    img.putdata([1 if ch == "#" else 0 for row in rows for ch in row])
    return img


CAMERA = _bitmap((
    "...###....",
    "##########",
    "###....###",
    "##..##..##",
    "##.####.##",
    "##..##..##",
    "###....###",
    "##########",
))
BROKER = _bitmap((  # a broadcast mast: ((o))
    "#........#",
    "#.#....#.#",
    "#.#.##.#.#",
    "#.#.##.#.#",
    "#.#....#.#",
    "#...##...#",
    "....##....",
    "....##....",
))
FACE = _bitmap((
    ".######.",
    "#......#",
    "#.#..#.#",
    "#......#",
    "#.#..#.#",
    "#..##..#",
    "#......#",
    ".######.",
))


@lru_cache(maxsize=1)
def font() -> ImageFont.ImageFont:
    """Pillow's built-in bitmap font (6x11 px cells); newer Pillows' load_default() is TrueType."""
    loader = getattr(ImageFont, "load_default_imagefont", None)
    return loader() if loader else ImageFont.load_default()  # type: ignore[return-value]


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str) -> None:
    draw.text(xy, text, fill=1, font=font())


def _text_width(text: str) -> int:
    return int(font().getbbox(text)[2]) if text else 0


def _big_text(img: Image.Image, text: str, y: int) -> None:
    """Text at twice the font size (pixel-doubled), centred; falls back to normal size if too wide."""
    width = _text_width(text)
    scale = 2 if 2 * width <= img.width else 1
    tile = Image.new("1", (max(width, 1), 11), 0)
    _text(ImageDraw.Draw(tile), (0, 0), text)
    if scale == 2:
        tile = tile.resize((tile.width * 2, tile.height * 2), Image.Resampling.NEAREST)
    img.paste(tile, ((img.width - tile.width) // 2, y if scale == 2 else y + 6))


def _strike(img: Image.Image, x: int, y: int, w: int, h: int) -> None:
    """A diagonal stroke through an icon (state not OK), with a dark border so it stays visible."""
    n = max(w, h)
    for i in range(n):
        px, py = x + i * (w - 1) // (n - 1), y + i * (h - 1) // (n - 1)
        for dx, value in ((-1, 0), (0, 1), (1, 0)):
            if x <= px + dx < x + w:
                img.putpixel((px + dx, py), value)


def _fit(text: str, width: int) -> str:
    max_chars = width // 6
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def render(state: DisplayState) -> Image.Image:
    """The picture for one state: status row, emotion label, confidence bar, what is going on."""
    img = Image.new("1", (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(img)

    # Status row: camera and broker icons (struck through when not OK), face count on the right.
    img.paste(CAMERA, (0, 1))
    if state.privacy or not state.camera_ok:
        _strike(img, 0, 1, CAMERA.width, CAMERA.height)
    if state.broker is not None:
        img.paste(BROKER, (14, 1))
        if not state.broker:
            _strike(img, 14, 1, BROKER.width, BROKER.height)
    count = str(min(state.faces, 99))
    img.paste(FACE, (WIDTH - 9 - _text_width(count), 1))
    _text(draw, (WIDTH - _text_width(count), 0), count)
    draw.line((0, 11, WIDTH - 1, 11), fill=1)

    # The emotion, large.
    if state.label:
        label = state.label.upper()
    else:
        label = "PAUSED" if state.privacy else "NO FACE" if state.camera_ok else "NO CAMERA"
    _big_text(img, label, 14)

    # Confidence bar with the percentage.
    conf = min(max(state.confidence, 0.0), 1.0) if state.label else 0.0
    bar_w = 100
    draw.rectangle((0, 39, bar_w - 1, 46), outline=1, fill=0)
    fill = round(conf * (bar_w - 4))
    if fill > 0:
        draw.rectangle((2, 41, 2 + fill - 1, 44), fill=1)
    _text(draw, (WIDTH - _text_width(f"{conf:.0%}"), 37), f"{conf:.0%}")

    # Bottom line: the most important thing going on.
    if state.listening:
        bottom = "listening..."
    elif state.privacy:
        bottom = "privacy: camera off"
    elif not state.camera_ok:
        bottom = "camera: " + (state.camera_error or "no frames")
    elif state.broker is False:
        bottom = "broker: disconnected"
    elif state.reason:
        bottom = REASON_TEXT.get(state.reason, state.reason.replace("_", " "))
    elif state.modalities:
        bottom = "from " + " + ".join("voice" if m == "audio" else m for m in state.modalities)
    else:
        bottom = "watching" if state.faces == 0 else "from face"
    _text(draw, (0, 52), _fit(bottom, WIDTH))
    return img
