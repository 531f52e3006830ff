#!/usr/bin/env python3
"""emotiond against the `fer` library on the same frames, on the same machine, in one run.

`fer` (https://github.com/justinshenk/fer) is what a Python user would otherwise pick: OpenCV's Haar
cascade plus a mini-Xception FER2013 classifier, the same model family as emotiond's. It pulls in
TensorFlow, so it lives in its own virtual environment, which this script does NOT create. Make it
once (about 600 MB, PyPI only):

    python3.11 -m venv /tmp/fervenv
    /tmp/fervenv/bin/pip install fer==25.10.3 --no-deps
    /tmp/fervenv/bin/pip install tensorflow-cpu==2.15.1 'numpy<2' opencv-python-headless==4.10.0.84 \\
        requests Pillow 'setuptools<81'

(`--no-deps` because fer's declared dependencies include facenet-pytorch, moviepy, matplotlib and pandas,
which `FER(mtcnn=False)` never imports; `setuptools<81` because fer imports `pkg_resources`.)

Then, from the repository (emotiond installed in the current interpreter):

    python benchmarks/compare_fer.py --fer-python /tmp/fervenv/bin/python --faces 1 --frames 150 --blocks 3

What it does: composes one clip (emotiond.bench.compose_clip: N moving faces, 640x480), then runs
worker processes that each load their library, decode the clip with OpenCV and time only the per-frame
analysis. Workers alternate (emotiond, fer, emotiond, fer, ...) so that load from anything else on the
machine hits both sides alike. Each worker reports frames per second over its block, per-frame
latency, faces found per frame, model load time and its own peak RSS (ru_maxrss).

emotiond runs twice per round: ``daemon`` (its shipped config: detect every 5th frame, classify each face
every 10th, optical-flow tracking between) and ``every-frame`` (detect and classify every face on every
frame, i.e. the same work fer does). The like-for-like ratio is every-frame vs fer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# --- workers (run in their own interpreters; stdlib + numpy + cv2 + their library only) ---------------


def _looped_frames(video: str):
    """Decode the clip frame by frame, forever (frames are not all held in memory: that would swamp
    the peak RSS being compared)."""
    import cv2

    while True:
        cap = cv2.VideoCapture(video)
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield frame
        cap.release()
        if not count:
            raise SystemExit(f"{video}: no frames")


def worker(kind: str, video: str, frames: int, warmup: int) -> dict:
    """Load one library, analyse ``frames`` frames of the looped clip, report what was measured."""
    t0 = time.perf_counter()
    import cv2
    import numpy as np

    if kind == "fer" or kind == "fer-keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            from fer import FER
        except ImportError:  # fer 25.10 no longer re-exports it from the package
            from fer.fer import FER

        t1 = time.perf_counter()
        detector = FER(mtcnn=False, use_tflite=(kind == "fer"))

        def analyse(frame):
            return len(detector.detect_emotions(frame))
        version = __import__("fer").__version__
    else:
        import dataclasses

        from emotiond.config import default_config_path, load_config
        from emotiond.perception.pipeline import FacePipeline

        config = load_config(default_config_path())
        if kind == "emotiond-every-frame":
            config = dataclasses.replace(
                config, faces=dataclasses.replace(config.faces, detect_every=1),
                expression=dataclasses.replace(config.expression, every=1))
        t1 = time.perf_counter()
        pipeline = FacePipeline.from_config(config)

        def analyse(frame):
            pipeline.process(frame)
            return len(pipeline.tracker.tracks)
        from emotiond import __version__ as version
    t2 = time.perf_counter()

    clip = _looped_frames(video)
    for _ in range(warmup):
        analyse(next(clip))
    times, faces = [], []
    cpu = 0.0
    for _ in range(frames):
        frame = next(clip)  # decoding is not timed: both sides read the same file the same way
        a, c = time.perf_counter(), time.process_time()
        faces.append(analyse(frame))
        times.append(time.perf_counter() - a)
        cpu += time.process_time() - c
    total = sum(times)
    ms = sorted(t * 1000.0 for t in times)
    return {
        "kind": kind,
        "version": version,
        "frames": frames,
        "fps": frames / total,
        "ms_p50": ms[len(ms) // 2],
        "ms_p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
        "cpu_cores": cpu / total,
        "faces_mean": float(np.mean(faces)),
        "import_s": t1 - t0,
        "model_load_s": t2 - t1,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


# --- the driver ------------------------------------------------------------------------------------


def run_worker(python: str, kind: str, video: str, frames: int, warmup: int) -> dict:
    cmd = [python, os.path.abspath(__file__), "--worker", kind, "--video", video, "--frames", str(frames),
           "--warmup", str(warmup)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"compare_fer: {kind} worker failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fer-python", default=os.environ.get("FER_PYTHON", "/tmp/fervenv/bin/python"),
                        help="the interpreter of the venv holding fer (default: $FER_PYTHON or /tmp/fervenv/bin/python)")
    parser.add_argument("--faces", type=int, default=1, help="faces in the composed clip (default 1)")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--frames", type=int, default=150, help="frames timed per worker block (default 150)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--keras", action="store_true", help="also run fer with its Keras model (use_tflite=False)")
    parser.add_argument("--json", help="write every block's numbers here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.video, args.frames, args.warmup)))
        return 0
    if not Path(args.fer_python).is_file():
        print(f"compare_fer: {args.fer_python} not found: make the fer venv first (see this file's docstring)",
              file=sys.stderr)
        return 66

    from emotiond.bench import compose_clip, machine_info, parse_size

    width, height = parse_size(args.size)
    kinds = ["emotiond-daemon", "emotiond-every-frame", "fer"] + (["fer-keras"] if args.keras else [])
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="compare-fer-") as tmp:
        video = str(Path(tmp) / "clip.mp4")
        compose_clip(Path(video), args.faces, width, height, 30.0, seconds=4.0)
        for block in range(args.blocks):
            for kind in kinds:
                python = args.fer_python if kind.startswith("fer") else sys.executable
                r = run_worker(python, kind, video, args.frames, args.warmup)
                results[kind].append(r)
                print(f"block {block + 1}/{args.blocks} {kind:<22} {r['fps']:8.1f} fps  p50 {r['ms_p50']:7.2f} ms  "
                      f"faces/frame {r['faces_mean']:.2f}  RSS {r['peak_rss_mb']:6.1f} MB", file=sys.stderr)

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    print(f"\n{args.faces} face(s), {width}x{height}, {args.frames} frames x {args.blocks} alternating blocks; "
          f"decode excluded; medians over blocks")
    print(f"{'':<22}{'fps':>9}{'p50 ms':>9}{'p95 ms':>9}{'cores':>7}{'faces':>7}{'import s':>9}{'load s':>8}"
          f"{'peak RSS MB':>13}  version")
    for kind in kinds:
        print(f"{kind:<22}{med(kind, 'fps'):9.1f}{med(kind, 'ms_p50'):9.2f}{med(kind, 'ms_p95'):9.2f}"
              f"{med(kind, 'cpu_cores'):7.2f}{med(kind, 'faces_mean'):7.2f}{med(kind, 'import_s'):9.2f}"
              f"{med(kind, 'model_load_s'):8.2f}"
              f"{max(r['peak_rss_mb'] for r in results[kind]):13.1f}  {results[kind][0]['version']}")
    fer_fps = med("fer", "fps")
    print(f"\nemotiond every-frame / fer: {med('emotiond-every-frame', 'fps') / fer_fps:.1f}x fps (like for like)")
    print(f"emotiond daemon config / fer: {med('emotiond-daemon', 'fps') / fer_fps:.1f}x fps")
    rss_fer = max(r["peak_rss_mb"] for r in results["fer"])
    rss_ours = max(r["peak_rss_mb"] for r in results["emotiond-every-frame"])
    print(f"peak RSS fer / emotiond: {rss_fer / rss_ours:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_info(), "faces": args.faces,
                                               "size": args.size, "blocks": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
