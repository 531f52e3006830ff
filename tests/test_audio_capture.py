"""The capture component: its own thread, busy triggers, broken or missing microphones, the
capture_audio command; and the microphone sources (WAV formats, PyAudio errors)."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from emotiond.audio_capture import AudioCapture
from emotiond.config import load_config
from emotiond.daemon import CommandError
from emotiond.events import AudioEvent
from emotiond.perception.audio_pipeline import AudioAnalyzer
from emotiond.sources.microphone import MicrophoneError, PyAudioMicrophone, WavFileMicrophone, read_wav

from conftest import ROOT
from espeak import SENTENCES, speak, write_wav

# --- a PyAudio stand-in for the absent sound card ---------------------------------------------------------

class FakeStream:
    def __init__(self, owner, rate):
        self.owner, self.rate, self.reads, self.closed = owner, rate, 0, False

    def read(self, n, exception_on_overflow=True):
        self.owner.reading.set()
        if self.owner.gate is not None:
            assert self.owner.gate.wait(10), "test never released the microphone"
        self.reads += 1
        if self.owner.fail_after is not None and self.reads > self.owner.fail_after:
            raise OSError(-9981, "Input overflowed / device unavailable")
        chunk = self.owner.signal[self.owner.pos : self.owner.pos + n]
        self.owner.pos += n
        chunk = np.pad(chunk, (0, n - len(chunk)))
        return (chunk * 32767).astype("<i2").tobytes()

    def stop_stream(self):
        pass

    def close(self):
        self.closed = True


class FakePyAudioModule:
    paInt16 = 8

    def __init__(self, devices=({"name": "USB PnP Sound Device", "maxInputChannels": 1, "defaultSampleRate": 48000},),
                 rates=(16000, 48000), signal=None, fail_after=None, gate=None):
        self.devices, self.rates = list(devices), rates
        self.signal = np.zeros(0) if signal is None else signal
        self.fail_after, self.gate, self.pos = fail_after, gate, 0
        self.reading = threading.Event()
        self.streams: list[FakeStream] = []
        self.terminated = 0
        module = self

        class PyAudio:
            def get_device_count(self):
                return len(module.devices)

            def get_device_info_by_index(self, i):
                return module.devices[i]

            def get_default_input_device_info(self):
                for i, d in enumerate(module.devices):
                    if d["maxInputChannels"] > 0:
                        return {"index": i, **d}
                raise OSError(-9996, "No Default Input Device Available")

            def is_format_supported(self, rate, input_device=None, input_channels=1, input_format=None):
                if rate not in module.rates:
                    raise ValueError("Invalid sample rate")
                return True

            def open(self, format, channels, rate, input, input_device_index=None, frames_per_buffer=1024):
                stream = FakeStream(module, rate)
                module.streams.append(stream)
                return stream

            def terminate(self):
                module.terminated += 1

        self.PyAudio = PyAudio


# --- microphone sources -------------------------------------------------------------------------------

def test_pyaudio_records_and_closes():
    sig = 0.25 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
    fake = FakePyAudioModule(signal=sig)
    y, sr = PyAudioMicrophone("USB", 16000, pyaudio_module=fake).record(0.5)
    assert sr == 16000 and len(y) == 8000 and y.dtype == np.float32
    assert np.allclose(y, sig[:8000], atol=1e-4)
    assert fake.streams[0].closed and fake.terminated == 1


def test_pyaudio_device_errors_list_the_devices():
    fake = FakePyAudioModule(devices=[{"name": "HDMI", "maxInputChannels": 0, "defaultSampleRate": 48000},
                                      {"name": "USB mic", "maxInputChannels": 1, "defaultSampleRate": 44100}])
    with pytest.raises(MicrophoneError, match=r"no input device matching 'Blue'; input devices: 1: USB mic \(44100 Hz\)"):
        PyAudioMicrophone("Blue", 16000, pyaudio_module=fake).record(1)
    with pytest.raises(MicrophoneError, match="audio device 0 is not an input device"):
        PyAudioMicrophone("0", 16000, pyaudio_module=fake).record(1)
    with pytest.raises(MicrophoneError, match="cannot record mono 16-bit at 22050 Hz.*1: USB mic"):
        PyAudioMicrophone("", 22050, pyaudio_module=fake).record(1)
    with pytest.raises(MicrophoneError, match="no microphone: no input devices found"):
        PyAudioMicrophone("", 16000, pyaudio_module=FakePyAudioModule(devices=[])).record(1)


def test_pyaudio_missing_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyaudio(name, *a, **k):
        if name == "pyaudio":
            raise ImportError("No module named 'pyaudio'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pyaudio)
    with pytest.raises(MicrophoneError, match=r"PyAudio is not installed: pip install 'emotiond\[pi\]'"):
        PyAudioMicrophone().record(1)


def test_device_failing_mid_read_is_an_error_and_the_stream_is_closed():
    fake = FakePyAudioModule(signal=np.zeros(32000), fail_after=3)
    with pytest.raises(MicrophoneError, match="microphone failed after 0.19 s"):
        PyAudioMicrophone("", 16000, chunk=1024, pyaudio_module=fake).record(2)
    assert fake.streams[0].closed and fake.terminated == 1


@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_formats_to_mono_float(tmp_path, width, channels):
    x = 0.5 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)
    data = np.stack([x, x], axis=1).reshape(-1) if channels == 2 else x
    path = write_wav(tmp_path / "t.wav", data, 8000, width=width, channels=channels)
    y, sr = read_wav(path)
    assert sr == 8000 and y.shape == (8000,) and y.dtype == np.float32
    assert np.abs(y - x).max() < (2.0 / 128 if width == 1 else 1e-4)
    assert len(WavFileMicrophone(path).record(0.25)[0]) == 2000


def test_wav_errors(tmp_path):
    with pytest.raises(MicrophoneError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(MicrophoneError, match="not a PCM WAV file"):
        read_wav(tmp_path / "text.wav")
    write_wav(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(MicrophoneError, match="contains no audio"):
        read_wav(tmp_path / "empty.wav")


# --- the component -------------------------------------------------------------------------------------

class Recorder:
    """The slice of the daemon a component uses: emit, commands, privacy, workers."""

    def __init__(self):
        self.events: list = []
        self.cond = threading.Condition()
        self.commands: dict = {}
        self.workers: dict = {}
        self.privacy = False

    def register_worker(self, name, alive):
        self.workers[name] = alive

    def stop_remaining(self):
        return float("inf")

    def emit(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def register_command(self, name, handler):
        self.commands[name] = handler

    def wait_for(self, pred, timeout=30.0):
        """The audio events matching ``pred``, waiting for at least one."""
        def matches():
            return [e for e in self.events if isinstance(e, AudioEvent) and pred(e)]

        deadline = time.monotonic() + timeout
        with self.cond:
            while not matches():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; events so far: {self.events}"
                self.cond.wait(left)
            return matches()


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "config.toml", environ={})


@pytest.fixture(scope="module")
def analyzer(config):
    return AudioAnalyzer.from_config(config, baseline=False)


@pytest.fixture(scope="module")
def speech16k(tmp_path_factory):
    from emotiond.perception.resample import resample

    y, sr = read_wav(speak(SENTENCES[0], tmp_path_factory.mktemp("cap") / "s.wav"))
    return resample(y, sr, 16000)


def start_capture(config, analyzer, fake):
    daemon = Recorder()
    cap = AudioCapture(config.audio, analyzer, lambda: PyAudioMicrophone("", 16000, pyaudio_module=fake))
    cap.start(daemon)
    return cap, daemon


def test_trigger_during_recording_is_busy_and_reported(config, analyzer, speech16k):
    gate = threading.Event()
    fake = FakePyAudioModule(signal=speech16k, gate=gate)
    cap, daemon = start_capture(config, analyzer, fake)
    try:
        first = cap.trigger("gpio")
        assert first == {"accepted": True, "trigger": "gpio", "duration": 2.0}
        assert fake.reading.wait(10)  # the worker thread is inside record()
        second = cap.trigger("mqtt")
        assert second == {"accepted": False, "status": "busy"}
        busy = daemon.wait_for(lambda e: e.status == "busy")
        assert busy[0].trigger == "mqtt"
        gate.set()
        done = daemon.wait_for(lambda e: e.trigger == "gpio")
        assert done[0].status == "ok" and done[0].duration == pytest.approx(2.0)
        assert not cap.busy
        assert cap.trigger("signal")["accepted"]  # free again afterwards
        daemon.wait_for(lambda e: e.trigger == "signal")
    finally:
        gate.set()
        cap.stop()


def test_broken_microphone_gives_an_error_event_and_the_next_capture_works(config, analyzer, speech16k):
    fake = FakePyAudioModule(signal=np.concatenate([speech16k] * 3), fail_after=2)
    cap, daemon = start_capture(config, analyzer, fake)
    try:
        cap.trigger("gpio")
        err = daemon.wait_for(lambda e: e.status == "error")[0]
        assert isinstance(err, AudioEvent) and err.trigger == "gpio" and "microphone failed after" in err.error
        assert cap._thread.is_alive()
        fake.fail_after = None  # the device came back
        cap.trigger("socket")
        ok = daemon.wait_for(lambda e: e.trigger == "socket")[0]
        assert ok.status == "ok"
    finally:
        cap.stop()


def test_missing_microphone_is_an_error_event(config, analyzer):
    cap = AudioCapture(config.audio, analyzer, lambda: WavFileMicrophone("/nonexistent/mic.wav"))
    daemon = Recorder()
    cap.start(daemon)
    try:
        cap.trigger("cli")
        err = daemon.wait_for(lambda e: e.status == "error")[0]
        assert err.error == "/nonexistent/mic.wav: no such file"
    finally:
        cap.stop()


def test_capture_does_not_block_the_caller(config, analyzer, speech16k):
    gate = threading.Event()
    cap, daemon = start_capture(config, analyzer, FakePyAudioModule(signal=speech16k, gate=gate))
    try:
        result = {}
        caller = threading.Thread(target=lambda: result.update(cap.trigger("gpio")))
        caller.start()
        caller.join(5)
        assert not caller.is_alive() and result["accepted"]  # returned while the recording is still held
        assert cap.busy
    finally:
        gate.set()
        cap.stop()


def test_capture_audio_command_validates_its_arguments(config, analyzer):
    cap, daemon = start_capture(config, analyzer, FakePyAudioModule(signal=np.zeros(16000 * 11)))
    handler = daemon.commands["capture_audio"]
    try:
        for args, msg in [({"duration": "2"}, "duration must be a number of seconds"),
                          ({"duration": True}, "duration must be a number"),
                          ({"duration": 0.1}, "duration must be from 0.5 to 10.0 s, got 0.1"),
                          ({"duration": 60}, "duration must be from 0.5 to 10.0 s, got 60"),
                          ({"trigger": "telepathy"}, "trigger must be one of"),
                          ({"wait": "yes"}, "'wait' must be true or false"),
                          ({"volume": 3}, "unknown argument(s) volume")]:
            with pytest.raises(CommandError, match=msg.replace("(", r"\(").replace(")", r"\)")):
                handler(args)
        reply = handler({"duration": 0.5, "trigger": "mqtt", "wait": True})
        assert reply["accepted"] and reply["result"]["status"] == "no_speech" and reply["result"]["trigger"] == "mqtt"
    finally:
        cap.stop()


def test_privacy_mode_refuses_captures(config, analyzer):
    fake = FakePyAudioModule(signal=np.zeros(32000))
    cap, daemon = start_capture(config, analyzer, fake)
    try:
        daemon.privacy = True
        assert cap.trigger("gpio") == {"accepted": False, "status": "error", "error": "privacy mode is on: no audio is captured"}
        assert not fake.streams  # the microphone was never opened
    finally:
        cap.stop()


def test_audio_config_validation(config):
    from emotiond.config import ConfigError, config_from_mapping

    with pytest.raises(ConfigError, match="duration .* must lie between min_duration"):
        config_from_mapping({"audio": {"duration": 20.0}})
    with pytest.raises(ConfigError, match="face_weight and audio_weight must not both be 0"):
        config_from_mapping({"fusion": {"face_weight": 0, "audio_weight": 0}})
    with pytest.raises(ConfigError, match="long_press_action"):
        config_from_mapping({"triggers": {"long_press_action": "reboot"}})
    assert dataclasses.asdict(config.triggers)["long_press_action"] == "privacy"


def test_listening_marks_the_recording_window(config, analyzer, speech16k):
    """A display can say "listening..." exactly while the microphone records."""
    from emotiond.events import ListeningEvent

    gate = threading.Event()
    fake = FakePyAudioModule(signal=speech16k, gate=gate)
    cap, daemon = start_capture(config, analyzer, fake)
    try:
        cap.trigger("gpio")
        assert fake.reading.wait(10)
        with daemon.cond:
            assert [(type(e), getattr(e, "active", None)) for e in daemon.events] == [(ListeningEvent, True)]
        gate.set()
        daemon.wait_for(lambda e: e.trigger == "gpio")
        kinds = [(type(e), getattr(e, "active", None)) for e in daemon.events]
        assert kinds == [(ListeningEvent, True), (ListeningEvent, False), (AudioEvent, None)]
    finally:
        gate.set()
        cap.stop()


def test_stop_abandons_a_recording_that_does_not_finish(config, analyzer, speech16k, monkeypatch):
    import emotiond.audio_capture as audio_capture

    monkeypatch.setattr(audio_capture, "STOP_GRACE_SECONDS", 0.2)
    gate = threading.Event()  # never set while stopping: the device hangs mid-recording
    fake = FakePyAudioModule(signal=speech16k, gate=gate)
    cap, _daemon = start_capture(config, analyzer, fake)
    try:
        cap.trigger("gpio")
        assert fake.reading.wait(10)
        cap.stop()  # returns although the worker is still inside record()
        assert cap._thread.is_alive()
    finally:
        gate.set()


# --- capture rate: the voice model's rate, or the nearest the microphone takes ------------------------

def test_nearest_rate_prefers_the_lowest_rate_above():
    from emotiond.sources.microphone import nearest_rate

    assert nearest_rate(22050, [16000, 44100, 48000]) == 44100
    assert nearest_rate(22050, [8000, 16000]) == 16000
    assert nearest_rate(16000, [16000, 48000]) == 16000


@pytest.mark.parametrize(("rates", "expected"), [((16000, 22050, 48000), 22050), ((16000, 48000), 48000),
                                                 ((8000, 16000), 16000)])
def test_microphone_records_at_the_model_rate_or_the_nearest_supported(rates, expected, caplog):
    sig = 0.25 * np.sin(2 * np.pi * 220 * np.arange(48000) / 48000)
    fake = FakePyAudioModule(signal=sig, rates=rates)
    with caplog.at_level("INFO", logger="emotiond.sources.microphone"):
        y, sr = PyAudioMicrophone("", 22050, pyaudio_module=fake, fallback=True).record(0.5)
    assert sr == expected and fake.streams[0].rate == expected and len(y) == expected // 2
    noted = [r.getMessage() for r in caplog.records if "does not take 22050 Hz" in r.getMessage()]
    assert bool(noted) == (expected != 22050)
    if noted:
        assert f"recording at {expected} Hz" in noted[0]


def test_microphone_taking_no_common_rate_is_a_clear_error():
    fake = FakePyAudioModule(rates=(12345,))
    with pytest.raises(MicrophoneError, match="cannot record mono 16-bit at 22050 Hz nor at any common rate"):
        PyAudioMicrophone("", 22050, pyaudio_module=fake, fallback=True).record(0.5)


def test_capture_asks_for_the_model_rate_unless_a_rate_is_configured(config, analyzer):
    assert config.audio.sample_rate == 0 and analyzer.classifier.sample_rate == 22050
    mic = AudioCapture(config.audio, analyzer)._open_microphone()
    assert isinstance(mic, PyAudioMicrophone) and mic.sample_rate == 22050 and mic.fallback
    fixed = AudioCapture(dataclasses.replace(config.audio, sample_rate=16000), analyzer)._open_microphone()
    assert isinstance(fixed, PyAudioMicrophone) and fixed.sample_rate == 16000 and not fixed.fallback


def test_wav_source_is_captured_at_its_own_rate(config, analyzer, tmp_path):
    from emotiond.perception.resample import resample

    y, sr = read_wav(speak(SENTENCES[1], tmp_path / "s.wav"))
    path = write_wav(tmp_path / "s22.wav", resample(y, sr, 22050), 22050)
    seen: list[int] = []

    class Spy(AudioAnalyzer):
        def analyse(self, samples, sample_rate, trigger, timestamp=None):
            seen.append(sample_rate)
            return super().analyse(samples, sample_rate, trigger, timestamp)

    spy = Spy(analyzer.classifier, analyzer.vad)
    cap = AudioCapture(dataclasses.replace(config.audio, source=str(path)), spy)
    daemon = Recorder()
    cap.start(daemon)
    try:
        result = cap.command({"trigger": "cli", "wait": True, "duration": 2.0})
    finally:
        cap.stop()
    assert seen == [22050] and result["result"]["status"] == "ok"
    assert result["result"]["validated"] is False


def test_privacy_turned_on_during_a_recording_abandons_it(config, analyzer, speech16k):
    """Issue 13: the samples of a capture running when privacy mode is turned on are never analysed."""
    gate = threading.Event()
    fake = FakePyAudioModule(signal=speech16k, gate=gate)
    cap, daemon = start_capture(config, analyzer, fake)
    try:
        assert cap.trigger("gpio")["accepted"]
        assert fake.reading.wait(10)  # inside record()
        daemon.privacy = True  # the long press, MQTT or the socket turned privacy on
        gate.set()
        (event,) = daemon.wait_for(lambda e: e.trigger == "gpio")
        assert event.status == "cancelled" and event.prediction is None and event.prosody is None
        assert "abandoned" in (event.error or "")
        assert not cap.busy
        refused = cap.trigger("mqtt")  # and no new capture starts while it is on
        assert refused["accepted"] is False and "privacy" in refused["error"]
    finally:
        gate.set()
        cap.stop()
