#!/usr/bin/env bash
# Fresh machine to green tests: install emotiond with its test tools and Debian packages, check
# style and types (ruff, mypy; configured in pyproject.toml), then run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh --dev

echo "test: ruff check" >&2
.venv/bin/ruff check emotiond tests scripts benchmarks
echo "test: mypy" >&2
.venv/bin/mypy

# The audio-model training test needs TensorFlow, which the daemon never imports: it gets its own
# virtual environment (.cache/tfvenv, git-ignored), made once. Point EMOTIOND_TF_VENV elsewhere to
# reuse another, or set it to "none" to skip that one test.
if [ -z "${EMOTIOND_TF_VENV:-}" ]; then
  tfvenv="$PWD/.cache/tfvenv"
  if ! "$tfvenv/bin/python" -c "import tensorflow" >/dev/null 2>&1; then
    echo "setup: creating $tfvenv with tensorflow-cpu 2.15.1 (for the training test only)"
    python3 -m venv "$tfvenv"
    "$tfvenv/bin/python" -m pip install -q "tensorflow-cpu==2.15.1"
  fi
  export EMOTIOND_TF_VENV="$tfvenv"
fi
exec .venv/bin/python -m pytest -q "$@"
