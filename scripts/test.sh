#!/usr/bin/env bash
# Install hpcwaas with its test tools into .venv, what the SSO tests run (Debian's
# chromium, Node.js and the npm package oidc-provider in tests/oidc) and what the loopback
# test cluster of tests/cluster_support.py runs (Debian's openssh-server, munge and Slurm)
# the throwaway PostgreSQL server of tests/pg_support.py (Debian's postgresql-15) and the
# Apache Airflow of tests/airflow_support.py (its own virtual environment, cached),
# then lint and run every test. Each install step is skipped when its result is already there
# (scripts/install-test-deps.sh).
set -euo pipefail
TEST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$TEST_ROOT/scripts/install-test-deps.sh"

HPCWAAS_EXTRAS=",test" source "$TEST_ROOT/scripts/bootstrap.sh"
cd "$ROOT"
ruff check src tests
ruff format --check src tests
mypy
# pytest exits 5 when it collected no test: that is a failure here, as any non-zero exit.
python -m pytest "$@"
