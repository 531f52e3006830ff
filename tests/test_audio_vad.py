"""Voice-activity detection on silence, noise, hum and real (espeak-ng) speech."""

from __future__ import annotations

import numpy as np
import pytest
from emotiond.perception.vad import VoiceActivityDetector
from emotiond.sources.microphone import read_wav

from espeak import SENTENCES, speak


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return read_wav(speak(SENTENCES[1], tmp_path_factory.mktemp("vad") / "speech.wav"))


@pytest.mark.parametrize("aggressiveness", [0, 3])
def test_silence_is_no_speech(aggressiveness):
    result = VoiceActivityDetector(aggressiveness).analyse(np.zeros(32000, np.float32), 16000)
    assert not result.speech and result.voiced_ratio == 0.0


@pytest.mark.parametrize("level", [0.02, 0.3])
def test_white_noise_is_no_speech(level):
    noise = np.random.default_rng(3).normal(0, level, 32000)
    result = VoiceActivityDetector(2).analyse(noise, 16000)
    assert not result.speech and result.voiced_ratio < 0.05


def test_mains_hum_is_no_speech():
    hum = 0.3 * np.sin(2 * np.pi * 50 * np.arange(32000) / 16000)
    assert not VoiceActivityDetector(2).analyse(hum, 16000).speech


def test_espeak_speech_is_speech(speech):
    y, sr = speech
    result = VoiceActivityDetector(2, min_voiced_ratio=0.2).analyse(y, sr)
    assert result.speech and result.voiced_ratio > 0.5
    assert result.voiced_seconds > 1.0


def test_speech_in_moderate_noise_is_still_speech(speech):
    y, sr = speech
    noisy = y + np.random.default_rng(5).normal(0, 0.02, len(y)).astype(np.float32)
    assert VoiceActivityDetector(2).analyse(noisy, sr).speech


def test_mostly_silent_clip_falls_below_the_ratio(speech):
    y, sr = speech
    clip = np.concatenate([y[: sr // 4], np.zeros(sr * 4, np.float32)])  # 0.25 s of speech in 4.25 s
    result = VoiceActivityDetector(2, min_voiced_ratio=0.2).analyse(clip, sr)
    assert 0 < result.voiced_ratio < 0.2 and not result.speech
    assert VoiceActivityDetector(2, min_voiced_ratio=0.01).analyse(clip, sr).speech
