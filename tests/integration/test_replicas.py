"""Several replicas on one PostgreSQL: takeover after kill -9 and SIGTERM, a database restart,
cancels and log long-polls across replicas. Real processes, PostgreSQL, Slurm and sshd."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster_support import Cluster
from tests.conftest import LiveServer, wait_for_status
from tests.pg_support import Postgres
from tests.replicas_support import Replicas, jobs_named_for, logs_of

FINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@pytest.fixture
def replicas(
    tmp_path: Path, postgres: Postgres, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> Iterator[Replicas]:
    setup = Replicas(tmp_path, postgres, cluster)
    setup.start()
    yield setup
    setup.stop()


def _wait_job_ids(replicas: Replicas, token: str, ids: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with replicas.servers[0].client(token) as client:
        while time.monotonic() < deadline:
            steps = [client.get(f"/executions/{i}").json()["steps"][0] for i in ids]
            if all(step.get("job_id") for step in steps):
                return
            time.sleep(0.5)
    raise AssertionError("not every step was submitted in time")


def _start_long_runs(replicas: Replicas, per_login: int, seconds: int) -> tuple[str, list[str]]:
    """``per_login`` executions for each cluster account, triggered through both replicas."""
    token = replicas.servers[0].token("scientist")
    ids: list[str] = []
    for server, login in zip(replicas.servers, ("hpcuser1", "hpcuser2"), strict=True):
        replicas.cluster.clear_authorized(login)
        key = replicas.key_for(token, login)
        for _ in range(per_login):
            inputs = {"user_id": login, "vault_id": key, "seconds": seconds}
            ids.append(replicas.trigger(server, token, "multi@cluster@long", inputs))
    _wait_job_ids(replicas, token, ids)
    return token, ids


def _busiest(replicas: Replicas) -> LiveServer:
    """The replica driving the most executions."""
    pids = Counter(int(owner.split(":")[1]) for owner in replicas.lease_owners().values())
    assert pids, "no replica drives anything"
    busiest = pids.most_common(1)[0][0]
    return next(s for s in replicas.servers if s.pid == busiest)


def _assert_each_ran_once(replicas: Replicas, token: str, ids: list[str]) -> None:
    survivor = next(
        s for s in replicas.servers if s.process is not None and s.process.poll() is None
    )
    with survivor.client(token) as client:
        for execution_id in ids:
            body = wait_for_status(client, execution_id, FINAL, timeout=120)
            assert body["status"] == "SUCCEEDED", body
            lines = Counter(logs_of(client, execution_id))
            assert lines["started"] == 1 and lines["finished"] == 1, lines
            assert len(jobs_named_for(execution_id)) == 1, jobs_named_for(execution_id)
    assert replicas.log_indices_dense() == {}, "log indices have holes"


def test_executions_of_a_killed_replica_end_on_the_other_each_job_submitted_once(
    replicas: Replicas,
) -> None:
    token, ids = _start_long_runs(replicas, per_login=10, seconds=12)
    # One replica per cluster account: its jobs are polled by one squeue per interval.
    assert replicas.drivers_per_account() == {"hpcuser1": 1, "hpcuser2": 1}
    victim = _busiest(replicas)
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    _assert_each_ran_once(replicas, token, ids)


def test_a_stopped_replica_hands_its_executions_over_without_waiting_for_its_leases(
    tmp_path: Path, postgres: Postgres, cluster: Cluster, cluster_jobs_cleanup: Cluster
) -> None:
    # Leases of 120 s: only a release at stop lets the other replica go on within the test.
    setup = Replicas(tmp_path, postgres, cluster, lease_seconds=120)
    setup.start()
    try:
        token, ids = _start_long_runs(setup, per_login=3, seconds=8)
        victim = _busiest(setup)
        assert victim.process is not None
        stopped_at = time.monotonic()
        victim.process.send_signal(signal.SIGTERM)
        victim.process.wait(timeout=30)
        _assert_each_ran_once(setup, token, ids)
        assert time.monotonic() - stopped_at < 60
    finally:
        setup.stop()


def test_executions_end_correctly_across_a_restart_of_postgresql(replicas: Replicas) -> None:
    token, ids = _start_long_runs(replicas, per_login=3, seconds=10)
    replicas.postgres.restart()
    _assert_each_ran_once(replicas, token, ids)


def test_job_output_is_logged_exactly_once_across_a_takeover(replicas: Replicas) -> None:
    token = replicas.servers[0].token("ticker")
    replicas.cluster.clear_authorized("hpcuser1")
    key = replicas.key_for(token, "hpcuser1")
    inputs = {"user_id": "hpcuser1", "vault_id": key, "count": 24}
    execution_id = replicas.trigger(replicas.servers[0], token, "multi@cluster@ticks", inputs)
    owner = replicas.servers[0] if replicas.servers[0].pid in _owner_pids(replicas) else None
    driver = owner or replicas.servers[1]
    survivor = replicas.servers[1] if driver is replicas.servers[0] else replicas.servers[0]
    with survivor.client(token) as client:
        deadline = time.monotonic() + 60
        while not any(line.startswith("tick 3") for line in logs_of(client, execution_id)):
            assert time.monotonic() < deadline, "the job never printed"
            time.sleep(0.2)
    assert driver.process is not None
    driver.process.send_signal(signal.SIGKILL)
    driver.process.wait()
    with survivor.client(token) as client:
        body = wait_for_status(client, execution_id, FINAL, timeout=120)
        assert body["status"] == "SUCCEEDED", body
        ticks = [line for line in logs_of(client, execution_id) if line.startswith("tick ")]
    assert ticks == [f"tick {i}" for i in range(1, 25)]
    assert replicas.log_indices_dense() == {}


def _owner_pids(replicas: Replicas) -> set[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        owners = replicas.lease_owners()
        if owners:
            return {int(owner.split(":")[1]) for owner in owners.values()}
        time.sleep(0.2)
    raise AssertionError("no replica claimed the execution")


def test_cancel_on_one_replica_stops_the_job_the_other_drives(replicas: Replicas) -> None:
    token, ids = _start_long_runs(replicas, per_login=1, seconds=300)
    owners = replicas.lease_owners()
    for execution_id in ids:
        driver_pid = int(owners[execution_id].split(":")[1])
        other = next(s for s in replicas.servers if s.pid != driver_pid)
        with other.client(token) as client:
            job_id = client.get(f"/executions/{execution_id}").json()["steps"][0]["job_id"]
            asked = time.monotonic()
            assert client.delete(f"/executions/{execution_id}").status_code == 202
            body = wait_for_status(client, execution_id, FINAL, timeout=30)
        assert body["status"] == "CANCELLED", body
        assert replicas.cluster.wait_job_state(job_id, {"CANCELLED"}, timeout=30) == "CANCELLED"
        # through the other replica, scancel, Slurm's end of the job and its accounting
        assert time.monotonic() - asked < 30


@pytest.fixture
def local_replicas(tmp_path: Path, postgres: Postgres) -> Iterator[Replicas]:
    setup = Replicas(tmp_path, postgres, None)
    setup.start()
    yield setup
    setup.stop()


def test_a_log_long_poll_on_one_replica_returns_an_entry_written_by_the_other(
    local_replicas: Replicas,
) -> None:
    replicas = local_replicas
    token = replicas.servers[0].token("listener")
    execution_id = replicas.trigger(replicas.servers[0], token, "chat@local@chatter", {"delay": 3})
    driver_pid = next(iter(_owner_pids(replicas)))
    reader = next(s for s in replicas.servers if s.pid != driver_pid)
    with reader.client(token) as client:
        wait_for_status(client, execution_id, {"RUNNING"}, timeout=30)
        total = client.get(f"/executions/{execution_id}/logs").json()["total_results"]
        started = time.monotonic()
        body = client.get(
            f"/executions/{execution_id}/logs",
            params={"from": str(total), "timeout": "30s"},
            timeout=40,
        ).json()
        waited = time.monotonic() - started
    assert body["logs"], "the long poll ended without an entry"
    assert waited < 10, f"the long poll waited {waited:.1f} s: it missed the other replica's entry"
