"""Benchmarks of dag_run steps on the real Airflow of tests/airflow_support.py.

Not a test: named bench_*, so only scripts/bench.sh collects it. An hpcwaas server (debug
log) whose ``cluster`` environment has the session's Airflow (LocalExecutor on PostgreSQL):

* ``dls_trigger``: trigger -> DAG run created, against a bare POST of a run to the same
  Airflow, interleaved in the same run. "Created" is the run's logical date, which Airflow
  stamps when it handles the POST (both paths leave it to Airflow), minus the moment the
  client sent its request: for hpcwaas the POST /workflows/{id}, for the bare one the POST
  /api/v1/dags/{dag}/dagRuns. The SSH pool and the Airflow client are warm (one execution ran
  before); the DAG is paused meanwhile, so that its runs are created but no task runs and
  competes for the two cores (hpcwaas's executions are then cancelled).
* ``dls_follow``: 200 executions of a one-task DAG triggered at once; while at least 100 runs
  are followed, the server's ``airflow poll`` debug lines give the list requests of each
  poll round, which must be at most ceil(runs followed / 100) (fewer when some of the runs
  followed have ended, and so are no longer listed); the server's CPU time and RSS over the
  window come from /proc, and the time between poll rounds is reported.
"""

from __future__ import annotations

import math
import re
import shutil
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import httpx
from tests.airflow_support import Airflow
from tests.bench.support import ARTIFACTS, record
from tests.cluster_support import Cluster
from tests.conftest import wait_for_status
from tests.integration.test_cluster_runs import _new_key
from tests.integration.test_dls_runs import LOGIN, DlsSetup
from tests.openbao_support import OpenBao

TRIGGERS = 15
FOLLOWED = 200
POLL_LINE = re.compile(
    r"^(\S+ \S+) DEBUG hpcwaas\.engine\.airflow: airflow poll of \S+: (\d+) runs followed, "
    r"(\d+) run list requests, (\d+) task instance list requests$",
    re.MULTILINE,
)
TICKS = 100


def _created(run: dict[str, object]) -> float:
    return datetime.fromisoformat(str(run["logical_date"])).timestamp()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pause(airflow: Airflow, paused: bool) -> None:
    answer = airflow.api("PATCH", "/dags/hpcwaas_test_quick", json={"is_paused": paused})
    assert answer.status_code == 200, answer.text


def _trigger(client: httpx.Client, workflow: str, body: dict[str, object]) -> str:
    answer = client.post(workflow, json=body)
    assert answer.status_code == 201, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


def _run_of(airflow: Airflow, execution_id: str, timeout: float = 30) -> dict[str, object]:
    run_id = f"hpcwaas__{execution_id}__echo__1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = airflow.api("GET", f"/dags/hpcwaas_test_quick/dagRuns/{run_id}")
        if answer.status_code == 200:
            return dict(answer.json())
        time.sleep(0.05)
    raise AssertionError(f"no run {run_id}")


