"""The `emotiond` command: argparse subcommands; every expected failure is one line and an exit status.

Exit statuses follow sysexits.h (``emotiond.exitcodes``): 64 usage, 65 bad input data, 66 input
missing, 69 a model or runtime unavailable, 70 an unexpected internal error (one line, never a
traceback), 78 configuration error. Each subcommand imports what only it needs (sinks, bench,
analysis) when it runs, so quick ones like ``trigger`` start quickly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emotiond import __version__, redact
from emotiond.backend_check import reference_check  # one criterion for this and the start-up probe
from emotiond.backends import BACKEND_CHOICES
from emotiond.config import Config, ConfigError, default_config_path, load_config, sample_path
from emotiond.daemon import Daemon
from emotiond.exitcodes import (
    EX_CONFIG,
    EX_DATAERR,
    EX_INTERRUPTED,
    EX_NOINPUT,
    EX_SOFTWARE,
    EX_UNAVAILABLE,
    EX_USAGE,
)
from emotiond.models import Manifest, ModelError, TFLiteModel, is_json_only_model
from emotiond.sources.camera import SourceError
from emotiond.sources.microphone import MicrophoneError

SAMPLE_VIDEO = sample_path("demo.mp4")

log = logging.getLogger("emotiond")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact.install()  # every handler: no log line carries a camera or broker password


def _config(args: argparse.Namespace) -> Config:
    """The validated config, read once per invocation (main reads it first for the log level)."""
    loaded: Config | None = getattr(args, "loaded_config", None)
    if loaded is None:
        loaded = load_config(args.config if args.config else default_config_path())
        args.loaded_config = loaded
    return loaded


# --- subcommands ---------------------------------------------------------------------------------

def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    path = args.config or default_config_path() or "<defaults>"
    camera = redact.redact(repr(config.camera.source))
    print(f"{path}: ok (device {config.device_id}, camera {camera}, detector {config.faces.detector})")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from emotiond import devices

    inv = devices.inventory(probe=not args.no_probe, config=_config(args))
    print(devices.to_json(inv) if args.json else devices.format_text(inv))
    return 0


def cmd_models(args: argparse.Namespace) -> int:

    config = _config(args)
    mdir = config.models_dir
    manifests = sorted(mdir.glob("*.json"))
    if not manifests:
        raise ModelError(f"{mdir}: no model manifests (*.json) found")
    failed = False
    info: dict[str, Any]
    for path in manifests:
        if is_json_only_model(path):
            continue  # e.g. analyze_fusion.json: weights in JSON, no TFLite file to list
        try:
            manifest = Manifest.load(path)
        except ModelError as exc:  # listed, not skipped: `run` would refuse the same file
            info, failed = {"name": path.stem, "file": str(path), "error": str(exc)}, True
            print(json.dumps(info) if args.json else f"{path.stem}: ERROR {exc}")
            continue
        try:
            model = TFLiteModel(manifest, config.models.backend, config.models.num_threads)
            info = model.describe()
            info["self_test"] = reference_check(model)
            failed |= not info["self_test"].startswith("ok")
        except ModelError as exc:
            info = {"name": manifest.name, "file": str(manifest.model_path), "error": str(exc)}
            failed = True
        if args.json:
            print(json.dumps(info))
        elif "error" in info:
            print(f"{info['name']}: ERROR {info['error']}")
        else:
            print(
                f"{info['name']:<14} {info['task']:<15} {info['size_bytes'] / 1024:7.1f} KiB  "
                f"sha256 {info['sha256'][:16]}…  input {info['input_shape']} {info['input_dtype']}  "
                f"labels {','.join(info['labels']) or '-'}  [{info['backend']}] self-test {info['self_test']}"
            )
    return EX_UNAVAILABLE if failed else 0


def cmd_classify(args: argparse.Namespace) -> int:
    import cv2

    from emotiond.perception.pipeline import FacePipeline

    pipeline = FacePipeline.from_config(_config(args))
    failures = 0
    for name in args.images:
        image = cv2.imread(name, cv2.IMREAD_COLOR) if Path(name).is_file() else None
        if image is None:
            why = "no such file" if not Path(name).exists() else "not a readable image"
            print(json.dumps({"image": name, "error": why}))
            failures += 1
            continue
        faces = [{"box": list(f.box), "detector_score": round(f.detector_score, 4), **f.prediction.to_dict()}
                 for f in pipeline.classify_still(image)]
        print(json.dumps({"image": name, "width": image.shape[1], "height": image.shape[0], "faces": faces}))
    return EX_DATAERR if failures else 0


def _build_daemon(config: Config, *, lossless: bool = False, pace_files: bool = True,
                  config_path: str | None = None, persist_privacy: bool = False) -> Daemon:
    from emotiond.perception.pipeline import FacePipeline
    from emotiond.sinks.stdout import StdoutSink

    daemon = Daemon(config, FacePipeline.from_config(config), lossless=lossless, pace_files=pace_files,
                    config_path=Path(config_path) if config_path else None, persist_privacy=persist_privacy)
    if config.output.stdout:
        daemon.sinks.append(StdoutSink())
    if config.mqtt.enabled:  # a sink for events, a component for connect/commands; close() flushes
        from emotiond.sinks.mqtt import MqttSink

        mqtt_sink = MqttSink(config)
        daemon.sinks.append(mqtt_sink)
        daemon.components.append(mqtt_sink)
    from emotiond.cli_audio import add_audio

    add_audio(daemon, config)  # fusion stage; voice capture and its triggers (docs/audio.md)
    if config.display.enabled:  # OLED: a sink for events, a component for its drawing thread
        from emotiond.sinks.display import DisplaySink

        display = DisplaySink(config.display)
        daemon.sinks.append(display)
        daemon.components.append(display)
    if config.web.enabled:  # the dashboard: picture, events, state, Listen and privacy (docs/web.md)
        from emotiond.web.server import WebView

        daemon.components.append(WebView(config))
    return daemon


def _add_terminal_keys(daemon: Daemon) -> None:
    """The seed's a/p/q keys when stdin is a terminal; nothing reads stdin otherwise."""
    from emotiond.sources.keyboard import TerminalKeys

    keys = TerminalKeys.for_stdin()
    if keys is not None:
        daemon.components.append(keys)


