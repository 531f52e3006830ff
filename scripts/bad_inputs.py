#!/usr/bin/env python3
"""Feed the real `emotiond` CLI every bad input of issue 12 and print one Markdown table row per case.

Each case runs `python -m emotiond ...` in a subprocess with a scratch config/models/WAV and records
the exit status, whether a traceback appeared, and the last stderr line. Camera faults run the daemon
until it logs its reconnect line, then stop it with SIGTERM: their row shows "kept running" unless
the daemon ended by itself. Usage: scripts/bad_inputs.py [--only SUBSTRING]  (exit 1 if a case fails).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    name: str
    args: list[str]
    expect: int | str  # an exit status, or "running" for a camera fault
    env: dict[str, str] | None = None
    after_start: Callable[[], None] | None = None  # done once the daemon logs that it is running


def wav(frames: int = 1600) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x10\x00" * frames)
    return out.getvalue()


def build_cases(tmp: Path) -> list[Case]:
    def config(name: str, text: str | bytes) -> str:
        path = tmp / f"{name}.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    def models(name: str, **changes: object) -> str:
        mdir = tmp / f"models-{name}"
        mdir.mkdir()
        for f in (ROOT / "models").iterdir():
            if f.suffix == ".json":
                shutil.copy(f, mdir / f.name)
            else:
                (mdir / f.name).symlink_to(f)
        path = mdir / "expression.json"
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data) if changes.get("_raw") is None else str(changes["_raw"]))
        return config(f"models-{name}", f'[models]\ndir = "{mdir}"\n[audio]\nenabled = false\n'
                                         f'[camera]\nsource = "{ROOT / "samples" / "demo.mp4"}"\n')

    def audio(name: str, content: bytes) -> str:
        path = tmp / name
        path.write_bytes(content)
        return str(path)

    zero_rate = bytearray(wav())
    zero_rate[24:28] = bytes(4)
    by_id = tmp / "usb-Cam-video-index0"
    by_id.symlink_to("/dev/null")
    clip = tmp / "loop.mp4"
    looped = tmp / "looped.mp4"
    shutil.copy(ROOT / "samples" / "demo.mp4", looped)
    quiet = "[output]\nstdout = false\n[audio]\nenabled = false\n[mqtt]\nenabled = false\n[camera]\nreconnect_seconds = 1.0\n"
    return [
        Case("config: faces.min_score = nan", ["-c", config("nan", "[faces]\nmin_score = nan\n"), "check-config"], 78),
        Case("config: expression.uncertain_below = nan",
             ["-c", config("unc", "[expression]\nuncertain_below = nan\n"), "check-config"], 78),
        Case("config: camera.reconnect_seconds = inf",
             ["-c", config("inf", "[camera]\nreconnect_seconds = inf\n"), "check-config"], 78),
        Case("env: EMOTIOND_HEALTH__MAX_FRAME_AGE=nan", ["check-config"], 78, {"EMOTIOND_HEALTH__MAX_FRAME_AGE": "nan"}),
        Case("env: EMOTIOND_MQTT__STOP_TIMEOUT=nan", ["check-config"], 78, {"EMOTIOND_MQTT__STOP_TIMEOUT": "nan"}),
        Case('config: models.expression = ""', ["-c", config("expr", '[models]\nexpression = ""\n'), "check-config"], 78),
        Case('config: camera.source = "  "', ["-c", config("src", '[camera]\nsource = "  "\n'), "check-config"], 78),
        Case('config: mqtt on, mqtt.host = ""',
             ["-c", config("host", '[mqtt]\nenabled = true\nhost = ""\n'), "check-config"], 78),
        Case("config: binary file", ["-c", config("bin", b"\x89PNG\r\n\x1a\n\x00\x00\xff"), "check-config"], 78),
        Case("config: Latin-1 comment", ["-c", config("latin1", b"# caf\xe9\n[faces]\nmin_score = 0.5\n"), "check-config"], 78),
        Case("config: a directory", ["-c", str(tmp), "check-config"], 78),
        Case("manifest: labels = 5 (models)", ["-c", models("int", labels=5), "models"], 69),
        Case('manifest: labels = "angry" (run)', ["-c", models("str", labels="angry"), "run", "--max-frames", "1"], 69),
        Case("manifest: 3 labels for 7 outputs (models)",
             ["-c", models("three", labels=["angry", "sad", "happy"]), "models"], 69),
        Case("manifest: 3 labels for 7 outputs (run)",
             ["-c", models("three-run", labels=["angry", "sad", "happy"]), "run", "--max-frames", "1"], 69),
        Case("manifest: not JSON (models)", ["-c", models("junk", _raw="{not json"), "models"], 69),
        Case("WAV: cut by one byte", ["classify-audio", audio("cut.wav", wav()[:-1])], 65),
        Case("WAV: header only", ["classify-audio", audio("hdr.wav", wav()[:44])], 65),
        Case("WAV: sample rate 0", ["classify-audio", audio("rate0.wav", bytes(zero_rate))], 65),
        Case("WAV: binary junk", ["classify-audio", audio("junk.wav", os.urandom(512))], 65),
        Case("WAV: empty file", ["classify-audio", audio("empty.wav", b"")], 65),
        Case("WAV: missing file", ["classify-audio", str(tmp / "missing.wav")], 66),
        Case("camera: /dev/v4l/by-id/... not present",
             ["-c", config("cam1", quiet + 'source = "/dev/v4l/by-id/usb-gone-video-index0"\n'), "run"], "running"),
        Case("camera: by-id symlink to a non-camera device",
             ["-c", config("cam2", quiet + f'source = "{by_id}"\n'), "run"], "running"),
        Case("camera: looped file missing at start",
             ["-c", config("cam3", quiet + f'source = "{clip}"\nloop = true\n'), "run"], "running"),
        Case("camera: looped file truncated in place while running",
             ["-c", config("cam4", quiet + f'source = "{looped}"\nloop = true\n'), "run"], "running",
             after_start=lambda: (time.sleep(3.0), looped.write_bytes(b""))[0]),
        Case("control: a non-looping video file ends (the only exit 0 by itself)",
             ["-c", config("cam5", quiet + f'source = "{ROOT / "samples" / "demo.mp4"}"\n'), "run"], 0),
    ]


def run_case(case: Case) -> tuple[str, bool, str, bool]:
    """(status shown, traceback seen, last stderr line, as expected)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")}
    env.update(case.env or {})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "emotiond", *case.args]
    if case.expect != "running":
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        errors = [ln for ln in proc.stdout.splitlines() if ": ERROR " in ln]  # `emotiond models` lists them
        last = errors[0] if errors else last
        return str(proc.returncode), "Traceback" in proc.stderr, last, proc.returncode == case.expect
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert p.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        if "running: camera" in line and case.after_start is not None:
            case.after_start()
        if "retrying every" in line:
            seen = line.strip().split(": ", 1)[-1]
            break
    time.sleep(2.5)  # a few reconnect attempts
    ended = p.poll() is not None
    if not ended:
        p.send_signal(signal.SIGTERM)
    rest = p.communicate(timeout=30)[1]
    status = f"ended by itself ({p.returncode})" if ended else f"kept running; SIGTERM -> {p.returncode}"
    return status, "Traceback" in rest, seen, not ended and bool(seen) and p.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        print("| case | expected | got | traceback | message (last stderr line; `models`: its ERROR line) |")
        print("|---|---|---|---|---|")
        for case in build_cases(Path(tmp)):
            if args.only not in case.name:
                continue
            status, traceback, message, ok = run_case(case)
            failed += not ok or traceback
            message = message.replace(tmp, "$TMP").replace(str(ROOT), ".").replace("|", "\\|").replace("`", "'")
            print(f"| {case.name} | {case.expect} | {status}{'' if ok else ' **FAIL**'} | {'yes' if traceback else 'no'} "
                  f"| `{message[:160]}` |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