def test_trigger_to_dag_run_created_and_200_runs_followed(
    tmp_path: Path, cluster: Cluster, airflow: Airflow, openbao: OpenBao
) -> None:
    setup = DlsSetup(tmp_path, cluster, airflow, openbao, ("--log_level", "debug"))
    # Limits raised for the run: one user triggers 200 executions in a burst.
    setup.server.env["HPCWAAS_LIMITS__MAX_TRIGGERS_PER_MINUTE"] = "1000000"
    setup.server.env["HPCWAAS_LIMITS__MAX_RUNNING_EXECUTIONS_PER_USER"] = "1000000"
    setup.start()
    try:
        token = setup.server.token("alice")
        key = _new_key(setup, cluster, token, LOGIN)  # type: ignore[arg-type]
        workflow = "/workflows/dls@cluster@quick"
        body = {"inputs": {"user_id": LOGIN, "vault_id": key}}
        with setup.server.client(token) as client:
            warm = _trigger(client, workflow, body)
            wait_for_status(client, warm, {"SUCCEEDED"}, timeout=120)
            # Paused, the DAG's runs are created but not run: no task competes for the CPU.
            _pause(airflow, True)
            ours, bare, pending = [], [], []
            for index in range(TRIGGERS):
                sent = time.time()
                answer = airflow.api(
                    "POST",
                    "/dags/hpcwaas_test_quick/dagRuns",
                    json={"dag_run_id": f"bare_{index}_{uuid.uuid4().hex}", "conf": {}},
                )
                assert answer.status_code == 200, answer.text
                bare.append(_created(answer.json()) - sent)
                sent = time.time()
                execution = _trigger(client, workflow, body)
                ours.append(_created(_run_of(airflow, execution)) - sent)
                pending.append(execution)
                time.sleep(0.5)
            for execution in pending:  # their runs are set failed, never run
                assert client.delete(f"/executions/{execution}").status_code == 202
            for execution in pending:
                wait_for_status(client, execution, {"CANCELLED"}, timeout=60)
            _pause(airflow, False)
        extra_ms = (statistics.median(ours) - statistics.median(bare)) * 1000
        record(
            "dls_trigger",
            f"+{extra_ms:.0f} ms ({statistics.median(ours) * 1000:.0f} ms vs "
            f"{statistics.median(bare) * 1000:.0f} ms, medians of {TRIGGERS})",
            extra_ms <= 100,
        )
        _follow_many(setup, token, key)
    finally:
        setup.server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(setup.server.log_path, ARTIFACTS / "bench-dls-server.log")


def _follow_many(setup: DlsSetup, token: str, key: str) -> None:
    workflow = "/workflows/dls@cluster@quick"
    body = {"inputs": {"user_id": LOGIN, "vault_id": key}}
    log_start = setup.server.log_path.stat().st_size
    with setup.server.client(token) as client:
        with ThreadPoolExecutor(8) as pool:
            executions = list(pool.map(lambda _: _trigger(client, workflow, body), range(FOLLOWED)))
        pid = setup.server.pid
        assert pid is not None
        cpu_start, window_start = _cpu_seconds(pid), time.monotonic()
        rss = [_rss_mb(pid)]
        deadline = time.monotonic() + 900
        left = executions
        while left and time.monotonic() < deadline:
            time.sleep(5)
            rss.append(_rss_mb(pid))
            left = [
                e
                for e in left
                if client.get(f"/executions/{e}").json()["status"] not in ("SUCCEEDED", "FAILED")
            ]
        cpu = (_cpu_seconds(pid) - cpu_start) / (time.monotonic() - window_start) * 100
        failed = [
            e for e in executions if client.get(f"/executions/{e}").json()["status"] != "SUCCEEDED"
        ]
    text = setup.server.log_path.read_bytes()[log_start:].decode(errors="replace")
    matches = list(POLL_LINE.finditer(text))
    rounds = [tuple(map(int, m.groups()[1:])) for m in matches]
    times = [
        datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for m, r in zip(matches, rounds, strict=True)
        if r[0] >= 100
    ]
    gaps = [b - a for a, b in pairwise(times)]
    busy = [r for r in rounds if r[0] >= 100]
    # While fewer are followed (the first and last rounds), runs triggered but not yet
    # followed, or still ending, are listed too: the bound is for the busy rounds.
    batched = all(lists <= math.ceil(runs / 100) for runs, lists, _ in busy)
    most = max((r[0] for r in rounds), default=0)
    measured = (
        f"{len(rounds)} poll rounds, up to {most} runs followed; run list requests <= "
        f"ceil(runs/100) in {'every' if batched else 'not every'} busy round "
        f"({len(busy)} rounds with >= 100 runs, "
        f"{statistics.median(gaps) if gaps else 0:.1f} s apart (median)); "
        f"CPU {cpu:.1f} % of a core; RSS max "
        f"{max(rss):.0f} MB; {len(failed)} of {FOLLOWED} not SUCCEEDED"
    )
    record("dls_follow", measured, batched and not left and not failed and most >= 100)
