"""scripts/install.sh: shellcheck-clean, a dry run that changes nothing, and the real thing below --root.

The real run creates a venv with this machine's Python and pip-installs a snapshot of the checkout
into it (about half a minute), then checks that a second run has nothing to do, then makes
ai-edge-litert crash and checks the fallback (Bookworm) and the error without one (Trixie's lock).
This machine is no Pi (x86-64), so every run passes --force; the platform choice itself is tested
in test_install_platform.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "install.sh"
BASE = ["--no-apt", "--no-user", "--python", sys.executable, "--force"]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def _run(
    script: Path, *args: str, timeout: float = 600, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_NO_INPUT": "1", **(env_extra or {})}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(["shellcheck", "--severity=style", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_help_and_unknown_options() -> None:
    assert "--dry-run" in _run(SCRIPT, "--help").stdout
    bad = _run(SCRIPT, "--frobnicate")
    assert bad.returncode == 64 and "unknown option --frobnicate" in bad.stderr


def test_dry_run_prints_the_whole_plan_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = _run(SCRIPT, "--dry-run", "--root", str(root), "--with-broker", "--force")
    second = _run(SCRIPT, "--dry-run", "--root", str(root), "--with-broker", "--force")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # nothing changed between the runs
    assert not root.exists()
    out = first.stdout
    assert out.startswith("dry run: nothing will be changed")
    for action in (
        "-m venv --system-site-packages " + f"{root}/opt/emotiond/venv",
        f"-m pip install --disable-pip-version-check --no-input '{REPO}[pi,gpio,display]'",
        "model self-test",
        f"install -D -m 0640 {REPO}/config.toml {root}/etc/emotiond/config.toml",
        f"install -D -m 0600 /dev/null {root}/etc/emotiond/mqtt_password",
        f"install_unit {REPO}/systemd/emotiond.service {root}/etc/systemd/system/emotiond.service",
        f"systemctl --root={root} enable emotiond.service",
    ):
        assert action in out, action
    assert "useradd --system" in out or "ok:   user emotiond exists" in out
    assert out.rstrip().splitlines()[-1].startswith("dry run: ") and "action(s) would be taken" in out


def _snapshot(dest: Path) -> Path:
    """A frozen copy of what gets installed, so edits elsewhere in the shared tree cannot change it mid-test."""
    dest.mkdir()
    for item in REPO.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    for folder in ("emotiond", "models", "samples", "systemd", "docs", "scripts"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest / "scripts" / "install.sh"


def test_real_install_below_a_root_then_nothing_to_do_then_uninstall(tmp_path: Path) -> None:
    script = _snapshot(tmp_path / "src")
    root = tmp_path / "root"
    args = ["--root", str(root), *BASE, "--extras", "gpio,display"]
    if shutil.which("systemctl") is None:
        args.append("--no-systemd")

    first = _run(script, *args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "done: " in first.stdout and "model self-test passes" in first.stdout
    venv = root / "opt/emotiond/venv"
    emotiond = venv / "bin/emotiond"
    assert emotiond.is_file() and os.access(emotiond, os.X_OK)
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    version = subprocess.run([str(emotiond), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("emotiond ")
    config = root / "etc/emotiond/config.toml"
    check = subprocess.run([str(emotiond), "-c", str(config), "check-config"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    password = root / "etc/emotiond/mqtt_password"
    assert password.read_bytes() == b"" and stat.S_IMODE(password.stat().st_mode) == 0o600
    if "--no-systemd" not in args:
        unit = root / "etc/systemd/system/emotiond.service"
        assert unit.read_text() == (REPO / "systemd/emotiond.service").read_text()
        assert (root / "etc/systemd/system/multi-user.target.wants/emotiond.service").is_symlink()

    config.write_text(config.read_text() + "\n# local edit\n")
    before = _tree(root)
    second = _run(script, *args)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout and "+ " not in second.stdout
    assert config.read_text().endswith("# local edit\n")  # an existing config is never overwritten
    assert _tree(root) == before
    assert "nothing to do" in _run(script, *args, "--dry-run").stdout

    # ai-edge-litert made to crash: a package of that name first on the path that dies with SIGSEGV
    shim = tmp_path / "crashing-litert" / "ai_edge_litert"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("")
    (shim / "interpreter.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    crash = {"PYTHONPATH": os.pathsep.join(filter(None, [str(shim.parent), os.environ.get("PYTHONPATH")]))}
    fallback = _run(script, *args, env_extra=crash)
    assert fallback.returncode == 0, fallback.stdout[-3000:] + fallback.stderr[-3000:]
    out = fallback.stdout
    assert "model self-test failed with ai-edge-litert (ai-edge-litert: ai_edge_litert: FAILED" in out
    assert "crashed: killed by SIGSEGV" in out
    assert " -m pip install --disable-pip-version-check --no-input " in out and "tflite-runtime" in out
    assert "ok:   model self-test passes with tflite-runtime" in out
    again = _run(script, *args, env_extra=crash)  # the fallback in place: nothing to do
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
    assert "passes with tflite-runtime (ai-edge-litert fails on this device: " in again.stdout

    # Trixie's lock has no fallback: the crash is a clear error naming what was tried
    os_release = tmp_path / "os-release-trixie"
    os_release.write_text("PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nVERSION_CODENAME=trixie\nID=debian\n")
    trixie = _run(script, *args, "--os-release", str(os_release), env_extra=crash)
    assert trixie.returncode == 1, trixie.stdout[-3000:] + trixie.stderr[-3000:]
    assert "requirements-pi-trixie.txt" in trixie.stdout
    error = trixie.stderr.strip().splitlines()[-1]
    assert error.startswith("install.sh: error: the model self-test failed with ai-edge-litert, the only interpreter")
    assert "tried ai-edge-litert: ai_edge_litert: FAILED" in error and "SIGSEGV" in error
    assert "Traceback" not in trixie.stderr

    gone = _run(script, *args, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert not (root / "opt/emotiond").exists() and config.exists()  # config kept without --purge
    purge = _run(script, *args, "--uninstall", "--purge")
    assert purge.returncode == 0 and not (root / "etc/emotiond").exists()
    assert "nothing to do" in _run(script, *args, "--uninstall", "--purge").stdout
