#!/usr/bin/env bash
# Fresh machine to emotion events: install emotiond in .venv, then run it on the bundled sample video.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
exec .venv/bin/emotiond demo "$@"
