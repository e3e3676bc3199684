#!/usr/bin/env bash
# Run the benchmark suite of tests/bench (docs/performance.md): install wrk and the loopback
# test cluster's packages and Airflow (scripts/install-test-deps.sh cluster postgres bench airflow) and hpcwaas with its
# test tools into .venv, then run pytest on tests/bench only. It ends with one table: one row
# per performance target, its measured value and whether it was met (also written to
# test-artifacts/bench-results.json). Needs root (the cluster starts Slurm and sshd) and two
# cores (the load generator and the server under test get one each). About 5 minutes.
# Extra arguments go to pytest, e.g. -k or -x.
set -euo pipefail
BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$BENCH_ROOT/scripts/install-test-deps.sh" cluster postgres bench airflow

HPCWAAS_EXTRAS=",test" source "$BENCH_ROOT/scripts/bootstrap.sh"
cd "$ROOT"
# Bytecode for hpcwaas's own modules, as an installed (not editable) package has: without it,
# and with PYTHONDONTWRITEBYTECODE set, every `waas` run of the start-up rows would compile
# the CLI's sources again (about 14 ms of a 140 ms command).
python -m compileall -q src
# bench_*.py, not test_*.py: the normal test run (scripts/test.sh) does not collect them.
python -m pytest tests/bench -p no:cacheprovider -s -q -o python_files='bench_*.py' "$@"
