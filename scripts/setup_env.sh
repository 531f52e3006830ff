#!/usr/bin/env bash
# Make (or reuse) the project's virtual environment in .venv and install emotiond into it.
# Usage: scripts/setup_env.sh [--dev]   (--dev adds the test tools and the Debian packages tests use)
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PYTHON=${PYTHON:-python3}

# Debian packages the tests use: a real MQTT broker and client, speech synthesis for audio tests,
# ffmpeg for clip audio, chromium for the report screenshot, systemd-analyze and shellcheck for
# the unit and install script.
APT_PACKAGES=(mosquitto mosquitto-clients espeak-ng sox ffmpeg chromium systemd shellcheck)

if [ "$DEV" = 1 ]; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$DEV" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[dev]"
else
  .venv/bin/python -m pip install -q -e .
fi
