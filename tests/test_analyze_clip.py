"""`emotiond analyze` on video files the tests write with cv2.VideoWriter, with the real models:
the streams, keyframes from real face scores, the HTML report in headless Chromium, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from emotiond.analyze.clip import analyze_clip
from emotiond.analyze.report import render_report
from emotiond.analyze.video import ClipError, ClipMissing, probe_clip, read_frames
from emotiond.cli import main

ROOT = Path(__file__).resolve().parent.parent
PARTY = ROOT / "samples" / "party.mp4"
SPEECH = ROOT / "samples" / "speech.wav"
FPS = 10


def write_clip(path: Path, frames: list[np.ndarray], fps: int = FPS) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2.5)


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, astronaut) -> Path:
    """3 s of the astronaut drifting right, then 3 s of textured wall with no face (10 fps, 480x360)."""
    portrait = cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA)
    wall = texture(360, 560, 3)
    frames = []
    for i in range(3 * FPS):
        f = np.full((360, 480, 3), 70, np.uint8)
        x = 20 + 2 * i
        f[30:330, x:x + 300] = portrait
        frames.append(f)
    for i in range(3 * FPS):
        frames.append(wall[:, 2 * i:2 * i + 480].copy())
    return write_clip(tmp_path_factory.mktemp("clips") / "faces.avi", frames)


@pytest.fixture(scope="module")
def face_analysis(face_clip, default_config):
    return analyze_clip(face_clip, default_config, keyframes=6)


def test_probe_and_fetch_frames_of_a_written_clip(face_clip):
    info = probe_clip(face_clip)
    assert (info.width, info.height, info.fps) == (480, 360, FPS)
    frames = read_frames(face_clip, [0, 31, 59, 500])
    assert sorted(frames) == [0, 31, 59] and frames[31].shape == (360, 480, 3)


def test_faces_stream_finds_the_smiling_astronaut(face_analysis):
    r = face_analysis.result
    faces = r["streams"]["faces"]
    assert faces["available"]
    assert 1 <= len(r["faces"]) <= 16
    assert all(f["time"] < 3.0 for f in r["faces"])  # no faces on the wall
    assert faces["sentiment"]["positive"] > 0.5 and faces["valence"] > 0
    assert faces["features"]["faces.p_happy"] == max(v for k, v in faces["features"].items() if k.startswith("faces.p_"))
    assert r["frames_with_faces"] >= 10


def test_keyframes_come_from_the_face_seconds_and_are_topped_up(face_analysis):
    r = face_analysis.result
    keys = r["keyframes"]
    assert len(keys) == 6
    assert [k["time"] for k in keys] == sorted(k["time"] for k in keys)
    slot = [k for k in keys if k["reason"] == "slot"]
    assert slot and all(k["time"] < 3.0 and k["score"] >= 0.5 for k in slot)
    assert any(k["reason"] in ("below_threshold", "fill") for k in keys)  # 3 face seconds < 6 keyframes
    assert [t["second"] for t in r["timeline"]] == [0, 1, 2, 3, 4, 5]
    assert all(t["sentiment"]["neutral"] == 1.0 for t in r["timeline"][3:])


def test_scene_stream_has_saliency_weighted_stats(face_analysis):
    scene = face_analysis.result["streams"]["scene"]
    assert scene["available"]
    assert 0.0 < scene["features"]["scene.face_share"] < 1.0
    for k in face_analysis.result["keyframes"]:
        assert set(k["image_stats"]) >= {"brightness", "contrast", "colourfulness", "saliency_spread"}


def test_flow_stream_sees_the_drift_and_the_pan(face_analysis):
    flow = face_analysis.result["streams"]["flow"]
    assert flow["available"] and flow["pairs"] == 8
    f = flow["features"]
    # portrait drifts right (+2 px/frame), the wall pans so content moves left: both horizontal
    horizontal = f["flow.dir_0"] + f["flow.dir_4"]
    assert horizontal > 0.6 and f["flow.moving"] > 0.2


def test_still_clip_has_no_motion_and_no_faces(tmp_path, default_config):
    wall = texture(240, 320, 5)
    clip = write_clip(tmp_path / "still.avi", [wall] * 20)
    r = analyze_clip(clip, default_config, keyframes=4).result
    assert r["streams"]["flow"]["features"]["flow.moving"] < 0.01
    assert not r["streams"]["faces"]["available"] and r["faces"] == []
    assert r["fusion"]["score_level"]["available"] is False
    # 2 s at 4 scored frames/s and no face: nothing passes the threshold, so the 2 per-second winners
    # and 2 more frames spread in time top up the 4 keyframes
    reasons = sorted(k["reason"] for k in r["keyframes"])
    assert reasons == ["below_threshold", "below_threshold", "fill", "fill"]


def test_audio_stream_from_a_separate_wav(face_clip, default_config):
    r = analyze_clip(face_clip, default_config, keyframes=4, audio_path=SPEECH).result
    audio = r["streams"]["audio"]
    assert audio["available"], audio["reason"]
    assert audio["source"] == str(SPEECH)
    assert audio["mel"]["n_mels"] == 128 and audio["mel"]["n_fft"] == 1024 and audio["mel"]["hop"] == 512
    assert audio["segments"] and sum(audio["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(audio["sentiment"].values()) == pytest.approx(1.0, abs=1e-3)
    # the bundled voice model is unvalidated: reported, but it does not set the clip's valence
    assert audio["validated"] is False and audio["valence"] is None and r["settings"]["audio_weight_factor"] == 0
    assert "audio" not in r["fusion"]["score_level"]["weights_used"]
    assert r["fusion"]["feature_level"]["contributions"]["audio"] == {"positive": 0.0, "neutral": 0.0, "negative": 0.0}


def test_clip_without_audio_says_why(face_analysis):
    audio = face_analysis.result["streams"]["audio"]
    assert not audio["available"]
    expected = "no audio track" if shutil.which("ffprobe") else "ffmpeg is not installed"
    assert expected in audio["reason"]
    assert any(expected in w for w in face_analysis.result["warnings"])


def test_without_ffmpeg_the_analysis_runs_without_audio_and_says_why(monkeypatch, tmp_path, capsys):
    """ffmpeg is installed here, so its absence is simulated by hiding it from shutil.which."""
    import emotiond.analyze.audio as audio_mod

    real_which = shutil.which
    monkeypatch.setattr(audio_mod.shutil, "which",
                        lambda name, *a, **k: None if name in ("ffmpeg", "ffprobe") else real_which(name, *a, **k))
    out = tmp_path / "r.json"
    assert main(["analyze", str(PARTY), "--keyframes", "2", "--json", str(out)]) == 0
    audio = json.loads(out.read_text())["streams"]["audio"]
    assert not audio["available"] and "ffmpeg is not installed" in audio["reason"]
    assert "warning: audio stream:" in capsys.readouterr().err


def test_result_is_json(face_analysis):
    text = json.dumps(face_analysis.result)
    back = json.loads(text)
    probs = back["fusion"]["feature_level"]["probabilities"]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"this is not a video at all\n" * 50, "truncated"])
def test_corrupt_clip_exits_65_with_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(PARTY.read_bytes()[:3000] if content == "truncated" else content)
    assert main(["analyze", str(bad)]) == 65
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emotiond: error: ") and str(bad) in err[0]


def test_missing_clip_exits_66_and_a_directory_65(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope.mp4")]) == 66
    assert main(["analyze", str(tmp_path)]) == 65
    assert "no such file" in capsys.readouterr().err


def test_unreadable_audio_file_exits_65(face_clip, tmp_path, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....garbage")
    assert main(["analyze", str(face_clip), "--audio", str(junk), "--json", str(tmp_path / "o.json")]) == 65
    assert capsys.readouterr().err.count("error") == 1


def test_probe_raises_the_right_errors(tmp_path):
    with pytest.raises(ClipMissing):
        probe_clip(tmp_path / "x.mp4")
    (tmp_path / "y.mp4").write_bytes(b"\0" * 100)
    with pytest.raises(ClipError):
        probe_clip(tmp_path / "y.mp4")


# --- report --------------------------------------------------------------------------------------

def test_report_is_self_contained(face_analysis):
    a = face_analysis
    page = render_report(a.result, a.thumbnails, a.thumb_scale, a.mel_db)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert 'src="http' not in page and "href=\"http" not in page and "url(http" not in page
    assert page.count("data:image/jpeg;base64,") >= len(a.result["keyframes"])
    assert "<svg" in page and "sentiment timeline" in page
    assert "rule-based weights" in page  # the untrained fusion says so
    for k in a.result["keyframes"]:
        assert f"{k['time']:.2f}s" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(face_analysis, tmp_path):
    a = face_analysis
    page = tmp_path / "report.html"
    page.write_text(render_report(a.result, a.thumbnails, a.thumb_scale, a.mel_db), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
                    page.as_uri()], capture_output=True, timeout=180, check=False)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1600, 1200)
    # not blank: many distinct colours (photos, plots) and real contrast
    colours = len(np.unique(image.reshape(-1, 3) // 8, axis=0))
    assert colours > 500 and float(image.std()) > 20
    # the sentiment colours of the plot and bars are on the page
    green = np.all(np.abs(image.astype(int) - (0x57, 0x9d, 0x2e)) < 12, axis=2).sum()
    assert green > 500


# --- end to end ----------------------------------------------------------------------------------

def test_end_to_end_on_the_party_sample(tmp_path, capsys):
    out_json, out_html = tmp_path / "party.json", tmp_path / "party.html"
    assert main(["analyze", str(PARTY), "--json", str(out_json), "--report", str(out_html)]) == 0
    r = json.loads(out_json.read_text())
    assert len(r["keyframes"]) == 16
    assert 1 <= len(r["faces"]) <= 16
    assert r["streams"]["faces"]["available"] and r["streams"]["flow"]["available"]
    if shutil.which("ffmpeg"):
        assert r["streams"]["audio"]["available"] and r["streams"]["audio"]["source"] == "clip"
    for level in ("feature_level", "score_level"):
        assert sum(r["fusion"][level]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert out_html.stat().st_size > 50_000
    err = capsys.readouterr().err
    assert str(PARTY) in err and "\r" not in err  # summary line, no progress bar when not a terminal


def test_piped_run_prints_json_and_no_progress(face_clip):
    proc = subprocess.run([sys.executable, "-m", "emotiond", "analyze", str(face_clip), "--keyframes", "3"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["keyframes"]) == 3
    assert "\r" not in proc.stderr


def test_raised_unvalidated_audio_weight_lets_the_voice_count(face_clip, default_config):
    import dataclasses

    from emotiond.analyze.audio import audio_weight_factor

    assert audio_weight_factor(True, 0.4, 0.0) == 1.0 and audio_weight_factor(False, 0.4, 0.0) == 0.0
    assert audio_weight_factor(False, 0.4, 0.2) == 0.5 and audio_weight_factor(False, 0.0, 0.2) == 0.0
    config = dataclasses.replace(default_config, fusion=dataclasses.replace(default_config.fusion,
                                                                            unvalidated_audio_weight=0.4))
    r = analyze_clip(face_clip, config, keyframes=4, audio_path=SPEECH).result
    assert r["settings"]["audio_weight_factor"] == 1.0 and r["streams"]["audio"]["valence"] is not None
    assert r["fusion"]["score_level"]["weights_used"].keys() >= {"faces", "audio"}
