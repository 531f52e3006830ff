"""Prosody and the vocal arousal index on espeak-ng speech: louder, faster, higher speech must raise it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from emotiond.perception.prosody import ArousalBaseline, analyse_prosody, yin
from emotiond.sources.microphone import read_wav

from espeak import SENTENCES, speak


def prosody_of(tmp_path, name, text, **style):
    y, sr = read_wav(speak(text, tmp_path / f"{name}.wav", **style))
    return analyse_prosody(y, sr)


def test_yin_finds_the_pitch_of_a_harmonic_tone():
    sr = 16000
    t = np.arange(sr) / sr
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    f0, aperiodicity = yin(x, sr, hop=160)
    assert np.median(f0[5:-30]) == pytest.approx(150, rel=0.01)
    assert np.median(aperiodicity[5:-30]) < 0.05
    f0_noise, ap_noise = yin(np.random.default_rng(0).normal(0, 0.3, sr), sr, hop=160)
    assert (f0_noise > 0).mean() < 0.05 and np.median(ap_noise) > 0.3


def test_silence_has_no_pitch_and_no_rate():
    p = analyse_prosody(np.zeros(16000, np.float32), 16000)
    assert p.pitch_hz == 0 and p.speech_rate == 0 and p.voiced_ratio == 0 and p.cues() is None


def test_espeak_pitch_setting_moves_the_measured_pitch(tmp_path):
    low = prosody_of(tmp_path, "low", SENTENCES[3], pitch=15)
    high = prosody_of(tmp_path, "high", SENTENCES[3], pitch=90)
    assert high.pitch_hz > low.pitch_hz * 1.3


def test_faster_speech_has_a_higher_rate_and_louder_a_higher_level(tmp_path):
    slow = prosody_of(tmp_path, "slow", SENTENCES[3], speed=110)
    fast = prosody_of(tmp_path, "fast", SENTENCES[3], speed=260)
    assert fast.speech_rate > slow.speech_rate * 1.3
    assert 2.0 < slow.speech_rate < 10.0  # syllables per second of speech: a plausible range
    quiet = prosody_of(tmp_path, "quiet", SENTENCES[3], amplitude=40)
    loud = prosody_of(tmp_path, "loud", SENTENCES[3], amplitude=200)
    assert loud.loudness_db - quiet.loudness_db > 6.0


def test_arousal_index_rises_for_louder_faster_higher_speech(tmp_path):
    baseline = ArousalBaseline(min_count=3)
    for i, text in enumerate(SENTENCES[:3]):
        assert baseline.score(prosody_of(tmp_path, f"b{i}", text)) is None  # no baseline yet
    neutral = baseline.score(prosody_of(tmp_path, "n", SENTENCES[3]), learn=False)
    excited = baseline.score(prosody_of(tmp_path, "e", SENTENCES[3], amplitude=200, speed=260, pitch=90), learn=False)
    subdued = baseline.score(prosody_of(tmp_path, "s", SENTENCES[3], amplitude=40, speed=110, pitch=15), learn=False)
    print(f"arousal index: subdued {subdued:.2f}, neutral {neutral:.2f}, excited {excited:.2f}")
    assert excited > neutral + 1.0
    assert subdued < neutral - 1.0


def test_baseline_persists_per_device(tmp_path):
    path = tmp_path / "state" / "baseline.json"
    a = ArousalBaseline("kitchen", size=5, min_count=2, path=path)
    for v in ([1.0, 2.0, -20.0, 4.0], [1.5, 2.5, -21.0, 4.5], [2.0, 3.0, -22.0, 5.0]):
        a.update(np.array(v))
    again = ArousalBaseline("kitchen", size=5, min_count=2, path=path)
    assert len(again) == 3
    assert again.index(np.array([1.5, 2.5, -21.0, 4.5])) == pytest.approx(0.0, abs=1e-9)  # the mean itself
    other = ArousalBaseline("hall", path=path)
    assert len(other) == 0
    other.update(np.array([0.0, 0.0, -30.0, 3.0]))
    data = json.loads(path.read_text())
    assert set(data["devices"]) == {"kitchen", "hall"}
    for _ in range(10):
        a.update(np.array([0.0, 0.0, 0.0, 0.0]))
    assert len(ArousalBaseline("kitchen", size=5, path=path)) == 5  # rolling


def test_corrupt_baseline_file_starts_fresh(tmp_path, caplog):
    path = tmp_path / "baseline.json"
    path.write_text("{not json")
    b = ArousalBaseline(path=path)
    assert len(b) == 0 and "unreadable" in caplog.text
    b.update(np.array([1.0, 1.0, -20.0, 4.0]))
    assert json.loads(path.read_text())["devices"]["default"]
