"""`emotiond devices` on this machine (no camera, mic, GPIO or I2C) and on file-backed /dev, /proc, /sys trees."""

from __future__ import annotations

import glob
import json
import subprocess
import sys
from pathlib import Path

from emotiond import devices

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emotiond", "devices", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_json_listing_on_this_machine_matches_what_dev_holds() -> None:
    result = _run("--json")
    assert result.returncode == 0, result.stderr
    inv = json.loads(result.stdout)
    assert set(inv) == {"device", "cameras", "audio", "gpio", "i2c"}
    assert [c["device"] for c in inv["cameras"]["v4l2"]] == sorted(
        (p for p in glob.glob("/dev/video*") if p[10:].isdigit()), key=lambda p: int(p[10:]))
    assert len(inv["gpio"]["chips"]) == len(glob.glob("/dev/gpiochip*"))
    assert len(inv["i2c"]["buses"]) == len(glob.glob("/dev/i2c-*"))
    assert isinstance(inv["audio"]["devices"], list) and inv["audio"]["via"] in ("pyaudio", "alsa")


def test_text_listing_says_none_found_for_what_is_missing() -> None:
    result = _run()
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for heading in ("Cameras", "Audio inputs", "GPIO", "I2C"):
        assert heading in text
    if not glob.glob("/dev/video*"):
        assert text.split("Audio inputs")[0].count("none found") == 1
    if not glob.glob("/dev/i2c-*"):
        assert "none found (enable I2C in raspi-config)" in text
    assert "Traceback" not in result.stderr


def _tree(root: Path) -> tuple[Path, Path, Path]:
    """A Pi-like /dev, /proc/asound and /sys/class/video4linux made of plain files."""
    dev, proc, sysfs = root / "dev", root / "proc", root / "sys"
    for name in ("video0", "video10", "video2", "videoX", "gpiochip0", "gpiochip4", "i2c-1", "i2c-20", "i2c-2"):
        (dev / name).parent.mkdir(parents=True, exist_ok=True)
        (dev / name).touch()
    for node, name in (("video0", "UVC Camera (046d:0825)"), ("video10", "bcm2835-codec-decode")):
        (sysfs / "class/video4linux" / node).mkdir(parents=True)
        (sysfs / "class/video4linux" / node / "name").write_text(name + "\n")
    (proc / "asound").mkdir(parents=True)
    (proc / "asound/cards").write_text(
        " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"
        "                      bcm2835 Headphones\n"
        " 2 [Device         ]: USB-Audio - USB PnP Sound Device\n"
        "                      C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed\n"
    )
    (proc / "asound/pcm").write_text(
        "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n"
        "02-00: USB Audio : USB Audio : playback 1 : capture 1\n"
    )
    return dev, proc, sysfs


def test_file_backed_tree_is_listed_in_natural_order(tmp_path: Path) -> None:
    dev, proc, sysfs = _tree(tmp_path)
    cams = devices.cameras(dev, sysfs, probe=False)["v4l2"]
    assert [c["device"].rsplit("/", 1)[1] for c in cams] == ["video0", "video2", "video10"]
    assert cams[0]["name"] == "UVC Camera (046d:0825)" and cams[0]["config"] == "0"
    assert devices.gpio(dev)["chips"] == [str(dev / "gpiochip0"), str(dev / "gpiochip4")]
    assert [b["port"] for b in devices.i2c(dev)["buses"]] == [1, 2, 20]
    alsa = devices.audio_inputs(proc, use_pyaudio=False)
    assert alsa["via"] == "alsa"
    assert alsa["devices"] == [{"card": 2, "device": 0, "name": "USB Audio", "card_id": "Device", "alsa": "hw:2,0"}]


def test_opening_a_node_that_is_not_a_camera_is_reported_not_raised(tmp_path: Path) -> None:
    dev, _proc, sysfs = _tree(tmp_path)
    cams = devices.cameras(dev, sysfs, probe=True)["v4l2"]
    # Plain files are not V4L2 devices: OpenCV cannot open them, which is reported, not raised.
    assert [c["opens"] for c in cams] == [False, False, False]
    assert all("cannot open" in c["note"] for c in cams)


class _PyAudioLike:
    """PyAudio's device-query API for a USB mic taking 16/44.1/48 kHz and an output-only card."""

    paInt16 = 8

    class PyAudio:
        def get_device_count(self) -> int:
            return 2

        def get_device_info_by_index(self, i: int) -> dict:
            return [{"name": "bcm2835 Headphones", "maxInputChannels": 0, "defaultSampleRate": 44100.0},
                    {"name": "USB PnP Sound Device: Audio (hw:2,0)", "maxInputChannels": 1,
                     "defaultSampleRate": 48000.0}][i]

        def is_format_supported(self, rate, input_device=None, input_channels=None, input_format=None) -> bool:
            if rate not in (16000, 44100, 48000):
                raise ValueError("Invalid sample rate")
            return True

        def terminate(self) -> None:
            pass


def test_pyaudio_inputs_list_the_rates_they_accept() -> None:
    audio = devices.audio_inputs(pyaudio_module=_PyAudioLike)
    assert audio["via"] == "pyaudio"
    assert audio["devices"] == [{"index": 1, "name": "USB PnP Sound Device: Audio (hw:2,0)", "channels": 1,
                                 "default_rate": 48000, "rates": [16000, 44100, 48000], "config": "1"}]
    text = devices.format_text({**devices.inventory(probe=False), "audio": audio})
    assert "[1] USB PnP Sound Device: Audio (hw:2,0): 1 ch, rates 16000, 44100, 48000 Hz  -> device = \"1\"" in text
