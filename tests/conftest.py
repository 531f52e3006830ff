"""Shared fixtures: the real shipped models, the bundled samples, and a validated default config."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from emotiond.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
SAMPLES = ROOT / "samples"

# Every daemon the tests start (in process or as a subprocess) keeps its state (privacy mode, the MQTT
# journal) in a throwaway folder, never in the state of the person running the tests.
os.environ.pop("STATE_DIRECTORY", None)
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="emotiond-test-state-")
atexit.register(shutil.rmtree, os.environ["XDG_STATE_HOME"], True)


@pytest.fixture(autouse=True)
def _own_state_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's daemons get a state folder of their own: privacy mode left on by one test (a
    SIGKILL mid-toggle) must not be restored into the next test's daemon."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def default_config() -> Config:
    return load_config(ROOT / "config.toml", environ={})


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The public-domain NASA portrait (scikit-image's `astronaut`), BGR 512x512."""
    image = cv2.imread(str(SAMPLES / "astronaut.jpg"), cv2.IMREAD_COLOR)
    assert image is not None, "samples/astronaut.jpg missing: run scripts/make_sample.py"
    return image


@pytest.fixture(scope="session")
def blank() -> np.ndarray:
    return np.full((480, 640, 3), 128, np.uint8)
