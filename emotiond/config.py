"""Configuration: frozen dataclasses loaded from TOML and validated before anything starts.

Each section is a frozen dataclass; a field's metadata carries its allowed range or choices, so the
one generic validator below can name the file, the key and what was expected for every mistake.
Environment variables ``EMOTIOND_<SECTION>__<KEY>`` override single keys (value parsed as TOML).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotiond.backends import BACKEND_CHOICES
from emotiond.redact import redact

PACKAGE_DIR = Path(__file__).resolve().parent
# A source checkout keeps models/ beside the package; a wheel install puts them under share/emotiond.
_SHARE_DIR = Path(sys.prefix) / "share" / "emotiond"
DEFAULT_MODELS_DIR = next(
    (d for d in (PACKAGE_DIR.parent / "models", _SHARE_DIR / "models") if (d / "expression.json").is_file()),
    PACKAGE_DIR.parent / "models",
)
ENV_PREFIX = "EMOTIOND_"
log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A configuration mistake; the message is one line naming the file, the key and the expectation.

    Redacted on creation, since it may quote a value such as a camera URL with a password.
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"range": (lo, hi)}


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


# A string key that must name something: "" (or only blanks) would pass `check-config` and fail at start.
REQUIRED: dict[str, Any] = {"required": True}


@dataclass(frozen=True)
class DeviceConfig:
    id: str = ""  # empty: a hash of machine_id_file, else the hostname (emotiond.identity)
    name: str = field(default="emotiond", metadata=REQUIRED)
    machine_id_file: str = "/etc/machine-id"  # empty: use the hostname
    # where state that must survive a restart lives (privacy mode); empty: $STATE_DIRECTORY (systemd's
    # StateDirectory=), else $XDG_STATE_HOME/emotiond or ~/.local/state/emotiond
    state_dir: str = ""

    @property
    def state_path(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir)
        if os.environ.get("STATE_DIRECTORY"):  # may list several, colon-separated: the first is ours
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "emotiond"


@dataclass(frozen=True)
class PrivacyConfig:
    """Privacy mode (camera closed, nothing analysed); it survives restarts (see docs/mqtt.md)."""

    # false: only the physical button (triggers.long_press_action = "privacy") can end privacy mode;
    # MQTT, Home Assistant and the control socket get an error answer when they try
    remote_off: bool = True


@dataclass(frozen=True)
class CameraConfig:
    source: str = field(default="0", metadata=REQUIRED)
    width: int = field(default=640, metadata=_range(16, 4096))
    height: int = field(default=480, metadata=_range(16, 4096))
    fps: float = field(default=30.0, metadata=_range(1, 240))
    loop: bool = False
    reconnect_seconds: float = field(default=5.0, metadata=_range(0.1, 600))


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = ""  # empty: the models/ folder shipped with emotiond
    backend: str = field(default="auto", metadata=_choices(*BACKEND_CHOICES))
    num_threads: int = field(default=1, metadata=_range(1, 16))
    face_detector: str = field(default="face_detector.json", metadata=REQUIRED)
    # used when faces.detector = "blazeface_full"
    face_detector_full: str = field(default="face_detector_full.json", metadata=REQUIRED)
    expression: str = field(default="expression.json", metadata=REQUIRED)
    audio_emotion: str = field(default="audio_emotion.json", metadata=REQUIRED)


@dataclass(frozen=True)
class FacesConfig:
    detector: str = field(default="blazeface", metadata=_choices("blazeface", "blazeface_full", "haar"))
    detect_every: int = field(default=5, metadata=_range(1, 1000))
    min_score: float = field(default=0.6, metadata=_range(0.0, 1.0))
    max_faces: int = field(default=4, metadata=_range(1, 64))
    hold_frames: int = field(default=15, metadata=_range(0, 10000))
    min_face_px: int = field(default=24, metadata=_range(4, 4096))
    match_iou: float = field(default=0.3, metadata=_range(0.0, 1.0))


@dataclass(frozen=True)
class MotionConfig:
    """The motion gate in front of detection (perception/motion.py)."""

    enabled: bool = True
    idle_fps: float = field(default=2.0, metadata=_range(0.5, 60))  # analysis rate with no face and no motion
    idle_after: int = field(default=30, metadata=_range(1, 100000))  # still analysed frames before going idle
    threshold: float = field(default=20.0, metadata=_range(1, 255))  # grey levels, after dividing out global gain
    min_area: float = field(default=0.005, metadata=_range(0.0001, 1.0))  # share of the picture that must change


@dataclass(frozen=True)
class ExpressionConfig:
    every: int = field(default=10, metadata=_range(1, 1000))
    smoothing: str = field(default="mean", metadata=_choices("mean", "ema"))
    history: int = field(default=5, metadata=_range(1, 1000))
    ema_alpha: float = field(default=0.4, metadata=_range(0.01, 1.0))
    uncertain_below: float = field(default=0.4, metadata=_range(0.0, 1.0))
    face_margin: float = field(default=0.1, metadata=_range(0.0, 1.0))
    mirror_average: bool = True  # classify the crop and its mirror image, average the probabilities
    # crops of these sizes (x the face box) are classified and averaged: one crop's reading flips on
    # a few pixels of box jitter, the mean of three does not (benchmarks/RESULTS.md, session 4)
    crop_scales: tuple[float, ...] = field(default=(1.0, 0.88, 1.12), metadata=_range(0.5, 2.0))
    min_quality: float = field(default=0.3, metadata=_range(0.0, 1.0))  # below: label "uncertain" + reason
    # ... unless the reading is at least this sure, and surer the poorer the view (the bar rises from
    # this at min_quality to never at quality 0; FacePipeline.needed_confidence). 1.0: never read.
    sure_confidence: float = field(default=0.8, metadata=_range(0.0, 1.0))
    # find each face again in a view zoomed on it before reading it, so the eye line that levels the
    # crop is measured at a useful size (BlazeFace only: one more detector run per reading)
    zoom_align: bool = True

    def validate(self) -> None:
        if not 1 <= len(self.crop_scales) <= 5:
            raise ValueError(f"crop_scales: give 1 to 5 sizes, got {len(self.crop_scales)}")


@dataclass(frozen=True)
class OutputConfig:
    stdout: bool = False  # off: under systemd stdout is the journal on the SD card (see config.toml)
    log_level: str = field(default="info", metadata=_choices("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class HealthConfig:
    # The pipeline is unhealthy (no systemd watchdog pings) when the newest frame is older than this.
    max_frame_age: float = field(default=10.0, metadata=_range(1.0, 3600.0))
    status_interval: float = field(default=10.0, metadata=_range(1.0, 3600.0))  # seconds between STATUS= lines


@dataclass(frozen=True)
class DisplayConfig:
    enabled: bool = False
    driver: str = field(default="ssd1306", metadata=_choices("ssd1306", "sh1106"))
    i2c_port: int = field(default=1, metadata=_range(0, 255))
    i2c_address: int = field(default=0x3C, metadata=_range(0x03, 0x77))
    rotate: int = field(default=0, metadata={"choices": (0, 2)})  # 2: mounted upside down
    contrast: int = field(default=255, metadata=_range(0, 255))
    refresh_seconds: float = field(default=0.5, metadata=_range(0.05, 60.0))


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other host name may resolve to a public address


@dataclass(frozen=True)
class WebConfig:
    """The web dashboard (emotiond.web): camera with boxes, voice, fusion, timeline; see docs/web.md."""

    enabled: bool = False  # off by default: it shows the camera picture to whoever can connect
    host: str = field(default="127.0.0.1", metadata=REQUIRED)
    port: int = field(default=8088, metadata=_range(0, 65535))
    password_env: str = ""  # HTTP Basic, user "emotiond"; required beyond loopback
    password_file: str = ""  # relative names are looked up in $CREDENTIALS_DIRECTORY (systemd)
    fps: float = field(default=5.0, metadata=_range(0.2, 30.0))
    jpeg_quality: int = field(default=70, metadata=_range(10, 95))
    max_viewers: int = field(default=4, metadata=_range(1, 64))  # open picture streams and event streams, each
    max_connections: int = field(default=16, metadata=_range(2, 256))
    request_timeout: float = field(default=10.0, metadata=_range(1.0, 600.0))
    history_seconds: float = field(default=300.0, metadata=_range(10.0, 3600.0))  # the page's timeline

    def validate(self) -> None:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.enabled and not is_loopback(self.host) and not (self.password_env or self.password_file):
            raise ValueError(f"host {self.host!r} is reachable beyond this machine: set password_env or password_file")
        if self.max_viewers * 2 > self.max_connections:
            raise ValueError(f"max_connections ({self.max_connections}) must leave room for 2 x max_viewers ({self.max_viewers})")


@dataclass(frozen=True)
class MqttConfig:
    """MQTT publishing, commands and Home Assistant discovery (see docs/mqtt.md)."""

    enabled: bool = False  # off by default so the demo runs without a broker
    host: str = "localhost"
    port: int = field(default=1883, metadata=_range(1, 65535))
    base_topic: str = ""  # empty: emotiond/<device id>
    client_id: str = ""  # empty: emotiond-<device id>
    keepalive: int = field(default=30, metadata=_range(5, 3600))
    username: str = ""
    password_env: str = ""  # name of an environment variable holding the password
    password_file: str = ""  # relative names are looked up in $CREDENTIALS_DIRECTORY (systemd)
    tls: bool = False  # TLS with the system CA store (implied by tls_ca)
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    queue_size: int = field(default=1000, metadata=_range(1, 1_000_000))
    spool_file: str = ""  # empty: $STATE_DIRECTORY/mqtt-spool.jsonl under systemd, else no journal
    min_interval: float = field(default=1.0, metadata=_range(0.0, 3600.0))
    min_dwell: float = field(default=2.0, metadata=_range(0.0, 3600.0))
    heartbeat: float = field(default=60.0, metadata=_range(1.0, 86400.0))
    max_command_bytes: int = field(default=4096, metadata=_range(64, 1_048_576))
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    snapshots: bool = False
    reconnect_min: float = field(default=1.0, metadata=_range(0.1, 3600.0))
    reconnect_max: float = field(default=60.0, metadata=_range(0.1, 3600.0))
    stop_timeout: float = field(default=3.0, metadata=_range(0.0, 60.0))
    # Home Assistant's event entity ignores events older than this many seconds (0: never stale)
    stale_after: float = field(default=120.0, metadata=_range(0.0, 86400.0))

    def validate(self) -> None:
        if self.enabled and not self.host.strip():
            raise ValueError("key 'mqtt.host' must not be empty when MQTT is enabled")
        if self.reconnect_min > self.reconnect_max:
            raise ValueError(f"reconnect_min ({self.reconnect_min}) must not exceed reconnect_max ({self.reconnect_max})")
        for key in ("base_topic", "discovery_prefix"):
            value = getattr(self, key)
            if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/") or "//" in value:
                raise ValueError(f"{key} {value!r}: no '+', '#', NUL, empty levels or leading/trailing '/'")
        if self.discovery and not self.discovery_prefix:
            raise ValueError("discovery_prefix must not be empty when discovery is on")
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.tls_key and not self.tls_cert:
            raise ValueError("tls_key needs tls_cert")
        if len(self.client_id) > 128:
            raise ValueError("client_id is longer than 128 characters")


@dataclass(frozen=True)
class AnalyzeConfig:
    """`emotiond analyze`: offline clip analysis (keyframes, four streams, fusion)."""

    keyframes: int = field(default=16, metadata=_range(1, 256))
    score_fps: float = field(default=4.0, metadata=_range(0.1, 60.0))
    sentiment_threshold: float = field(default=0.5, metadata=_range(0.0, 1.0))
    flow_frames: int = field(default=8, metadata=_range(1, 64))
    max_faces: int = field(default=16, metadata=_range(1, 64))
    tiles: int = field(default=2, metadata=_range(1, 4))
    min_face_score: float = field(default=0.7, metadata=_range(0.0, 1.0))
    weight_faces: float = field(default=0.4, metadata=_range(0.0, 1000.0))
    weight_scene: float = field(default=0.2, metadata=_range(0.0, 1000.0))
    weight_audio: float = field(default=0.4, metadata=_range(0.0, 1000.0))
    fusion_model: str = field(default="analyze_fusion.json", metadata=REQUIRED)

    def validate(self) -> None:
        if self.weight_faces + self.weight_scene + self.weight_audio <= 0:
            raise ValueError("weight_faces, weight_scene and weight_audio must not all be 0")


@dataclass(frozen=True)
class AudioConfig:
    """On-demand voice capture and its analysis (see docs/audio.md)."""

    enabled: bool = True
    source: str = field(default="pyaudio", metadata=REQUIRED)  # "pyaudio" (sound card) or the path of a WAV file
    device: str = ""  # PyAudio input: "" default, an index, or part of the device name
    # capture rate; 0: the voice model's rate (the nearest the microphone takes, if not that one)
    sample_rate: int = field(default=0, metadata=_range(0, 192000))
    duration: float = field(default=2.0, metadata=_range(0.1, 60.0))  # seconds per capture (seed: 2)
    min_duration: float = field(default=0.5, metadata=_range(0.1, 60.0))
    max_duration: float = field(default=10.0, metadata=_range(0.1, 60.0))
    vad_aggressiveness: int = field(default=2, metadata=_range(0, 3))
    min_voiced_ratio: float = field(default=0.2, metadata=_range(0.0, 1.0))
    uncertain_below: float = field(default=0.4, metadata=_range(0.0, 1.0))
    baseline_file: str = ""  # empty: the arousal baseline lives in memory only
    baseline_size: int = field(default=50, metadata=_range(2, 10000))
    baseline_min_clips: int = field(default=3, metadata=_range(1, 1000))

    def validate(self) -> None:
        if 0 < self.sample_rate < 8000:
            raise ValueError(f"sample_rate must be 0 (the voice model's rate) or 8000-192000 Hz, "
                             f"got {self.sample_rate}")
        if not self.min_duration <= self.duration <= self.max_duration:
            raise ValueError(
                f"duration ({self.duration}) must lie between min_duration ({self.min_duration}) "
                f"and max_duration ({self.max_duration})"
            )


@dataclass(frozen=True)
class TriggersConfig:
    """What starts a voice capture besides MQTT: a GPIO button, SIGUSR1, the local control socket."""

    gpio_enabled: bool = False
    gpio_pin: int = field(default=17, metadata=_range(0, 63))  # BCM numbering
    pull_up: bool = True  # button wired between the pin and ground
    bounce_time: float = field(default=0.05, metadata=_range(0.0, 5.0))
    hold_time: float = field(default=2.0, metadata=_range(0.1, 60.0))
    long_press_action: str = field(default="privacy", metadata=_choices("privacy", "none"))
    signal: bool = True  # SIGUSR1 starts a capture
    control_socket: bool = True
    control_socket_path: str = ""  # empty: $RUNTIME_DIRECTORY/control.sock, /run/emotiond/, else /tmp


@dataclass(frozen=True)
class FusionConfig:
    """Face + voice fusion on the 7-class space, valence/arousal, smoothing (see docs/audio.md)."""

    face_weight: float = field(default=0.6, metadata=_range(0.0, 1.0))
    audio_weight: float = field(default=0.4, metadata=_range(0.0, 1.0))  # a validated voice model's categorical weight
    # categorical weight of a voice model whose manifest says "unvalidated": by default it is published, not fused
    unvalidated_audio_weight: float = field(default=0.0, metadata=_range(0.0, 1.0))
    vocal_arousal_weight: float = field(default=0.4, metadata=_range(0.0, 1.0))  # prosody's share of the arousal
    audio_validity_s: float = field(default=10.0, metadata=_range(0.1, 3600.0))
    smoothing: str = field(default="mean", metadata=_choices("mean", "ema"))
    history: int = field(default=5, metadata=_range(1, 1000))
    ema_alpha: float = field(default=0.4, metadata=_range(0.01, 1.0))
    uncertain_below: float = field(default=0.4, metadata=_range(0.0, 1.0))
    model: str = ""  # optional fusion model manifest in the models dir; empty: circumplex projection

    def validate(self) -> None:
        if self.face_weight + self.audio_weight <= 0:
            raise ValueError("face_weight and audio_weight must not both be 0")


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = DeviceConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    camera: CameraConfig = CameraConfig()
    models: ModelsConfig = ModelsConfig()
    faces: FacesConfig = FacesConfig()
    motion: MotionConfig = MotionConfig()
    expression: ExpressionConfig = ExpressionConfig()
    output: OutputConfig = OutputConfig()
    mqtt: MqttConfig = MqttConfig()
    health: HealthConfig = HealthConfig()
    display: DisplayConfig = DisplayConfig()
    web: WebConfig = WebConfig()
    audio: AudioConfig = AudioConfig()
    triggers: TriggersConfig = TriggersConfig()
    fusion: FusionConfig = FusionConfig()
    analyze: AnalyzeConfig = AnalyzeConfig()

    @property
    def models_dir(self) -> Path:
        return Path(self.models.dir) if self.models.dir else DEFAULT_MODELS_DIR

    @property
    def device_id(self) -> str:
        """``[device] id`` if set, else a stable hash of the machine id (hostname as a fallback)."""
        from emotiond.identity import default_device_id, sanitize

        return sanitize(self.device.id) if self.device.id else default_device_id(self.device.machine_id_file)


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(tp) in (tuple, list):
        (inner, *_rest) = typing.get_args(tp) or (Any,)
        return f"a list of {_type_name(inner).removeprefix('a ').removeprefix('an ')}s"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check one value against a field type; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(t) for t in typing.get_args(tp))}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected nothing, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        inner = typing.get_args(tp)[0] if typing.get_args(tp) else Any
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # nan slips through every range check (nan < lo is False)
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            if "\0" in value:
                raise ConfigError(f"{where}: NUL characters are not allowed, got {value!r}")
            return value
    elif isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _check_limits(value: Any, meta: Mapping[str, Any], where: str) -> None:
    if meta.get("required") and not str(value).strip():
        raise ConfigError(f"{where}: must not be empty, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{where}: expected one of {', '.join(map(repr, meta['choices']))}, got {value!r}")
    if "range" in meta:
        lo, hi = meta["range"]
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(f"{where}: expected a value from {lo} to {hi}, got {value!r}")


def _build(cls: type, data: Mapping[str, Any], origin: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{origin}: unknown key '{prefix}{key}' (known: {', '.join(sorted(known))})"
            )
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            continue
        where = f"{origin}: key '{prefix}{name}'"
        tp = hints[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if not isinstance(data[name], Mapping):
                raise ConfigError(f"{where}: expected a [{prefix}{name}] table, got {data[name]!r}")
            kwargs[name] = _build(tp, data[name], origin, f"{prefix}{name}.")
            continue
        value = _coerce(data[name], tp, where)
        _check_limits(value, f.metadata, where)
        kwargs[name] = value
    instance = cls(**kwargs)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(f"{origin}: {prefix.rstrip('.') or 'config'}: {exc}") from None
    return instance


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``EMOTIOND_SECTION__KEY=value`` variables applied."""
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if not section or not key:
            continue
        table = merged.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"environment {name}: '{section}' is not a table")
        table[key] = _parse_env_value(raw)
    return merged


