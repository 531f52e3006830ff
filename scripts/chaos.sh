#!/usr/bin/env bash
# The chaos suite (docs/reliability.md): a real mosquitto on 127.0.0.1 and the real daemon on the
# looped sample clip, faults injected, one line of figures per scenario; exit 1 if one misses.
# Needs mosquitto (apt-get install mosquitto mosquitto-clients) and the dev venv (scripts/setup_env.sh --dev).
# Usage: scripts/chaos.sh [--only NAME ...] [--skip-bad-inputs]
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" scripts/chaos.py "$@"
