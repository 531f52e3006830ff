"""scripts/install.sh --dry-run picks the lock file and interpreter plan for the OS it is told it runs on.

Each test writes a fake os-release (as Raspberry Pi OS ships it: Debian's, with VERSION_CODENAME) and
passes --os-release and --machine, so this x86-64 machine can stand in for a Pi. The interpreter is a
real one: its version decides whether it matches the lock, so Trixie without --force needs a real
python3.13 (on the path or from pyenv) or that test is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "install.sh"


def _find_python(version: str) -> str | None:
    """A python<version> that really runs (a pyenv shim may exist without its version being active)."""
    candidates = [shutil.which(f"python{version}"), f"/usr/bin/python{version}"]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            found = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if found.returncode == 0 and found.stdout.strip() == version:
            return candidate
    return None


PY311 = _find_python("3.11")
PY313 = _find_python("3.13")

OS_RELEASES = {
    "bookworm": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    "VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
    "trixie": "PRETTY_NAME='Debian GNU/Linux 13 (trixie)'\nNAME='Debian GNU/Linux'\nVERSION_ID='13'\n"
    "VERSION_CODENAME=trixie\nID=debian\n",
    "noble": 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nID=ubuntu\n',
}


def _dry_run(
    tmp_path: Path, codename: str, python: str, *extra: str, machine: str = "aarch64"
) -> subprocess.CompletedProcess[str]:
    os_release = tmp_path / f"os-release-{codename}"
    os_release.write_text(OS_RELEASES[codename])
    args = ["--dry-run", "--root", str(tmp_path / "root"), "--no-apt", "--no-user", "--python", python,
            "--os-release", str(os_release), "--machine", machine, *extra]
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert not (tmp_path / "root").exists()  # a dry run, refused or not, creates nothing
    return result


def _pip_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("would: ") and " -m pip install " in line]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.skipif(PY311 is None, reason="needs a python3.11 (Bookworm's Python)")
def test_bookworm_uses_requirements_pi_and_plans_the_tflite_runtime_fallback(tmp_path: Path) -> None:
    assert PY311 is not None
    result = _dry_run(tmp_path, "bookworm", PY311)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ok:   Debian GNU/Linux 12 (bookworm) aarch64, Python 3.11: dependencies from requirements-pi.txt" in out
    arm64 = _dry_run(tmp_path, "bookworm", PY311, machine="arm64")  # dpkg's name for it
    assert arm64.returncode == 0 and "(bookworm) arm64, Python 3.11: dependencies from" in arm64.stdout
    assert "note: unsupported" not in out and result.stderr == ""
    assert _pip_line(out).endswith(f"'{REPO}[pi,gpio,display]' --constraint {REPO}/requirements-pi.txt")
    assert "on failure install tflite-runtime (pinned by requirements-pi.txt) and test it" in out
    assert f"-m venv --system-site-packages {tmp_path}/root/opt/emotiond/venv" in out


@pytest.mark.skipif(PY313 is None, reason="needs a python3.13 (Trixie's Python)")
def test_trixie_uses_its_lock_and_has_no_fallback(tmp_path: Path) -> None:
    assert PY313 is not None
    result = _dry_run(tmp_path, "trixie", PY313)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "aarch64, Python 3.13: dependencies from requirements-pi-trixie.txt" in out
    assert _pip_line(out).endswith(f"--constraint {REPO}/requirements-pi-trixie.txt")
    assert "no fallback interpreter" in out and "install tflite-runtime" not in out


@pytest.mark.skipif(PY311 is None, reason="needs a python3.11")
def test_trixie_with_the_wrong_python_is_refused_then_forced(tmp_path: Path) -> None:
    assert PY311 is not None
    refused = _dry_run(tmp_path, "trixie", PY311)
    assert refused.returncode == 1
    assert f"unsupported platform: {PY311} is Python 3.11, trixie's lock file is for Python 3.13" in refused.stderr
    assert "--force installs anyway" in refused.stderr
    assert "would: " not in refused.stdout  # refused before any step

    forced = _dry_run(tmp_path, "trixie", PY311, "--force")
    assert forced.returncode == 0, forced.stderr
    out = forced.stdout
    assert "continuing (--force)" in out and "using requirements-pi-trixie.txt anyway" in out
    assert _pip_line(out).endswith(f"--constraint {REPO}/requirements-pi-trixie.txt")
    # the Trixie lock pins numpy 2, with which tflite-runtime 2.14 cannot install: no fallback offered
    assert "no fallback interpreter" in out and "install tflite-runtime" not in out


@pytest.mark.skipif(PY311 is None, reason="needs a python3.11")
def test_wrong_architecture_is_refused_with_what_is_supported(tmp_path: Path) -> None:
    assert PY311 is not None
    # a 32-bit Raspberry Pi OS on a 64-bit kernel: uname says aarch64, dpkg says armhf
    armhf = _dry_run(tmp_path, "bookworm", PY311, machine="armhf")
    assert armhf.returncode == 1
    assert "unsupported platform: the architecture is armhf, not arm64 (aarch64)" in armhf.stderr
    result = _dry_run(tmp_path, "bookworm", PY311, machine="x86_64")
    assert result.returncode == 1
    assert "unsupported platform: the architecture is x86_64, not arm64 (aarch64)" in result.stderr
    assert "Bookworm (12) with Python 3.11, Trixie (13) with Python 3.13, both 64-bit arm64 (aarch64)" in result.stderr


def test_unknown_os_is_refused_and_forced_installs_unpinned(tmp_path: Path) -> None:
    python = PY311 or shutil.which("python3") or "/usr/bin/python3"
    refused = _dry_run(tmp_path, "noble", python)
    assert refused.returncode == 1
    assert "unsupported platform: the OS is Ubuntu 24.04.1 LTS (noble)" in refused.stderr
    forced = _dry_run(tmp_path, "noble", python, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "no lock file for this OS: installing setup.py's version ranges, unpinned" in forced.stdout
    assert _pip_line(forced.stdout).endswith(f"'{REPO}[pi,gpio,display]'")  # no --constraint


def test_missing_os_release_is_refused(tmp_path: Path) -> None:
    python = shutil.which("python3") or "/usr/bin/python3"
    args = ["--dry-run", "--root", str(tmp_path / "root"), "--no-apt", "--no-user", "--python", python,
            "--os-release", str(tmp_path / "absent"), "--machine", "aarch64"]
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"cannot tell the OS: no {tmp_path}/absent" in result.stderr


def test_uninstall_needs_no_supported_platform(tmp_path: Path) -> None:
    python = shutil.which("python3") or "/usr/bin/python3"
    result = _dry_run(tmp_path, "noble", python, "--uninstall", machine="x86_64")
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
