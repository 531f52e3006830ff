"""Monotonic ages (issue 12): a Pi has no RTC and NTP steps the wall clock at boot; fusion ages must not jump."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from emotiond.config import FusionConfig
from emotiond.daemon import Daemon
from emotiond.events import AudioEvent, EmotionEvent, Prediction, SceneEmotion
from emotiond.fusion.labels import EMOTIONS
from emotiond.fusion.stage import FusionStage


def pred(label: str) -> Prediction:
    probs = {e: (1.0 if e == label else 0.0) for e in EMOTIONS}
    return Prediction(probs, label, 1.0)


def face(ts: float, mono: float | None) -> EmotionEvent:
    return EmotionEvent(frame=1, faces=(), scene=SceneEmotion(1, pred("happy")), timestamp=ts, monotonic=mono)


def voice(ts: float, mono: float | None) -> AudioEvent:
    return AudioEvent("gpio", "ok", 2.0, prediction=pred("sad"), timestamp=ts, monotonic=mono, validated=True)


@pytest.mark.parametrize("wall_step", [-3600.0, 0.0, 3600.0])
def test_fusion_age_follows_the_monotonic_clock_across_a_wall_clock_step(wall_step: float) -> None:
    stage = FusionStage(FusionConfig(smoothing="mean", history=1, audio_validity_s=10.0))
    stage(voice(1000.0, mono=50.0))
    (fused_event,) = stage(face(1000.0 + 2.0 + wall_step, mono=52.0))  # 2 s later; NTP moved the wall clock
    fused = fused_event.fused
    assert fused is not None and fused.modalities["audio"] == pytest.approx(2.0)
    assert fused.prediction.probabilities["sad"] > 0  # the voice still counts: 2 of 10 s old


def test_without_a_monotonic_stamp_ages_come_from_timestamps() -> None:
    assert face(105.0, None).age_since(voice(100.0, None)) == 5.0
    assert face(105.0, 7.0).age_since(voice(100.0, None)) == 5.0  # only one stamped: the wall clock decides
    assert face(105.0, 7.0).age_since(voice(100.0, 4.0)) == 3.0


def test_the_monotonic_stamp_is_never_serialised_or_compared() -> None:
    a, b = face(1.0, 5.0), face(1.0, None)
    assert "monotonic" not in a.to_dict() and "monotonic" not in json.loads(a.to_json())
    assert a == b


def test_daemon_emit_stamps_events(default_config) -> None:  # type: ignore[no-untyped-def]
    from emotiond.perception.pipeline import FacePipeline

    daemon = Daemon(default_config, FacePipeline.from_config(default_config))
    daemon.emit(face(1.0, None))
    daemon.emit(face(1.0, 123.0))
    first, second = daemon._events.get_nowait(), daemon._events.get_nowait()
    assert first is not None and first.monotonic is not None and first.monotonic > 0
    assert second is not None and second.monotonic == 123.0  # an existing stamp is kept
    assert dataclasses.replace(first, frame=2).monotonic == first.monotonic
    assert np.isfinite(first.monotonic)