def _install_signal_handlers(daemon: Daemon) -> None:
    def stop(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        daemon.request_stop()
        from emotiond.watchdog import arm_exit_deadline

        arm_exit_deadline()  # a hung stop() must not outlive systemd's TimeoutStopSec

    def reload(_signum: int, _frame: Any) -> None:
        log.info("received SIGHUP, re-reading the config")
        daemon.request_reload()  # done by the main loop: a signal handler must not take locks

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.output.stdout and sys.stdin.isatty() and sys.stdout.isatty():
        # a person at a terminal (the seed's live view): show the events; systemd and pipes never get here
        config = dataclasses.replace(config, output=dataclasses.replace(config.output, stdout=True))
    daemon = _build_daemon(config, config_path=args.config, persist_privacy=True)
    _add_terminal_keys(daemon)
    from emotiond.watchdog import SystemdWatchdog

    # Appended last so it is stopped first: STOPPING=1 goes out as soon as shutdown begins.
    daemon.components.append(SystemdWatchdog.from_environment(config.health.max_frame_age, config.health.status_interval))
    _install_signal_handlers(daemon)
    log.info("emotiond %s running: camera %r, device id %s", __version__, config.camera.source, config.device_id)
    return daemon.run(max_frames=args.max_frames)


def cmd_demo(args: argparse.Namespace) -> int:
    config = _config(args)
    video = Path(args.video) if args.video else SAMPLE_VIDEO
    if not video.is_file():
        raise SourceError(f"demo video {video} not found (run scripts/make_sample.py to regenerate it)")
    config = dataclasses.replace(
        config,
        camera=dataclasses.replace(config.camera, source=str(video), loop=False),
        output=dataclasses.replace(config.output, stdout=True),
    )
    from emotiond.cli_audio import attach_demo_clip, demo_config

    config, clip_seconds = demo_config(config, args.audio)  # the sample WAV as a triggered clip
    daemon = _build_daemon(config, lossless=True, pace_files=False)
    attach_demo_clip(daemon, clip_seconds)
    _add_terminal_keys(daemon)
    _install_signal_handlers(daemon)
    return daemon.run()


def cmd_bench(args: argparse.Namespace) -> int:
    from emotiond.bench import BenchError, BenchOptions, format_report, parse_size, run_bench

    try:
        width, height = parse_size(args.size)
        options = BenchOptions(
            video=Path(args.video) if args.video else SAMPLE_VIDEO, faces=args.faces, width=width, height=height,
            seconds=args.seconds, rate=args.rate, threads=args.threads,
            backend=args.backend,
            mqtt=args.mqtt, probe_ready=not args.no_ready_probe, idle=not args.no_idle,
        )
        result = run_bench(_config(args), options, args.config,
                           progress=lambda msg: print(f"bench: {msg} ...", file=sys.stderr))
    except BenchError as exc:
        print(f"emotiond: error: {exc}", file=sys.stderr)
        return EX_USAGE
    print(format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from emotiond.analyze.command import run as run_analyze

    return run_analyze(args, _config(args))


# --- entry point ---------------------------------------------------------------------------------

def _add_global_options(parser: argparse.ArgumentParser) -> None:
    """Options valid before or after the subcommand. SUPPRESS defaults: a subcommand that does not
    see the option leaves the value given before it alone (``emotiond -c FILE run``)."""
    parser.add_argument("-c", "--config", default=argparse.SUPPRESS,
                        help="config file (default: /etc/emotiond/config.toml, else the shipped config.toml)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=argparse.SUPPRESS,
                        help="overrides output.log_level")
    parser.add_argument("-v", "--verbose", dest="log_level", action="store_const", const="debug",
                        default=argparse.SUPPRESS, help="same as --log-level debug")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotiond", description="Headless emotion-recognition daemon.")
    parser.add_argument("--version", action="version", version=f"emotiond {__version__}")
    _add_global_options(parser)
    parser.set_defaults(config=None, log_level=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--max-frames", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run on the bundled sample video, print events, exit")
    p.add_argument("--video", help="another video instead of the bundled sample")
    p.add_argument("--audio", help="WAV fed as a triggered voice clip (default: samples/speech.wav; 'none': face only)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-config", help="validate the config file and exit")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("devices", help="list cameras, audio inputs (with sample rates), GPIO and I2C")
    p.add_argument("--json", action="store_true", help="one JSON document instead of text")
    p.add_argument("--no-probe", action="store_true", help="do not open cameras to read a test frame")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("models", help="list models with size, sha256, input shape, labels and a self-test")
    p.add_argument("--json", action="store_true", help="one JSON object per model")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("classify", help="faces and expressions in image files, one JSON line per image")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_classify)

    from emotiond.cli_audio import add_parsers as add_audio_parsers

    add_audio_parsers(sub, _config)  # classify-audio, trigger

    p = sub.add_parser("bench", help="time the real pipeline per stage, flat out and at a camera's rate")
    p.add_argument("--video", help="video to loop (default: the bundled sample)")
    p.add_argument("--faces", type=int, help="compose a clip with N moving faces instead of using the video")
    p.add_argument("--size", default="640x480", help="frame size WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per mode (default 10)")
    p.add_argument("--rate", type=float, default=30.0, help="camera rate for the paced run, fps (default 30)")
    p.add_argument("--threads", type=int, help="interpreter num_threads (default: models.num_threads)")
    p.add_argument("--backend", choices=BACKEND_CHOICES,
                   help="interpreter backend (default: models.backend)")
    p.add_argument("--mqtt", metavar="HOST:PORT", help="also publish through the MQTT sink to this broker")
    p.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    p.add_argument("--no-ready-probe", action="store_true", help="skip timing readiness in a fresh interpreter")
    p.add_argument("--no-idle", action="store_true", help="skip the empty-room and wake-up scenarios")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("analyze", help="offline group emotion of a recorded clip: keyframes, 4 streams, JSON/HTML report")
    p.add_argument("clip", metavar="CLIP", help="any video OpenCV can read (its audio track is used when ffmpeg is installed)")
    p.add_argument("--audio", metavar="FILE",
                   help="analyse this audio file (WAV; other formats need ffmpeg) instead of the clip's track")
    p.add_argument("--keyframes", type=int, metavar="N", help="number of keyframes (default: analyze.keyframes, 16)")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON ('-' for stdout)")
    p.add_argument("--report", metavar="OUT.html", help="write a self-contained HTML report")
    p.set_defaults(func=cmd_analyze)
    for subparser in sub.choices.values():
        _add_global_options(subparser)
    return parser


ERRORS: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, EX_CONFIG),
    (ModelError, EX_UNAVAILABLE),
    (SourceError, EX_NOINPUT),
    (MicrophoneError, EX_DATAERR),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level
    if level is None:
        try:
            level = _config(args).output.log_level
        except Exception:  # reported, with its exit status, when the command loads the config
            level = "info"
    setup_logging(level)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    except BrokenPipeError:
        return 0
    except tuple(cls for cls, _ in ERRORS) as exc:
        code = next(c for cls, c in ERRORS if isinstance(exc, cls))
        print(f"emotiond: error: {redact.redact(str(exc))}", file=sys.stderr)
        return code
    except Exception as exc:  # last resort: one line and EX_SOFTWARE; the traceback only at debug level
        log.debug("unexpected error in %s", getattr(args, "command", "?"), exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"emotiond: error: unexpected {type(exc).__name__}: {first} "
              "(a bug; --log-level debug shows where)", file=sys.stderr)
        return EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
