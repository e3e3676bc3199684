"""Benchmark: how long `waas` takes to start (docs/performance.md, the last two rows).

Not a test: named bench_*, so only scripts/bench.sh collects it. Each command runs RUNS
times, interleaved with its reference so that both see the same machine load; the medians
are compared:

* `waas --help` against `python -c pass` (the same interpreter and venv);
* `waas workflows list` against a minimal standard-library script doing the same GET and
  printing the JSON (tests/bench/stdlib_list.py), both against one running server.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.bench.support import median, record, timed_runs
from tests.conftest import BIN, LiveServer, free_port

RUNS = 15
HELP_RATIO = 5.0
LIST_RATIO = 2.5
HERE = Path(__file__).resolve().parent


@pytest.fixture
def list_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data", free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def _interleaved(first: list[str], second: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Median wall seconds of each command, run alternately RUNS times (after one warm-up)."""
    timed_runs(first, 1, env)
    timed_runs(second, 1, env)
    a: list[float] = []
    b: list[float] = []
    for _ in range(RUNS):
        a += timed_runs(first, 1, env)
        b += timed_runs(second, 1, env)
    return median(a), median(b)


def test_waas_help_starts_quickly(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    waas, python = _interleaved([str(BIN / "waas"), "--help"], [sys.executable, "-c", "pass"], env)
    ratio = waas / python
    met = ratio <= HELP_RATIO
    record(
        "cli_help",
        f"{ratio:.1f}x ({waas * 1000:.0f} ms vs {python * 1000:.0f} ms)",
        met,
        "" if met else "importing the CLI's modules and building its parser",
    )


def test_waas_workflows_list_costs_little_more_than_a_stdlib_get(
    list_server: LiveServer, tmp_path: Path
) -> None:
    token = list_server.token("lister")
    env = {**os.environ, "HOME": str(tmp_path)}
    started = time.monotonic()
    waas, stdlib = _interleaved(
        [str(BIN / "waas"), "--api_url", list_server.url, f"-t={token}", "workflows", "list"],
        [sys.executable, str(HERE / "stdlib_list.py"), list_server.url, token],
        env,
    )
    assert time.monotonic() - started < 120
    ratio = waas / stdlib
    met = ratio <= LIST_RATIO
    record(
        "cli_list",
        f"{ratio:.1f}x ({waas * 1000:.0f} ms vs {stdlib * 1000:.0f} ms)",
        met,
        "" if met else "httpx, pydantic and rich load for the one request and its table",
    )
