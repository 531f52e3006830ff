"""The chaos suite (scripts/chaos.py) as one test, marked ``chaos``: about 2 minutes with a real
mosquitto and real daemons; deselect it with ``-m 'not chaos'`` for a quick run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.chaos
def test_every_chaos_scenario_meets_its_target() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "chaos.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "FAIL" not in out.stdout and "8 scenario(s)" in out.stdout
