"""The benchmark run's one table: every row recorded by tests/bench/bench_*.py, printed last."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import pytest
from tests.bench.support import RESULTS_FILE, TARGETS, load_rows

BENCH_DIR = Path(__file__).parent
_benchmarks_collected = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Only a run of the benchmarks (scripts/bench.sh) has a table; each starts its own.
    global _benchmarks_collected
    _benchmarks_collected = any(item.path.parent == BENCH_DIR for item in items)
    if _benchmarks_collected:
        RESULTS_FILE.unlink(missing_ok=True)


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cores} cores ({cpu}), Python {platform.python_version()}, {platform.platform()}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _benchmarks_collected:
        return
    rows = load_rows()
    write = terminalreporter.write_line
    write("")
    write(f"Benchmark results ({_machine()})")
    write("")
    write("| What | Measured | Target | Result |")
    write("|---|---|---|---|")
    notes = []
    for key, what, target in TARGETS:
        row = rows.get(key)
        if row is None:
            write(f"| {what} | not run | {target} | not met |")
            notes.append(
                f"- {what}: not run in this session (failed before measuring, or deselected)"
            )
            continue
        write(f"| {what} | {row.measured} | {target} | {'met' if row.met else 'not met'} |")
        if not row.met:
            notes.append(f"- {what}: {row.note or 'see the benchmark output above'}")
    for note in notes:
        write(note)
    write(f"(also in {RESULTS_FILE})")
