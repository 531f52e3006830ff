"""The interpreter probe: real children on the real models; crashes simulated by a shadowing package.

A crashing runtime is simulated by a package named like the backend, put first on the children's
PYTHONPATH, whose Interpreter kills its own process with a signal: the parent must see the signal,
report it and move on, and never die itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from emotiond import backend_probe
from emotiond.backend_check import PROB_TOLERANCE, reference_check
from emotiond.backend_probe import choose_backend, probe, probe_manifests
from emotiond.models import ModelError, TFLiteModel, interpreter_class

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
INSTALLED = backend_probe.installed_backends()
needs_backend = pytest.mark.skipif(not INSTALLED, reason="no TFLite interpreter installed")


def fake_backend(tmp_path: Path, name: str, body: str) -> Path:
    """A package `name` whose interpreter module's Interpreter runs `body` when constructed."""
    module = {"ai_edge_litert": "interpreter", "tflite_runtime": "interpreter"}[name]
    pkg = tmp_path / "fake" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / f"{module}.py").write_text(
        "import os, signal, time\n\nclass Interpreter:\n    def __init__(self, *args, **kwargs):\n"
        + textwrap.indent(textwrap.dedent(body), " " * 8)
        + "\n"
    )
    return tmp_path / "fake"


@pytest.fixture
def fresh_cache():
    backend_probe.reset_probe_cache()
    yield
    backend_probe.reset_probe_cache()


@needs_backend
def test_real_backend_passes_in_a_child() -> None:
    result = probe(INSTALLED[0])
    assert result.ok, result.reason
    assert result.returncode == 0
    names = {p.stem for p in probe_manifests()}
    assert {"expression", "audio_emotion", "face_detector"} <= names
    assert "expression ok: 16 reference inputs" in result.reason


@needs_backend
@pytest.mark.parametrize(
    "body, sig",
    [("os.kill(os.getpid(), signal.SIGSEGV)", signal.SIGSEGV), ("os.abort()", signal.SIGABRT)],
)
def test_crashing_backend_is_detected(tmp_path, monkeypatch, body, sig) -> None:
    monkeypatch.setenv("PYTHONPATH", str(fake_backend(tmp_path, INSTALLED[0], body)))
    result = probe(INSTALLED[0])
    assert not result.ok
    assert result.returncode == -sig
    assert f"killed by {sig.name}" in result.reason


@needs_backend
def test_crash_falls_back_to_the_next_backend(tmp_path, monkeypatch) -> None:
    # The real backend is kept; a crashing impostor of the other one is put in front of it.
    real = INSTALLED[0]
    other = next(name for name in backend_probe.BACKENDS if name != real)
    monkeypatch.setenv("PYTHONPATH", str(fake_backend(tmp_path, other, "os.kill(os.getpid(), signal.SIGSEGV)")))
    chosen, results = choose_backend([other, real])
    assert chosen == real
    assert [r.backend for r in results] == [other, real]
    assert results[0].returncode == -signal.SIGSEGV and results[1].ok


@needs_backend
def test_hung_backend_is_killed_after_the_timeout(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(fake_backend(tmp_path, INSTALLED[0], "time.sleep(600)")))
    result = probe(INSTALLED[0], timeout=5)
    assert not result.ok and result.returncode is None
    assert "no verdict within 5 s" in result.reason


@needs_backend
def test_auto_reports_a_crash_instead_of_dying(tmp_path, monkeypatch, fresh_cache) -> None:
    """interpreter_class('auto') in this process: the child crashes, we get a ModelError or the fallback."""
    crashing = INSTALLED[0]
    monkeypatch.setenv("PYTHONPATH", str(fake_backend(tmp_path, crashing, "os.kill(os.getpid(), signal.SIGSEGV)")))
    others = [name for name in INSTALLED if name != crashing]
    if others:
        name, _cls = interpreter_class("auto")
        assert name == others[0]
    else:
        with pytest.raises(ModelError, match=rf"no usable TFLite interpreter: {crashing}: FAILED .*killed by SIGSEGV"):
            interpreter_class("auto")


