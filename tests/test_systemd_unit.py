"""systemd/emotiond.service: `systemd-analyze verify` is clean and the security exposure is <= 3.0.

Both run offline (no running systemd needed). They are skipped only where systemd-analyze is not
installed at all; CI installs the `systemd` apt package so they always run there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from emotiond.watchdog import SHUTDOWN_DEADLINE, STOP_BUDGET

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "emotiond.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")


def settings(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (keys may repeat), comments and section headers dropped."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A file-system root with the unit, stand-in ExecStart/ExecReload binaries and systemd's own units."""
    s = settings(UNIT.read_text())
    for key in ("ExecStart", "ExecReload"):
        binary = tmp_path / s[key][0].split()[0].lstrip("/")
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("#!/bin/sh\nexit 0\n")
        binary.chmod(0o755)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system/emotiond.service")
    for units in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (units / "sysinit.target").exists():
            shutil.copytree(units, tmp_path / "usr/lib/systemd/system", symlinks=True)
            break
    return tmp_path


@needs_analyze
def test_verify_passes_without_a_single_warning(root: Path) -> None:
    result = _analyze("verify", "--man=no", f"--root={root}", "emotiond.service")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


@needs_analyze
def test_verify_would_catch_a_broken_unit(root: Path) -> None:
    """verify exits 0 on unknown keys; the test above must fail on its warnings, as it does here."""
    path = root / "etc/systemd/system/emotiond.service"
    path.write_text(path.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = _analyze("verify", "--man=no", f"--root={root}", "emotiond.service")
    assert "restart specifier" in result.stderr


@needs_analyze
def test_security_exposure_is_at_most_3() -> None:
    result = _analyze("security", "--offline=true", "--threshold=30", "--no-pager", str(UNIT))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"exposure {exposure}")
    assert exposure <= 3.0
    assert result.returncode == 0, result.stderr


def test_unit_has_the_lifecycle_and_identity_the_daemon_relies_on() -> None:
    s = settings(UNIT.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert int(s["WatchdogSec"][0]) >= 10  # above the default health.max_frame_age
    assert s["Restart"] == ["on-failure"] and "StartLimitBurst" in s and "StartLimitIntervalSec" in s
    # The daemon's own exit deadline must fire before systemd's SIGKILL.
    assert SHUTDOWN_DEADLINE < int(s["TimeoutStopSec"][0])
    assert STOP_BUDGET < SHUTDOWN_DEADLINE  # the orderly steps share a budget below the hard exit
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP re-reads the config
    assert s["ExecStart"] == ["/opt/emotiond/venv/bin/emotiond -c /etc/emotiond/config.toml run"]
    assert s["User"] == ["emotiond"]
    assert set(s["SupplementaryGroups"][0].split()) == {"video", "audio", "gpio", "i2c"}
    assert s["LoadCredential"] == ["mqtt_password:/etc/emotiond/mqtt_password"]
    assert s["ConfigurationDirectory"] == s["StateDirectory"] == s["RuntimeDirectory"] == ["emotiond"]
    assert s["CapabilityBoundingSet"] == [""] and s["NoNewPrivileges"] == ["yes"]
    assert s["ProtectSystem"] == ["strict"] and s["SystemCallFilter"][0] == "@system-service"
