#!/bin/sh
# Install hpcwaas into a virtual environment, as the container images do.
# Usage: install.sh SOURCE_DIR VENV_DIR [EXTRA]   (EXTRA: server for the server image, empty for the CLI)
set -eu
src="$1"
venv="$2"
extra="${3:-}"
python3 -m venv "$venv"
"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check --quiet --upgrade pip
if [ -n "$extra" ]; then
  "$venv/bin/pip" install --no-cache-dir --disable-pip-version-check --quiet "$src[$extra]"
else
  "$venv/bin/pip" install --no-cache-dir --disable-pip-version-check --quiet "$src"
fi
