"""Hostile WAV input (issue 12): cut files, wrong headers, junk -> one-line MicrophoneError, exit 65/66."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest
from emotiond.cli import main
from emotiond.sources.microphone import MicrophoneError, WavFileMicrophone, read_wav
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURE = [HealthCheck.function_scoped_fixture]


def wav_bytes(frames: int, width: int = 2, channels: int = 1, rate: int = 16000, seed: int = 0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.random.default_rng(seed).integers(0, 256, frames * width * channels, np.uint8).tobytes())
    return out.getvalue()


def check_decoded(samples: np.ndarray, rate: int) -> None:
    assert samples.dtype == np.float32 and samples.ndim == 1 and samples.size > 0 and rate > 0
    assert np.all(np.isfinite(samples)) and float(np.abs(samples).max()) <= 1.0


def test_a_wav_cut_by_one_byte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes(1600)[:-1])
    with pytest.raises(MicrophoneError, match=r"truncated WAV \(header promises 3200 bytes of audio, the file holds 3199\)"):
        read_wav(path)
    with pytest.raises(MicrophoneError, match="truncated"):
        WavFileMicrophone(path).duration()


@pytest.mark.parametrize("name, content, fragment", [
    ("junk.wav", b"\x00\x01garbage" * 40, "not a PCM WAV file"),
    ("empty.wav", b"", "not a PCM WAV file"),
    ("riff-only.wav", b"RIFF\x24\x00\x00\x00WAVE", "not a PCM WAV file"),
    ("header-only.wav", wav_bytes(100)[:44], "truncated WAV"),
])
def test_broken_files_are_one_line_errors(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MicrophoneError, match=fragment) as err:
        read_wav(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_streamed_wav_with_unknown_length_is_read_whole(tmp_path: Path) -> None:
    data = bytearray(wav_bytes(1000))
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # data chunk size as written by a writer on a pipe
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(data) + b"\x01")  # and a partial last frame
    samples, rate = read_wav(path)
    assert samples.size == 1000 and rate == 16000


def test_zero_rate_or_channels_in_the_header(tmp_path: Path) -> None:
    data = bytearray(wav_bytes(100))
    data[24:28] = (0).to_bytes(4, "little")  # fmt chunk: sample rate
    path = tmp_path / "rate0.wav"
    path.write_bytes(bytes(data))
    with pytest.raises(MicrophoneError, match="invalid WAV header"):
        read_wav(path)
    with pytest.raises(MicrophoneError):
        WavFileMicrophone(path).duration()


@pytest.mark.parametrize("content, status", [(None, 66), (b"", 65), (b"not audio at all", 65), (wav_bytes(800)[:-1], 65)])
def test_classify_audio_exit_status_and_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 content: bytes | None, status: int) -> None:
    path = tmp_path / "in.wav"
    if content is not None:
        path.write_bytes(content)
    assert main(["classify-audio", str(path)]) == status
    err = capsys.readouterr().err
    assert err.startswith("emotiond: error: ") and err.count("\n") == 1 and "Traceback" not in err


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE)
@given(frames=st.integers(1, 400), width=st.integers(1, 4), channels=st.integers(1, 3), cut=st.integers(0, 64))
def test_a_cut_file_is_refused_and_a_whole_one_decodes(tmp_path: Path, frames: int, width: int, channels: int,
                                                       cut: int) -> None:
    data = wav_bytes(frames, width, channels)
    path = tmp_path / "x.wav"
    path.write_bytes(data[: len(data) - cut])
    if cut == 0:
        samples, rate = read_wav(path)
        check_decoded(samples, rate)
        assert samples.size == frames and rate == 16000
        return
    with pytest.raises(MicrophoneError) as err:
        read_wav(path)
    assert "\n" not in str(err.value)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURE)
@given(st.lists(st.tuples(st.integers(0, 47), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_headers_decode_or_raise_microphone_error(tmp_path: Path, edits: list[tuple[int, int]]) -> None:
    data = bytearray(wav_bytes(200, 2, 2))
    for offset, value in edits:
        data[offset] = value
    path = tmp_path / "h.wav"
    path.write_bytes(bytes(data))
    for call in (lambda: read_wav(path), lambda: read_wav(path, max_seconds=0.01)):
        try:
            samples, rate = call()
        except MicrophoneError as exc:
            assert "\n" not in str(exc)
        else:
            check_decoded(samples, rate)


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE)
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=200).map(lambda b: b"RIFF\x00\x01\x00\x00WAVEfmt " + b)))
def test_junk_bytes_decode_or_raise_microphone_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "j.wav"
    path.write_bytes(content)
    try:
        samples, rate = read_wav(path)
    except MicrophoneError:
        return
    check_decoded(samples, rate)
