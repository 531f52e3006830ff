"""Microphones behind one protocol: ``record(seconds) -> (float32 mono samples in [-1, 1], rate)``.

- ``PyAudioMicrophone``: a real input device through PyAudio (optional extra ``emotiond[pi]``); a
  missing module, an unknown device or an unsupported rate is a ``MicrophoneError`` naming the
  devices that do exist. The stream is opened per capture and always closed, so an unplugged USB
  microphone only fails that capture.
- ``WavFileMicrophone``: a WAV file (stdlib ``wave`` + numpy; 8/16/32-bit PCM, any channel count
  mixed to mono) for tests, ``classify-audio`` and the demo.

Resampling to a model's rate is ``emotiond.perception.resample.resample`` (Kaiser-windowed sinc,
numpy only), re-exported here.
"""

from __future__ import annotations

import logging
import struct
import wave
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emotiond.perception.resample import resample

__all__ = ["MicrophoneError", "MicrophoneSource", "PyAudioMicrophone", "WavFileMicrophone", "read_wav", "resample",
           "open_microphone"]


log = logging.getLogger(__name__)

COMMON_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)


def nearest_rate(wanted: int, supported: list[int]) -> int:
    """The supported rate to record at when ``wanted`` is not: the lowest one above it (downsampling loses
    no band the model uses), else the highest below it."""
    above = [r for r in supported if r >= wanted]
    return min(above) if above else max(supported)


class MicrophoneError(Exception):
    """The microphone (or file) cannot deliver audio; the message says why in one line."""


class MicrophoneSource(Protocol):
    def record(self, seconds: float) -> tuple[np.ndarray, int]:
        """Block for up to ``seconds`` and return (float32 mono samples, sample rate)."""


