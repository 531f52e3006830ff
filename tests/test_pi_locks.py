"""The Pi lock files agree with setup.py, with each other where they must, and with their OS.

The arm64 smoke test proves each lock installs and runs on its OS (minutes, under qemu; CI runs it);
these checks catch in a second what would otherwise only fail there or on a Pi: an unpinned line,
a pin outside setup.py's ranges, a dependency of an extra missing, tflite-runtime on Trixie.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
LOCKS = {"bookworm": REPO / "requirements-pi.txt", "trixie": REPO / "requirements-pi-trixie.txt"}
PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


def _pins(lock: Path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"{lock.name}: not an exact pin: {line}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{lock.name}: {name} pinned twice"
        pins[name] = Version(spec[0].version)
    return pins


def _setup_requirements() -> dict[str, list[str]]:
    """install_requires and extras_require from setup.py, read without running it."""
    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    keywords = {k.arg: k.value for k in call.keywords}
    extras = ast.literal_eval(keywords["extras_require"])
    return {"": ast.literal_eval(keywords["install_requires"]), **extras}


@pytest.mark.parametrize("suite", sorted(LOCKS))
def test_lock_pins_everything_setup_py_needs_on_the_pi_within_its_ranges(suite: str) -> None:
    pins = _pins(LOCKS[suite])
    env: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    env.update(platform_machine="aarch64", sys_platform="linux", python_version=PYTHON[suite],
               python_full_version=PYTHON[suite] + ".0")
    groups = _setup_requirements()
    for group in ("", "gpio", "display"):  # "pi" (PyAudio) is built on the device, not pinned
        for line in groups[group]:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            assert name in pins, f"{LOCKS[suite].name} lacks {name} (setup.py {group or 'install_requires'})"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{LOCKS[suite].name}: {name}=={pins[name]} is outside setup.py's {req.specifier}"
            )


def test_interpreters_per_os() -> None:
    bookworm, trixie = _pins(LOCKS["bookworm"]), _pins(LOCKS["trixie"])
    assert bookworm["ai-edge-litert"] == trixie["ai-edge-litert"]  # one default interpreter, both OSes
    # tflite-runtime (the Bookworm fallback) is built against numpy 1 and has no cp312/cp313 wheel
    assert "tflite-runtime" in bookworm and bookworm["numpy"] < Version("2")
    assert "tflite-runtime" not in trixie
    # numpy 1.26 has no cp313 wheel
    assert trixie["numpy"] >= Version("2.1")


def test_smoke_and_install_scripts_name_both_locks() -> None:
    for script in ("scripts/arm64_smoke.sh", "scripts/install.sh"):
        text = (REPO / script).read_text()
        for lock in LOCKS.values():
            assert lock.name in text, f"{script} does not mention {lock.name}"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_smoke_script_and_ci_are_shellcheck_clean() -> None:
    for script in ("scripts/arm64_smoke.sh", ".ci/run"):
        result = subprocess.run(["shellcheck", "--severity=style", str(REPO / script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_smoke_script_rejects_an_unknown_suite_before_doing_anything(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(REPO / "scripts/arm64_smoke.sh"), "--suite", "buster", "--cache", str(tmp_path / "c")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 64 and "unknown suite buster (bookworm or trixie)" in result.stderr
    assert not (tmp_path / "c").exists()
