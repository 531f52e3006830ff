"""The audio side of the command line: ``classify-audio``, ``trigger``, the demo's sample clip, and
the daemon wiring of audio capture, triggers and the fusion stage (called from cli._build_daemon)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from emotiond.config import Config, sample_path
from emotiond.daemon import Daemon
from emotiond.exitcodes import EX_DATAERR, EX_FAILED, EX_NOINPUT, EX_OK, EX_UNAVAILABLE

SAMPLE_SPEECH = sample_path("speech.wav")


def add_audio(daemon: Daemon, config: Config) -> None:
    """Fusion stage always (face-only is its normal state); capture + triggers when [audio] is enabled."""
    from emotiond.fusion.stage import FusionStage

    daemon.stages.append(FusionStage.from_config(config))
    if not config.audio.enabled:
        return
    from emotiond.audio_capture import AudioCapture
    from emotiond.perception.audio_pipeline import AudioAnalyzer
    from emotiond.sources import triggers as trig

    t = config.triggers
    triggers: list[trig.Trigger] = []
    if t.gpio_enabled:
        ctx = daemon.context
        long_press = (lambda: ctx.set_privacy(not ctx.privacy)) if t.long_press_action == "privacy" else None
        triggers.append(trig.GpioButtonTrigger(t.gpio_pin, t.pull_up, t.bounce_time, t.hold_time,
                                               emit=daemon.emit, on_long_press=long_press))
    if t.signal:
        triggers.append(trig.SignalTrigger())
    if t.control_socket:
        triggers.append(trig.ControlSocketTrigger(t.control_socket_path or None, daemon.command))
    daemon.components.append(AudioCapture(config.audio, AudioAnalyzer.from_config(config), triggers=triggers))


def demo_config(config: Config, audio: str | None) -> tuple[Config, float | None]:
    """The demo's config: audio from the sample WAV, no GPIO/signal/socket triggers; and the clip length."""
    from emotiond.sources.camera import SourceError
    from emotiond.sources.microphone import MicrophoneError, WavFileMicrophone

    if audio == "none":
        return dataclasses.replace(config, audio=dataclasses.replace(config.audio, enabled=False)), None
    path = Path(audio) if audio else SAMPLE_SPEECH
    if not path.is_file():
        raise SourceError(f"demo audio {path} not found (run scripts/make_speech_sample.py to regenerate it)")
    try:
        length = WavFileMicrophone(path).duration()
    except MicrophoneError as exc:
        raise SourceError(str(exc)) from None
    a = config.audio
    duration = min(max(length, a.min_duration), a.max_duration)
    return dataclasses.replace(
        config,
        audio=dataclasses.replace(a, enabled=True, source=str(path)),
        triggers=dataclasses.replace(config.triggers, gpio_enabled=False, signal=False, control_socket=False),
    ), duration


def attach_demo_clip(daemon: Daemon, duration: float | None) -> None:
    from emotiond.audio_capture import AudioCapture, DemoClip

    capture = next((c for c in daemon.components if isinstance(c, AudioCapture)), None)
    if capture is not None and duration is not None:
        daemon.context.add_loop_hook(DemoClip(capture, duration))


def cmd_classify_audio(args: argparse.Namespace, config: Config) -> int:
    from emotiond.perception.audio_pipeline import AudioAnalyzer
    from emotiond.sources.microphone import MicrophoneError, read_wav

    path = Path(args.wav)
    try:
        samples, rate = read_wav(path)
    except MicrophoneError as exc:
        print(f"emotiond: error: {exc}", file=sys.stderr)
        return EX_NOINPUT if not path.exists() else EX_DATAERR
    analyzer = AudioAnalyzer.from_config(config, baseline=False)
    event = analyzer.analyse(samples, rate, "cli")
    out = {"file": str(path), **event.to_dict()}
    if analyzer.last_vad is not None:
        out["vad"] = analyzer.last_vad.to_dict()
    print(json.dumps(out))
    return 0 if event.status in ("ok", "no_speech") else EX_DATAERR


def cmd_trigger(args: argparse.Namespace, config: Config) -> int:
    from emotiond.sources.triggers import default_socket_path, send_command

    path = Path(args.socket or config.triggers.control_socket_path or default_socket_path())
    request: dict[str, Any] = {"command": "capture_audio", "trigger": "cli"}
    if args.duration is not None:
        request["duration"] = args.duration
    if args.wait:
        request["wait"] = True
    try:
        reply = send_command(path, request, timeout=(args.duration or config.audio.max_duration) + 40.0)
    except FileNotFoundError:
        print(f"emotiond: error: no control socket at {path} (is emotiond running with [triggers] control_socket = true?)",
              file=sys.stderr)
        return EX_UNAVAILABLE
    except (OSError, ValueError) as exc:
        print(f"emotiond: error: {path}: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    print(json.dumps(reply))
    return EX_OK if reply.get("ok") and reply.get("accepted", True) else EX_FAILED


def add_parsers(sub: Any, config_loader: Any) -> None:
    p = sub.add_parser("classify-audio", help="vocal emotion, prosody and VAD of a WAV file as one JSON line")
    p.add_argument("wav", metavar="FILE.wav")
    p.set_defaults(func=lambda a: cmd_classify_audio(a, config_loader(a)))

    p = sub.add_parser("trigger", help="ask the running daemon to record and classify a voice clip")
    p.add_argument("--duration", type=float, help="seconds to record (default: [audio] duration)")
    p.add_argument("--socket", help="control socket path (default: [triggers] control_socket_path)")
    p.add_argument("--wait", action="store_true", help="wait for the result and print it")
    p.set_defaults(func=lambda a: cmd_trigger(a, config_loader(a)))
