"""The command line as a user meets it: demo, classify, models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from emotiond.cli import EX_DATAERR, main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emotiond", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_demo_prints_face_events_for_the_sample() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "face_appeared" and "face_lost" in kinds
    emotions = [e for e in events if e["type"] == "emotion" and e["faces"]]
    assert emotions
    assert emotions[-1]["scene"]["label"] == "happy"  # the smiling astronaut
    face = emotions[0]["faces"][0]
    assert set(face) >= {"face_id", "box", "detector_score", "probabilities", "label", "confidence"}
    assert "Traceback" not in result.stderr


def test_classify_reports_each_image_and_fails_at_the_end(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    result = run("classify", str(ROOT / "samples" / "astronaut.jpg"), str(broken), str(blank))
    assert result.returncode == EX_DATAERR
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(r) for r in lines][1] == ["image", "error"]
    (face,) = lines[0]["faces"]
    assert face["label"] == "happy" and len(face["box"]) == 4 and 0 < face["detector_score"] <= 1
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-3
    assert lines[2]["faces"] == []


def test_models_lists_and_self_tests(capsys) -> None:
    assert main(["models", "--json"]) == 0
    infos = {i["name"]: i for i in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {"face_detector", "expression"} <= set(infos)
    exp = infos["expression"]
    assert exp["input_shape"] == [1, 64, 64, 1] and len(exp["sha256"]) == 64 and exp["self_test"].startswith("ok")


def test_missing_video_is_one_line_error() -> None:
    result = run("demo", "--video", "/nonexistent.mp4")
    assert result.returncode == 66
    assert result.stderr.strip().splitlines()[-1].startswith("emotiond: error:")
