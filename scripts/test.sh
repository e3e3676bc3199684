#!/usr/bin/env bash
# Install hpcwaas with its test tools into .venv, then lint and run every test.
set -euo pipefail
HPCWAAS_EXTRAS=",test" source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
ruff check src tests
ruff format --check src tests
mypy
# pytest exits 5 when it collected no test: that is a failure here, as any non-zero exit.
python -m pytest "$@"