def _pcm_to_float(raw: bytes, width: int, channels: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw[: len(raw) - len(raw) % 2], "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw[: len(raw) - len(raw) % 3], np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(raw[: len(raw) - len(raw) % 4], "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise MicrophoneError(f"unsupported sample width {width * 8} bits")
    usable = len(x) - len(x) % channels  # callers pass whole frames; this only guards the reshape
    return x[:usable].reshape(-1, channels).mean(axis=1).astype(np.float32)


# What the stdlib wave module raises on malformed headers (RuntimeError: a chunk size past the end).
WAV_ERRORS = (wave.Error, EOFError, ValueError, struct.error, OverflowError, MemoryError, RuntimeError)


def _open_checked(p: Path) -> wave.Wave_read:
    """An open WAV reader whose header was checked; MicrophoneError (one line) for anything else."""
    if not p.is_file():
        raise MicrophoneError(f"{p}: no such file" if not p.exists() else f"{p}: not a regular file")
    try:
        w = wave.open(str(p), "rb")
    except WAV_ERRORS as exc:
        raise MicrophoneError(f"{p}: not a PCM WAV file ({str(exc) or 'truncated header'})") from None
    except OSError as exc:
        raise MicrophoneError(f"{p}: cannot read ({exc.strerror or exc})") from None
    rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
    if rate <= 0 or channels <= 0 or width not in (1, 2, 3, 4):
        w.close()
        raise MicrophoneError(f"{p}: invalid WAV header (rate {rate}, channels {channels}, {width * 8}-bit samples)")
    return w


def read_wav(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """(float32 mono samples, rate) from a PCM WAV file; MicrophoneError for anything unreadable.

    A file shorter than its header says (cut off mid-copy) is refused rather than half-read: the
    header is then not to be trusted either.
    """
    p = Path(path)
    with _open_checked(p) as w:
        rate, width, channels, total = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
        n = total if max_seconds is None else min(total, int(round(max_seconds * rate)))
        try:
            raw = w.readframes(n)
        except WAV_ERRORS as exc:
            raise MicrophoneError(f"{p}: not a PCM WAV file ({str(exc) or 'truncated data'})") from None
        except OSError as exc:
            raise MicrophoneError(f"{p}: cannot read ({exc.strerror or exc})") from None
    frame_bytes = width * channels
    streamed = total == 0xFFFFFFFF // frame_bytes  # size field left at "unknown" by a writer on a pipe
    if streamed:
        raw = raw[: len(raw) - len(raw) % frame_bytes]
    elif len(raw) < n * frame_bytes:
        raise MicrophoneError(
            f"{p}: truncated WAV (header promises {n * frame_bytes} bytes of audio, the file holds {len(raw)})"
        )
    samples = _pcm_to_float(raw, width, channels)
    if samples.size == 0:
        raise MicrophoneError(f"{p}: contains no audio")
    return samples, rate


class WavFileMicrophone:
    """Plays a WAV file as if it were recorded: the first ``seconds`` of it (all of it if shorter)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def record(self, seconds: float) -> tuple[np.ndarray, int]:
        return read_wav(self.path, max_seconds=seconds)

    def duration(self) -> float:
        read_wav(self.path)  # the whole file must decode, not only its header
        with _open_checked(self.path) as w:
            return w.getnframes() / float(w.getframerate())


class PyAudioMicrophone:
    """A PyAudio input device; ``device`` is "" (the default input), an index, or part of a name."""

    def __init__(self, device: str = "", sample_rate: int = 16000, chunk: int = 1024, pyaudio_module: Any = None,
                 fallback: bool = False) -> None:
        self.device = device
        self.sample_rate = sample_rate  # the rate asked for; with ``fallback`` the nearest supported one is used
        self.fallback = fallback
        self.rate = sample_rate  # the rate of the last recording
        self.chunk = chunk
        self._pyaudio = pyaudio_module

    def _module(self) -> Any:
        if self._pyaudio is None:
            try:
                import pyaudio
            except ImportError:
                raise MicrophoneError(
                    "PyAudio is not installed: pip install 'emotiond[pi]' (needs apt package portaudio19-dev to build), "
                    "or set [audio] source to a WAV file"
                ) from None
            self._pyaudio = pyaudio
        return self._pyaudio

    @staticmethod
    def _inputs(pa: Any) -> list[tuple[int, str, int]]:
        found = []
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            if int(info.get("maxInputChannels", 0)) > 0:
                found.append((i, str(info.get("name", f"device {i}")), int(info.get("defaultSampleRate", 0))))
        return found

    @staticmethod
    def _describe(inputs: list[tuple[int, str, int]]) -> str:
        if not inputs:
            return "no input devices found"
        return "input devices: " + "; ".join(f"{i}: {name} ({rate} Hz)" for i, name, rate in inputs)

    def _pick(self, pa: Any, inputs: list[tuple[int, str, int]]) -> int | None:
        if not inputs:
            raise MicrophoneError(f"no microphone: {self._describe(inputs)}")
        if self.device == "":
            return None  # PortAudio's default input
        if self.device.isdigit():
            index = int(self.device)
            if index not in [i for i, _, _ in inputs]:
                raise MicrophoneError(f"audio device {index} is not an input device; {self._describe(inputs)}")
            return index
        matches = [i for i, name, _ in inputs if self.device.lower() in name.lower()]
        if not matches:
            raise MicrophoneError(f"no input device matching {self.device!r}; {self._describe(inputs)}")
        return matches[0]

    @staticmethod
    def _refusal(pa: Any, pyaudio: Any, device_index: int, rate: int) -> str | None:
        """None if the device records mono 16-bit at ``rate``, else PortAudio's reason."""
        try:
            pa.is_format_supported(rate, input_device=device_index, input_channels=1, input_format=pyaudio.paInt16)
        except (ValueError, OSError) as exc:
            return str(exc) or type(exc).__name__
        return None

    def _rate(self, pa: Any, pyaudio: Any, device_index: int, inputs: list[tuple[int, str, int]]) -> int:
        """``sample_rate`` if the device takes it; with ``fallback`` the nearest rate it does take (logged)."""
        why = self._refusal(pa, pyaudio, device_index, self.sample_rate)
        if why is None:
            self.rate = self.sample_rate
            return self.rate
        default = next((r for i, _, r in inputs if i == device_index), 0)
        candidates = sorted({*COMMON_RATES, *([default] if default > 0 else [])})
        supported = [r for r in candidates if self._refusal(pa, pyaudio, device_index, r) is None] if self.fallback else []
        if not supported:
            extra = " nor at any common rate" if self.fallback else ""
            raise MicrophoneError(f"microphone cannot record mono 16-bit at {self.sample_rate} Hz{extra} ({why}); "
                                  f"{self._describe(inputs)}")
        rate = nearest_rate(self.sample_rate, supported)
        log.info("microphone does not take %d Hz (the voice model's rate): recording at %d Hz and resampling "
                 "(it takes %s Hz)", self.sample_rate, rate, ", ".join(map(str, supported)))
        self.rate = rate
        return rate

    def record(self, seconds: float) -> tuple[np.ndarray, int]:
        pyaudio = self._module()
        pa = pyaudio.PyAudio()
        stream = None
        try:
            inputs = self._inputs(pa)
            index = self._pick(pa, inputs)
            try:
                device_index = index if index is not None else int(pa.get_default_input_device_info()["index"])
            except (OSError, ValueError, KeyError) as exc:
                raise MicrophoneError(f"no default microphone ({exc}); {self._describe(inputs)}") from None
            rate = self._rate(pa, pyaudio, device_index, inputs)
            try:
                stream = pa.open(format=pyaudio.paInt16, channels=1, rate=rate, input=True,
                                 input_device_index=index, frames_per_buffer=self.chunk)
            except (OSError, ValueError) as exc:
                raise MicrophoneError(f"cannot open microphone ({exc}); {self._describe(inputs)}") from None
            wanted = int(round(seconds * rate))
            chunks: list[bytes] = []
            got = 0
            while got < wanted:
                n = min(self.chunk, wanted - got)
                try:
                    data = stream.read(n, exception_on_overflow=False)
                except OSError as exc:
                    raise MicrophoneError(f"microphone failed after {got / rate:.2f} s ({exc})") from None
                chunks.append(data)
                got += len(data) // 2
            return _pcm_to_float(b"".join(chunks), 2, 1), rate
        finally:
            if stream is not None:
                try:
                    stream.stop_stream()
                    stream.close()
                except Exception:  # closing a dead device must not mask the real error
                    pass
            pa.terminate()


def open_microphone(source: str, device: str = "", sample_rate: int = 16000, fallback: bool = False) -> MicrophoneSource:
    """``"pyaudio"``: the sound card (``fallback``: the nearest supported rate if ``sample_rate`` is not);
    anything else is a WAV file path (recorded at the file's own rate)."""
    if source == "pyaudio":
        return PyAudioMicrophone(device, sample_rate, fallback=fallback)
    return WavFileMicrophone(source)
