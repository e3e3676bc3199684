#!/usr/bin/env bash
# Run the benchmarks of tests/bench (docs/benchmarks.md): install hpcwaas with its test tools
# into .venv and the loopback test cluster's packages (scripts/install-test-deps.sh cluster),
# then run pytest on tests/bench only, printing each benchmark's table. Needs root (the
# cluster starts Slurm and sshd). Extra arguments go to pytest, e.g. -k or -x.
set -euo pipefail
BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$BENCH_ROOT/scripts/install-test-deps.sh" cluster

HPCWAAS_EXTRAS=",test" source "$BENCH_ROOT/scripts/bootstrap.sh"
cd "$ROOT"
# bench_*.py, not test_*.py: the normal test run (scripts/test.sh) does not collect them.
python -m pytest tests/bench -p no:cacheprovider -s -q -o python_files='bench_*.py' "$@"