@needs_backend
def test_daemon_start_survives_a_crashing_runtime(tmp_path) -> None:
    """`emotiond run` on the sample video: the fallback runs, or one error line and exit 69."""
    crashing = INSTALLED[0]
    fake = fake_backend(tmp_path, crashing, "os.kill(os.getpid(), signal.SIGSEGV)")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)]),
        "EMOTIOND_CAMERA__SOURCE": json.dumps(str(ROOT / "samples" / "demo.mp4")),
        "EMOTIOND_OUTPUT__STDOUT": "true",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "emotiond", "-c", str(ROOT / "config.toml"), "run", "--max-frames", "3"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert f"{crashing}: FAILED" in proc.stderr and "killed by SIGSEGV" in proc.stderr
    assert "Traceback" not in proc.stderr
    fallback = [name for name in INSTALLED if name != crashing]
    if fallback:
        assert proc.returncode == 0, proc.stderr
        assert f"using {fallback[0]}" in proc.stderr
    else:
        assert proc.returncode == 69, proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("emotiond: error:")]
        assert len(errors) == 1 and "no usable TFLite interpreter" in errors[0]


@needs_backend
def test_wrong_outputs_are_a_mismatch(tmp_path) -> None:
    """The real model against a reference whose recorded outputs belong to other inputs."""
    for name in ("expression.json", "expression.tflite"):
        shutil.copy(MODELS / name, tmp_path / name)
    ref = np.load(MODELS / "expression_reference.npz")
    order = np.roll(np.arange(len(ref["int8_probs"])), 1)
    np.savez(tmp_path / "expression_reference.npz", inputs_float=ref["inputs_float"],
             float_probs=ref["float_probs"], int8_probs=ref["int8_probs"][order])
    model = TFLiteModel.from_manifest(tmp_path / "expression.json", backend=INSTALLED[0])
    assert reference_check(model).startswith("MISMATCH")
    result = probe(INSTALLED[0], [tmp_path / "expression.json"])
    assert not result.ok and result.returncode == 65 and "MISMATCH" in result.reason


@needs_backend
def test_near_ties_may_flip_but_clear_winners_may_not(tmp_path) -> None:
    for name in ("expression.json", "expression.tflite"):
        shutil.copy(MODELS / name, tmp_path / name)
    ref = np.load(MODELS / "expression_reference.npz")
    model = TFLiteModel.from_manifest(tmp_path / "expression.json", backend=INSTALLED[0])
    got = np.stack([model.run(x[None])[0].reshape(-1) for x in ref["inputs_float"]])

    def check_with(expected: np.ndarray) -> str:
        np.savez(tmp_path / "expression_reference.npz", inputs_float=ref["inputs_float"],
                 float_probs=ref["float_probs"], int8_probs=expected)
        return reference_check(model)

    assert check_with(got).startswith("ok")
    # The reference inputs include close calls; take the closest one with a unique winner.
    order = np.argsort(got, axis=1)
    margins = got[np.arange(len(got)), order[:, -1]] - got[np.arange(len(got)), order[:, -2]]
    i = int(np.where(margins > 0, margins, np.inf).argmin())
    top, second, m = int(got[i].argmax()), int(order[i, -2]), float(margins[i])
    assert m < 0.5 * PROB_TOLERANCE
    # Recorded with the runner-up just ahead, within the tolerance: a near-tie, allowed.
    tie = got.copy()
    tie[i, second] = got[i, top] + (PROB_TOLERANCE - m) / 2
    assert check_with(tie).startswith("ok") and "(1 near-tie)" in check_with(tie)
    # Recorded with the runner-up clearly ahead (by more than the tolerance), although no single
    # probability moved by more than the tolerance: a mismatch.
    clear = got.copy()
    clear[i, second] = got[i, second] + 0.99 * PROB_TOLERANCE
    clear[i, top] = got[i, top] - 0.99 * PROB_TOLERANCE
    assert np.abs(clear - got).max() <= PROB_TOLERANCE
    assert check_with(clear).startswith("MISMATCH")


def test_command_line_exit_codes(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "emotiond.backend_probe", "--json"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    verdict = json.loads(proc.stdout)
    if INSTALLED:
        assert proc.returncode == 0 and verdict["chosen"] == INSTALLED[0]
        assert verdict["probes"][0]["ok"] is True
    else:
        assert proc.returncode == 69 and verdict["chosen"] is None
    missing = [n for n in backend_probe.BACKENDS if importlib.util.find_spec(n) is None]
    if missing:
        proc = subprocess.run([sys.executable, "-m", "emotiond.backend_probe", "--backend", missing[0]],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert proc.returncode == 69 and proc.stdout == ""
        assert f"{missing[0]}: FAILED" in proc.stderr and "not installed" in proc.stderr
