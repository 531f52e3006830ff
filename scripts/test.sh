#!/usr/bin/env bash
# Fresh machine to green tests: install emotiond with its test tools and Debian packages, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh --dev
exec .venv/bin/python -m pytest -q "$@"
