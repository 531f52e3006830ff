"""`emotiond devices`: what hardware this machine offers, so config.toml can be filled in without guessing.

This device's identity (device id and MQTT client id, which must be unique per broker), cameras
(V4L2 nodes OpenCV can read a frame from, and picamera2's cameras), audio inputs with the sample
rates they accept, GPIO chips and I2C buses. Every probe is best effort: a missing library or
device is reported as such, never raised. All output is redacted: a camera URL keeps no password.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotiond.redact import redact

if TYPE_CHECKING:
    from emotiond.config import Config

RATES = (8000, 16000, 22050, 32000, 44100, 48000)


def _natural(path: Path) -> tuple[str, int]:
    m = re.search(r"(\d+)$", path.name)
    return (path.name.rstrip("0123456789"), int(m.group(1)) if m else -1)


def _nodes(dev: Path, pattern: str) -> list[Path]:
    return sorted(dev.glob(pattern), key=_natural)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """ALSA and V4L2 libraries print to fd 2 while probing; keep the listing readable."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cameras(dev: Path = Path("/dev"), sys_root: Path = Path("/sys"), probe: bool = True) -> dict[str, Any]:
    """V4L2 nodes with their driver name and whether OpenCV reads a frame; picamera2 cameras."""
    found = []
    for node in _nodes(dev, "video*"):
        if not node.name[5:].isdigit():
            continue
        index = int(node.name[5:])
        entry: dict[str, Any] = {
            "device": str(node),
            "config": str(index),
            "name": _read(sys_root / "class" / "video4linux" / node.name / "name"),
        }
        if probe:
            entry.update(_opencv_probe(node))
        found.append(entry)
    return {"v4l2": found, "picamera2": _picamera2()}


def _opencv_probe(node: Path) -> dict[str, Any]:
    import cv2

    with _quiet_stderr():
        cap = cv2.VideoCapture(str(node), cv2.CAP_V4L2)
        try:
            if not cap.isOpened():
                return {"opens": False, "note": "OpenCV cannot open it (metadata/codec node, or in use)"}
            ok, frame = cap.read()
            if not ok or frame is None:
                return {"opens": True, "frames": False, "note": "opens but delivers no frame (not a capture node?)"}
            return {"opens": True, "frames": True, "width": int(frame.shape[1]), "height": int(frame.shape[0]),
                    "fps": float(cap.get(cv2.CAP_PROP_FPS) or 0.0)}
        finally:
            cap.release()


def _picamera2() -> dict[str, Any]:
    if importlib.util.find_spec("picamera2") is None:
        return {"installed": False, "cameras": [],
                "note": "sudo apt install python3-picamera2 (venv with --system-site-packages)"}
    try:
        with _quiet_stderr():
            from picamera2 import Picamera2

            info = Picamera2.global_camera_info()
    except Exception as exc:  # libcamera can fail in many ways; report, don't crash
        return {"installed": True, "cameras": [], "error": str(exc)}
    cams = [{"model": c.get("Model", ""), "id": c.get("Id", ""), "config": "picamera2"} for c in info]
    return {"installed": True, "cameras": cams}


def audio_inputs(proc: Path = Path("/proc"), pyaudio_module: Any = None, use_pyaudio: bool = True) -> dict[str, Any]:
    """Input devices via PyAudio with the sample rates each accepts; else ALSA's /proc/asound listing."""
    pa_mod = pyaudio_module
    if pa_mod is None and use_pyaudio and importlib.util.find_spec("pyaudio") is not None:
        import pyaudio as pa_mod  # type: ignore[no-redef]
    if pa_mod is None:
        return {"via": "alsa", "devices": _alsa_capture(proc),
                "note": "PyAudio not installed (pip install 'emotiond[pi]'); sample rates not probed"}
    devices = []
    with _quiet_stderr():
        pa = pa_mod.PyAudio()
        try:
            for i in range(pa.get_device_count()):
                info = pa.get_device_info_by_index(i)
                if int(info.get("maxInputChannels", 0)) < 1:
                    continue
                rates = []
                for rate in RATES:
                    try:
                        if pa.is_format_supported(rate, input_device=i, input_channels=1, input_format=pa_mod.paInt16):
                            rates.append(rate)
                    except ValueError:
                        pass
                devices.append({
                    "index": i,
                    "name": str(info.get("name", "")),
                    "channels": int(info["maxInputChannels"]),
                    "default_rate": int(info.get("defaultSampleRate", 0)),
                    "rates": rates,
                    "config": str(i),
                })
        finally:
            pa.terminate()
    return {"via": "pyaudio", "devices": devices}


