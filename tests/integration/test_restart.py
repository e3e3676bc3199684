"""What a restart of the server does to executions of the local environment."""

from __future__ import annotations

import re
import signal
import socket
import threading
import time

import pytest
from tests.conftest import LiveServer, processes_of, trigger, wait_for_status


def _running_sleep(server: LiveServer, token: str) -> str:
    with server.client(token) as client:
        execution_id = trigger(client, "demo@local@sleep", seconds=300)
        wait_for_status(client, execution_id, {"RUNNING"})
    deadline = time.monotonic() + 10
    while not processes_of(execution_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of(execution_id), "the sleep step never started"
    return execution_id


def test_killed_server_fails_its_running_executions_at_restart_and_stops_leftovers(
    fresh_server: LiveServer,
) -> None:
    fresh_server.start()
    token = fresh_server.token("crash-user")
    execution_id = _running_sleep(fresh_server, token)
    assert fresh_server.process is not None
    fresh_server.process.send_signal(signal.SIGKILL)
    fresh_server.process.wait()
    assert processes_of(execution_id), "a SIGKILLed server cannot stop its children"

    fresh_server.start()
    with fresh_server.client(token) as client:
        body = client.get(f"/executions/{execution_id}").json()
        assert body["status"] == "FAILED"
        assert "server stopped" in body["error"]
        assert body["steps"][0]["state"] == "FAILED"
        logs = client.get(f"/executions/{execution_id}/logs").json()["logs"]
    assert any("do not survive a restart" in e["content"] for e in logs)
    assert processes_of(execution_id) == []


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stopped_server_ends_its_running_executions_and_their_processes(
    fresh_server: LiveServer, stop_signal: signal.Signals
) -> None:
    fresh_server.start()
    token = fresh_server.token("stop-user")
    execution_id = _running_sleep(fresh_server, token)
    assert fresh_server.process is not None
    fresh_server.process.send_signal(stop_signal)
    # uvicorn shuts down cleanly, then re-raises the signal, as UNIX services do
    assert fresh_server.process.wait(timeout=20) in (0, -stop_signal, 128 + stop_signal)
    assert processes_of(execution_id) == []
    fresh_server.start()
    with fresh_server.client(token) as client:
        body = client.get(f"/executions/{execution_id}").json()
    assert body["status"] == "FAILED"
    assert "stopped" in body["error"]


def test_a_stopping_server_answers_its_waiting_log_long_polls_at_once(
    fresh_server: LiveServer,
) -> None:
    fresh_server.start()
    token = fresh_server.token("poll-user")
    execution_id = _running_sleep(fresh_server, token)
    with fresh_server.client(token) as client:
        total = client.get(f"/executions/{execution_id}/logs").json()["total_results"]
    answers: list[int] = []

    def long_poll() -> None:
        with fresh_server.client(token) as client:
            params = {"from": str(total), "timeout": "60s"}
            answers.append(
                client.get(
                    f"/executions/{execution_id}/logs", params=params, timeout=90
                ).status_code
            )

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(1)  # the poll is waiting now
    assert fresh_server.process is not None
    stopped_at = time.monotonic()
    fresh_server.process.send_signal(signal.SIGTERM)
    fresh_server.process.wait(timeout=30)
    poller.join(timeout=30)
    assert answers == [200]
    assert time.monotonic() - stopped_at < 15, "the long poll held the shutdown up"


def test_a_trigger_accepted_while_stopping_stays_pending_and_runs_after_the_restart(
    fresh_server: LiveServer,
) -> None:
    """A stopping server finishes the requests in flight but starts nothing new: a trigger
    it accepts then is left PENDING (for another replica, or for itself once restarted),
    not started and killed at the stop."""
    fresh_server.start()
    token = fresh_server.token("drain-user")
    body = b'{"inputs":{"seconds":1}}'
    head = (
        "POST /workflows/demo@local@sleep HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{fresh_server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    assert fresh_server.process is not None
    with socket.create_connection(("127.0.0.1", fresh_server.port), timeout=30) as sock:
        sock.sendall(head.encode())  # the request is in flight, its body not sent yet
        time.sleep(0.3)
        fresh_server.process.send_signal(signal.SIGTERM)
        # the server is draining: it soon stops accepting connections
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", fresh_server.port), timeout=2).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "the draining server still accepts connections"
            time.sleep(0.1)
        sock.sendall(body)
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 201"), answer
    execution_id = re.search(r"(?im)^location: /executions/(\S+)", answer).group(1)  # type: ignore[union-attr]
    assert fresh_server.process.wait(timeout=30) == 0
    fresh_server.process = None

    fresh_server.start()
    with fresh_server.client(token) as client:
        done = wait_for_status(client, execution_id, {"SUCCEEDED", "FAILED"})
        assert done["status"] == "SUCCEEDED", done
        logs = client.get(f"/executions/{execution_id}/logs", params={"timeout": "0s"}).json()
    assert not any("stopped" in entry["content"] for entry in logs["logs"]), logs
