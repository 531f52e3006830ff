"""Audio features: MFCC + delta (python_speech_features), our numpy librosa-style features against
hand-computable tones and against librosa itself (dev dependency), and the resampler."""

from __future__ import annotations

import numpy as np
import pytest
from emotiond.perception import audio_features as af
from emotiond.perception.resample import resample
from emotiond.sources.microphone import read_wav

from espeak import SENTENCES, speak


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)


# --- mfcc_delta (the seed's features) ------------------------------------------------------------

def test_mfcc_delta_shape_padding_and_cut():
    two = af.mfcc_delta(tone(1000, 2.0, 16000), 16000, {"n_frames": 198})
    assert two.shape == (198, 26) and two.dtype == np.float32
    one = af.mfcc_delta(tone(1000, 1.0, 16000), 16000, {"n_frames": 198})
    assert np.abs(one[:99]).sum() > 0 and not one[99:].any()  # 1 s = 99 frames, the rest zero padding
    three = af.mfcc_delta(tone(1000, 3.0, 16000), 16000, {"n_frames": 198})
    assert three.shape == (198, 26)


def test_mfcc_of_a_steady_tone_is_constant_and_its_delta_zero():
    from python_speech_features import delta, mfcc

    feats = mfcc(tone(1000, 1.0, 16000), samplerate=16000)
    assert feats.shape == (99, 13)
    interior = feats[5:-5]
    assert np.abs(interior - interior.mean(axis=0)).max() < 1e-3 * np.abs(interior).max()
    d = delta(feats, 2)
    assert d.shape == (99, 13)
    assert np.abs(d[5:-5]).max() < 1e-3 * np.abs(feats).max()
    # delta of a ramp is its slope (regression over +-2 frames)
    ramp = np.tile(np.arange(20.0)[:, None], (1, 3))
    assert np.allclose(delta(ramp, 2)[2:-2], 1.0)