def _alsa_capture(proc: Path) -> list[dict[str, Any]]:
    """Capture PCMs from /proc/asound/pcm: lines like '01-00: USB Audio : USB Audio : playback 1 : capture 1'."""
    cards = {}
    for line in _read(proc / "asound" / "cards").splitlines():
        m = re.match(r"\s*(\d+)\s+\[(\S+)\s*\]:\s*(.*)", line)
        if m:
            cards[int(m.group(1))] = (m.group(2), m.group(3).strip())
    found = []
    for line in _read(proc / "asound" / "pcm").splitlines():
        m = re.match(r"(\d+)-(\d+):\s*([^:]*):", line)
        if m and "capture" in line:
            card, pcm = int(m.group(1)), int(m.group(2))
            short, long = cards.get(card, ("", ""))
            found.append({"card": card, "device": pcm, "name": m.group(3).strip() or long, "card_id": short,
                          "alsa": f"hw:{card},{pcm}"})
    return found


def gpio(dev: Path = Path("/dev")) -> dict[str, Any]:
    return {
        "chips": [str(p) for p in _nodes(dev, "gpiochip*")],
        "gpiozero": importlib.util.find_spec("gpiozero") is not None,
    }


def i2c(dev: Path = Path("/dev")) -> dict[str, Any]:
    buses = _nodes(dev, "i2c-*")
    return {
        "buses": [{"device": str(p), "port": _natural(p)[1]} for p in buses],
        "luma_oled": importlib.util.find_spec("luma") is not None and importlib.util.find_spec("luma.oled") is not None,
    }


def identity(config: Config) -> dict[str, Any]:
    """The ids this machine uses on the broker and in Home Assistant, and the configured camera."""
    from emotiond.sinks.mqtt import base_topic, client_id

    return {
        "device_id": config.device_id,
        "device_id_from": "config" if config.device.id else "machine-id or hostname",
        "name": config.device.name,
        "mqtt_client_id": client_id(config),
        "mqtt_base_topic": base_topic(config),
        "camera_source": redact(config.camera.source),
    }


def inventory(dev: Path = Path("/dev"), proc: Path = Path("/proc"), sys_root: Path = Path("/sys"),
              probe: bool = True, config: Config | None = None) -> dict[str, Any]:
    return {
        **({"device": identity(config)} if config is not None else {}),
        "cameras": cameras(dev, sys_root, probe),
        "audio": audio_inputs(proc),
        "gpio": gpio(dev),
        "i2c": i2c(dev),
    }


def format_text(inv: dict[str, Any]) -> str:
    """The human listing, with the config.toml key each finding goes into."""
    out = []
    if "device" in inv:
        d = inv["device"]
        out.append("This device  ([device] id, name; [mqtt] client_id)")
        out.append(f"  device id {d['device_id']} (from {d['device_id_from']}), name {d['name']!r}")
        out.append(f"  MQTT client id {d['mqtt_client_id']}, base topic {d['mqtt_base_topic']}")
        out.append(f"  configured camera source {d['camera_source']!r}")
    out.append("Cameras  ([camera] source = ...)")
    v4l2 = inv["cameras"]["v4l2"]
    for cam in v4l2:
        name = f" {cam['name']}" if cam["name"] else ""
        if cam.get("frames"):
            state = f"ok, {cam['width']}x{cam['height']}" + (f" @ {cam['fps']:.0f} fps" if cam.get("fps") else "")
        else:
            state = cam.get("note", "not probed")
        out.append(f"  {cam['device']}{name}: {state}  -> source = \"{cam['config']}\"")
    pc = inv["cameras"]["picamera2"]
    for cam in pc["cameras"]:
        out.append(f"  Pi camera {cam['model']} ({cam['id']})  -> source = \"picamera2\"")
    if not v4l2 and not pc["cameras"]:
        out.append("  none found")
    if not pc["installed"]:
        out.append(f"  (picamera2 not installed: {pc['note']})")
    elif "error" in pc:
        out.append(f"  (picamera2: {pc['error']})")

    audio = inv["audio"]
    out.append(f"Audio inputs  ([audio] device = ..., sample_rate = ...; via {audio['via']})")
    for d in audio["devices"]:
        if audio["via"] == "pyaudio":
            rates = ", ".join(str(r) for r in d["rates"]) or "none of " + ", ".join(map(str, RATES))
            out.append(f"  [{d['index']}] {d['name']}: {d['channels']} ch, rates {rates} Hz  -> device = \"{d['config']}\"")
        else:
            out.append(f"  {d['alsa']} {d['name']} ({d['card_id']})")
    if not audio["devices"]:
        out.append("  none found")
    if "note" in audio:
        out.append(f"  ({audio['note']})")

    g = inv["gpio"]
    chips = ", ".join(g["chips"]) or "none found"
    out.append(f"GPIO  ([triggers] gpio_*): chips {chips}; gpiozero {'installed' if g['gpiozero'] else 'not installed'}")
    i = inv["i2c"]
    buses = ", ".join(f"{b['device']} (i2c_port = {b['port']})" for b in i["buses"]) or "none found (enable I2C in raspi-config)"
    out.append(f"I2C  ([display] i2c_port): {buses}; luma.oled {'installed' if i['luma_oled'] else 'not installed'}")
    return redact("\n".join(out))


def to_json(inv: dict[str, Any]) -> str:
    return redact(json.dumps(inv, indent=2))
