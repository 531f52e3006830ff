"""`emotiond bench` runs the real pipeline briefly and writes every number; speed is never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from emotiond.bench import compose_clip
from emotiond.cli import EX_USAGE, main

from mosquitto import broker_fixture, free_port  # noqa: F401  (the "broker" fixture)

STAGES = ("capture_decode", "face_detection", "tracking", "expression", "expression_per_face", "smoothing",
          "fusion", "publish", "frame_total")
STAT_KEYS = {"n", "p50", "p95", "p99", "mean", "max"}
MODE_KEYS = {"mode", "seconds", "frames_captured", "frames_processed", "frames_dropped", "capture_fps", "fps",
             "cpu_ms_per_frame", "cores", "cpu_s_whole_run", "user_s_whole_run", "system_s_whole_run",
             "faces_tracked_mean", "emotion_events", "stages_ms", "e2e_ms", "fusion_stage"}
TARGETS = {"sustained_fps", "dropped_frames", "cores", "e2e_p95_ms", "audio_total_p95_ms", "peak_rss_mb", "ready_s"}


def check_stats(stats: dict, ran: bool) -> None:
    assert set(stats) == STAT_KEYS
    if ran:
        assert stats["n"] > 0 and 0 <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def run_bench(tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "bench.json"
    status = main(["bench", "--faces", "1", "--seconds", "1", "--json", str(out), *extra])
    return status, (json.loads(out.read_text()) if out.exists() else {})


def test_bench_writes_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, r = run_bench(tmp_path)
    assert status == 0
    printed = capsys.readouterr().out
    assert "frame -> event (e2e)" in printed and "targets:" in printed

    assert {"machine", "options", "clip", "backend", "num_threads", "model_load_s", "ready", "flat_out",
            "sustained", "peak_rss_mb", "peak_rss_mb_video_only", "audio", "targets"} <= set(r)
    assert {"cpu", "cores", "ram_mb", "python", "numpy", "opencv", "ai_edge_litert", "tflite_runtime",
            "load_average", "blas_threads_env"} <= set(r["machine"])
    assert r["clip"]["composed"] and r["clip"]["faces"] == 1 and r["clip"]["size"] == "640x480"
    assert r["model_load_s"] > 0 and r["peak_rss_mb"] >= r["peak_rss_mb_video_only"] > 0
    assert {"ready_s", "imports_and_config_s", "model_load_s", "first_frame_s", "rss_mb"} <= set(r["ready"])
    assert r["ready"]["ready_s"] > r["ready"]["model_load_s"] > 0

    for name in ("flat_out", "sustained"):
        mode = r[name]
        assert MODE_KEYS <= set(mode), MODE_KEYS - set(mode)
        assert set(mode["stages_ms"]) == set(STAGES)
        assert mode["frames_processed"] > 1 and mode["fps"] > 0 and mode["cpu_ms_per_frame"] > 0
        # the composed clip's face is really found and tracked, so every face stage ran
        assert mode["faces_tracked_mean"] > 0.5
        for stage in STAGES:
            check_stats(mode["stages_ms"][stage], ran=stage != "fusion" or mode["fusion_stage"])
        check_stats(mode["e2e_ms"], ran=mode["emotion_events"] > 0)
    assert isinstance(r["sustained"]["keeps_up"], bool)
    assert r["sustained"]["frames_captured"] >= r["sustained"]["frames_processed"]

    audio = r["audio"]
    assert audio["available"] and audio["status"] == "ok"  # the sample speech went through the model
    for key in ("vad_ms", "prosody_ms", "features_ms", "inference_ms", "publish_ms", "total_ms"):
        check_stats(audio[key], ran=True)

    assert set(r["targets"]) == TARGETS
    for row in r["targets"].values():
        assert {"value", "target", "unit", "met"} == set(row)
        assert row["met"] in (True, False)


def test_bench_publishes_through_a_real_broker(tmp_path: Path, broker) -> None:
    status, r = run_bench(tmp_path, "--mqtt", f"{broker.host}:{broker.port}", "--no-ready-probe")
    assert status == 0
    assert r["ready"] is None and r["targets"]["ready_s"]["met"] is None
    for name in ("flat_out", "sustained"):
        mqtt = r[name]["mqtt"]
        assert mqtt["broker"] == f"{broker.host}:{broker.port}"
        assert mqtt["messages_received"] >= 1  # at least the face_appeared event made it to a subscriber
        check_stats(mqtt["event_to_subscriber_ms"], ran=True)


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "640x"], "expected WIDTHxHEIGHT"),
    (["--faces", "40"], "--faces must be 0..16"),
    (["--seconds", "0"], "must be positive"),
    (["--mqtt", "nohost"], "expected HOST:PORT"),
    (["--video", "/nonexistent/clip.mp4"], "video not found"),
])
def test_bad_options_are_one_line_errors(args: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = [] if "--video" in args else ["--faces", "1"]
    assert main(["bench", "--no-ready-probe", "--seconds", "1", *base, *args]) == EX_USAGE
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_unreachable_broker_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens here
    assert main(["bench", "--no-ready-probe", "--faces", "1", "--seconds", "1", "--mqtt", f"127.0.0.1:{port}"]) == EX_USAGE
    err = capsys.readouterr().err.strip()
    assert "cannot connect to the broker" in err and len(err.splitlines()) == 1


def test_composed_clip_has_the_requested_faces(tmp_path: Path, default_config) -> None:
    import cv2
    from emotiond.perception.pipeline import FacePipeline

    detector = FacePipeline.from_config(default_config).detector
    for faces in (1, 4):
        path = tmp_path / f"c{faces}.mp4"
        frames = compose_clip(path, faces, 640, 480, fps=30, seconds=0.5)
        cap = cv2.VideoCapture(str(path))
        counts = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (480, 640, 3)
            counts.append(len(detector.detect(frame)))
        assert len(counts) == frames == 15
        assert counts == [faces] * frames