DEPRECATED_SECTIONS = {"debug_view": "web"}  # old name -> new name; same keys; accepted until 0.3


def _migrate(data: Mapping[str, Any], origin: str) -> Mapping[str, Any]:
    """Rename deprecated sections (``[debug_view]`` is now ``[web]``), logging one note each."""
    out = dict(data)
    for old, new in DEPRECATED_SECTIONS.items():
        if old not in out:
            continue
        if new in out:
            raise ConfigError(f"{origin}: [{old}] is the old name of [{new}]: keep only [{new}]")
        log.warning("%s: [%s] is deprecated, read as [%s] (rename it; the keys are the same)", origin, old, new)
        out[new] = out.pop(old)
    return out


def config_from_mapping(
    data: Mapping[str, Any], origin: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    data = _migrate(data, origin)
    if environ is not None and any(k.startswith(ENV_PREFIX) and "__" in k for k in environ):
        _build(Config, data, origin, "")  # mistakes in the file are reported against the file
        data = _migrate(apply_env_overrides(dict(data), environ), f"{origin} with EMOTIOND_* overrides")
        origin = f"{origin} with EMOTIOND_* overrides"
    return _build(Config, data, origin, "")


def load_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate a config file (None: built-in defaults); raises ConfigError on any mistake."""
    env = os.environ if environ is None else environ
    if path is None:
        return config_from_mapping({}, "<defaults>", env)
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except PermissionError:
        raise ConfigError(f"{p}: permission denied") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:  # a binary or Latin-1 file: TOML is UTF-8
        raise ConfigError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return config_from_mapping(data, str(p), env)


def sample_path(name: str) -> Path:
    """A bundled sample: beside the package in a checkout, under share/emotiond in a wheel install."""
    for folder in (PACKAGE_DIR.parent / "samples", _SHARE_DIR / "samples"):
        if (folder / name).is_file():
            return folder / name
    return PACKAGE_DIR.parent / "samples" / name


def default_config_path() -> Path | None:
    """The config file used when none is given: /etc/emotiond, then the shipped default."""
    for candidate in (Path("/etc/emotiond/config.toml"), PACKAGE_DIR.parent / "config.toml", _SHARE_DIR / "config.toml"):
        if candidate.is_file():
            return candidate
    return None