def test_mfcc_delta_is_normalised_per_utterance():
    rng = np.random.default_rng(1)
    feats = af.mfcc_delta(tone(440, 1.0, 16000) + rng.normal(0, 0.05, 16000), 16000, {"n_frames": 99})
    assert np.allclose(feats.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(feats.std(axis=0), 1, atol=1e-3)


# --- librosa-style features on hand-computable signals ---------------------------------------------

def test_zero_crossing_rate_of_a_tone():
    sr = 22050
    zcr = af.zero_crossing_rate(tone(1000, 1.0, sr), 2048, 512)
    # a 1 kHz sine crosses zero 2000 times a second: 2000 / 22050 per sample
    assert np.median(zcr) == pytest.approx(2000 / sr, rel=0.02)


def test_chroma_of_a440_is_a():
    sr = 22050
    mag = af.stft_magnitude(tone(440, 1.0, sr))
    chroma = af.chroma_filterbank(sr, 2048, af.estimate_tuning(mag, sr)) @ mag
    assert int(np.argmax(chroma.mean(axis=1))) == 9  # C=0 ... A=9


def test_mel_spectrogram_peaks_at_the_tone():
    sr = 22050
    spec = af.mel_spectrogram(tone(2000, 1.0, sr), sr)  # n_fft 1024, hop 512, 128 mels
    assert spec.shape == (128, 1 + 22050 // 512)
    centres = af.mel_to_hz(np.linspace(af.hz_to_mel(0.0), af.hz_to_mel(sr / 2), 130))[1:-1]
    assert abs(centres[int(np.argmax(spec.mean(axis=1)))] - 2000) < 60


def test_mel_scale_round_trip_and_slaney_breakpoint():
    f = np.array([0.0, 500.0, 1000.0, 4000.0, 11025.0])
    assert np.allclose(af.mel_to_hz(af.hz_to_mel(f)), f)
    assert af.hz_to_mel(1000.0) == pytest.approx(15.0)  # 1000 Hz / (200/3 Hz per mel)


def test_dct_ortho_is_orthonormal():
    basis = af.dct_ortho(np.eye(16), 16)
    assert np.allclose(basis @ basis.T, np.eye(16), atol=1e-12)


def test_summary_181_layout_and_registry():
    feats = af.librosa_summary_181(tone(300, 1.0, 16000), 16000)
    assert feats.shape == (181,) and np.isfinite(feats).all()
    assert af.get_pipeline("librosa_summary_181").default_rate == 22050
    with pytest.raises(KeyError, match="known: librosa_summary_181, mfcc_delta"):
        af.get_pipeline("wav2vec")


# --- against librosa (dev-only dependency; the daemon never imports it) --------------------------------

@pytest.fixture(scope="module")
def speech22k(tmp_path_factory):
    path = speak(SENTENCES[0], tmp_path_factory.mktemp("feat") / "s.wav")
    y, sr = read_wav(path)
    assert sr == 22050  # espeak-ng's native rate, so no resampler takes part in the comparison
    rng = np.random.default_rng(0)
    return (y + rng.normal(0, 0.003, len(y))).astype(np.float32), sr


def test_summary_181_matches_librosa(speech22k):
    librosa = pytest.importorskip("librosa")
    y, sr = speech22k
    stft = np.abs(librosa.stft(y))
    ref = np.hstack([
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).mean(axis=1),
        librosa.feature.chroma_stft(S=stft, sr=sr).mean(axis=1),
        librosa.feature.melspectrogram(y=y, sr=sr).mean(axis=1),
        librosa.feature.zero_crossing_rate(y).mean(axis=1),
    ])
    ours = af.librosa_summary_181(y, sr)
    for name, part in (("mfcc", slice(0, 40)), ("chroma", slice(40, 52)), ("mel", slice(52, 180)), ("zcr", slice(180, 181))):
        scale = np.abs(ref[part]).max()
        assert np.abs(ours[part] - ref[part]).max() <= 1e-4 * scale, name
    assert af.estimate_tuning(af.stft_magnitude(y), sr) == pytest.approx(librosa.estimate_tuning(S=stft, sr=sr), abs=1e-9)


def test_mel_spectrogram_matches_librosa(speech22k):
    librosa = pytest.importorskip("librosa")
    y, sr = speech22k
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=512, n_mels=128))
    ours = af.mel_spectrogram(y, sr, n_fft=1024, hop=512, n_mels=128)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3  # dB


def test_features_do_not_import_librosa():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from emotiond.perception.audio_features import librosa_summary_181;"
            "librosa_summary_181(np.zeros(22050, np.float32) + 0.1, 22050); print('librosa' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


# --- resampling -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sr_in,sr_out", [(16000, 22050), (44100, 16000), (48000, 16000), (22050, 16000)])
def test_resample_keeps_a_tone(sr_in, sr_out):
    y = resample(tone(440, 1.0, sr_in), sr_in, sr_out)
    assert len(y) == int(np.ceil(sr_in * 1.0 * sr_out / sr_in))
    ref = tone(440, len(y) / sr_out, sr_out)[: len(y)]
    assert np.abs(y - ref)[100:-100].max() < 1e-3


def test_resample_removes_what_the_new_rate_cannot_hold():
    y = resample(tone(7000, 1.0, 16000), 16000, 8000)  # above the 4 kHz Nyquist of the target
    assert np.sqrt(np.mean(y[100:-100] ** 2)) < 1e-3  # would alias to 1 kHz at 0.35 rms without the low-pass


def test_numpy_dct_and_window_match_scipy() -> None:
    """The daemon keeps these two in numpy (scipy costs RSS, see their docstrings); scipy is the reference."""
    from emotiond.perception.audio_features import dct_ortho, hann_periodic
    from scipy.fft import dct
    from scipy.signal import get_window

    x = np.random.default_rng(3).normal(size=(128, 50))
    assert np.abs(dct_ortho(x, 40) - dct(x, type=2, norm="ortho", axis=0)[:40]).max() < 1e-12
    for n in (400, 512, 2048):
        assert np.abs(hann_periodic(n) - get_window("hann", n, fftbins=True)).max() < 1e-12
