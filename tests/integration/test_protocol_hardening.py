"""What a hostile client does at the HTTP level, over raw sockets, against a real server.

Huge request heads, slow heads and bodies, floods of idle connections (against a server
whose `limits:` set them low), forged log lines and control characters in the server log.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml
from tests.conftest import LiveServer, free_port, wait_for_log

LIMITS = {
    "max_header_bytes": 8192,
    "header_timeout_seconds": 1,
    "body_timeout_seconds": 2,
    "max_connections": 20,
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose protocol limits are low, for the module."""
    root = tmp_path_factory.mktemp("protocol")
    config = root / "hpcwaas.yml"
    config.write_text(yaml.safe_dump({"limits": LIMITS}))
    live = LiveServer(root / "data", free_port(), extra_args=["--config", str(config)]).start()
    yield live
    live.stop()


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def answer_of(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def body_of(answer: bytes) -> dict[str, object]:
    import json

    body: dict[str, object] = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return body


def healthy(server: LiveServer, within: float = 2) -> bool:
    """Whether /healthz answers 200 within ``within`` seconds, on a new connection."""
    try:
        return httpx.get(server.url + "/healthz", timeout=within).status_code == 200
    except httpx.HTTPError:
        return False


def exchange(server: LiveServer, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` on a new connection; what the server answered until it closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def log_lines_with(server: LiveServer, marker: str, timeout: float = 10) -> list[bytes]:
    """The server log's lines holding ``marker``, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            line for line in server.log_path.read_bytes().split(b"\n") if marker.encode() in line
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_path_cannot_forge_a_log_line_nor_write_control_characters(server: LiveServer) -> None:
    marker = f"forged-{uuid.uuid4().hex}"
    forged = f"2026-01-01%2000:00:00,000%20INFO%20hpcwaas.access:%20GET%20/{marker}%20200%201.0ms"
    target = f"/x%0a{forged}%0d%00%1b]0;title%07%1b[2J%c2%85"
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert status_of(exchange(server, request.encode())) == 404
    # One line, the real one, with the path's control characters escaped.
    [line] = log_lines_with(server, marker)
    real, _, logged = line.partition(b" INFO hpcwaas.access: ")
    assert not real.startswith(b"2026-01-01"), line
    expected = (
        rb"GET /x\\n2026-01-01 00:00:00,000 INFO hpcwaas.access: GET /"
        + marker.encode()
        + rb" 200 1.0ms\\r\\x00\\x1b\]0;title\\x07\\x1b\[2J\\x85 404 [0-9.]+ms \[[0-9a-f]+\]"
    )
    assert re.fullmatch(expected, logged), logged
    log = server.log_path.read_bytes()
    assert b"\x00" not in log and b"\x1b" not in log and b"\xc2\x85" not in log


# --- huge heads ------------------------------------------------------------------------------


def test_a_head_over_max_header_bytes_is_a_431_before_the_rest_is_read(
    limited: LiveServer,
) -> None:
    with connect(limited) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        # 8 KiB and one byte in all, the headers not ended: answered without more.
        sent = len(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(9):
            sock.sendall(b"a" * 1024)
        started = time.monotonic()
        answer = answer_of(sock)
    assert sent + 9 * 1024 > LIMITS["max_header_bytes"]
    assert time.monotonic() - started < 1  # not the header timeout
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nconnection: close\r\n" in answer
    [item] = body_of(answer)["errors"]  # type: ignore[misc]
    assert item["id"] == "request_header_fields_too_large"
    assert "limits.max_header_bytes" in item["detail"]
    assert healthy(limited)


def test_a_100_mib_head_costs_nothing_and_health_checks_keep_answering(
    limited: LiveServer,
) -> None:
    stop = threading.Event()

    def flood() -> None:
        with connect(limited) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nX-Big: ")
            try:
                for _ in range(100):
                    sock.sendall(b"a" * 1024 * 1024)
                    if stop.is_set():
                        return
            except OSError:
                return  # refused and closed, as it should be

    thread = threading.Thread(target=flood)
    thread.start()
    try:
        started = time.monotonic()
        assert healthy(limited, within=1)
        assert time.monotonic() - started < 1
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def test_a_head_within_max_header_bytes_is_served(limited: LiveServer) -> None:
    with connect(limited) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
            + b"a" * 6000
            + b"\r\n\r\n"
        )
        assert status_of(answer_of(sock)) == 200


# --- slow clients ----------------------------------------------------------------------------


def test_a_head_sent_too_slowly_is_a_408_after_header_timeout_seconds(
    limited: LiveServer,
) -> None:
    with connect(limited) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(3):  # a byte now and then does not extend the deadline
            time.sleep(0.3)
            sock.sendall(b"X")
        answer = answer_of(sock)
        took = time.monotonic() - started
    assert 0.9 < took < 2.5, took
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    [item] = body_of(answer)["errors"]  # type: ignore[misc]
    assert item["id"] == "request_timeout"
    assert "limits.header_timeout_seconds" in item["detail"]


def test_a_connection_that_sends_nothing_is_closed_after_header_timeout_seconds(
    limited: LiveServer,
) -> None:
    with connect(limited) as sock:
        started = time.monotonic()
        assert answer_of(sock) == b""
        took = time.monotonic() - started
    assert 0.9 < took < 2.5, took


def test_a_body_sent_too_slowly_is_a_408_after_body_timeout_seconds(
    limited: LiveServer,
) -> None:
    token = limited.token(f"user-{uuid.uuid4().hex[:8]}")
    with connect(limited) as sock:
        sock.sendall(
            b"POST /workflows/demo@local@hello HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()
        answer = answer_of(sock)
        took = time.monotonic() - started
    assert 1.9 < took < 3.5, took
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    [item] = body_of(answer)["errors"]  # type: ignore[misc]
    assert "limits.body_timeout_seconds" in item["detail"]
    with limited.client(token) as api:
        assert api.get("/executions").json()["executions"] == []  # nothing was triggered


def test_idle_and_slow_connections_past_max_connections_keep_nobody_out(
    limited: LiveServer,
) -> None:
    token = limited.token(f"user-{uuid.uuid4().hex[:8]}")
    held: list[socket.socket] = []
    try:
        # Ten times the cap: idle connections, and ones sending their heads slowly.
        for index in range(10 * LIMITS["max_connections"]):
            sock = connect(limited)
            if index % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            held.append(sock)
        assert healthy(limited, within=1)
        with limited.client(token) as api:
            assert api.get("/users/me", timeout=1).status_code == 200
        # The connections that waited longest made room: closed, without an answer.
        held[0].settimeout(2)
        assert held[0].recv(1) == b""
    finally:
        for sock in held:
            sock.close()


def test_at_max_connections_all_serving_a_request_a_new_one_gets_a_503(
    limited: LiveServer,
) -> None:
    token = limited.token(f"user-{uuid.uuid4().hex[:8]}")
    with limited.client(token) as api:
        made = api.post("/workflows/demo@local@sleep", json={"inputs": {"seconds": 60}})
        execution_id = made.headers["location"].rsplit("/", 1)[1]
        # nothing more is logged for 60 s once the step says it sleeps
        end = wait_for_log(api, execution_id, "sleeping for 60 seconds")
    polls: list[socket.socket] = []
    try:
        # Every connection in a long poll of the logs (nothing new comes for 30 s).
        for _ in range(LIMITS["max_connections"]):
            sock = connect(limited)
            sock.sendall(
                f"GET /executions/{execution_id}/logs?from={end}&timeout=30s HTTP/1.1\r\n"
                f"Host: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            )
            polls.append(sock)
        # Time for the server to read every poll: one it has not read yet would be taken
        # as waiting for its request, and give its place to the next connection.
        time.sleep(2)
        with connect(limited) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = answer_of(sock)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
        assert b"\r\nretry-after: 5\r\n" in answer
        [item] = body_of(answer)["errors"]  # type: ignore[misc]
        assert "limits.max_connections" in item["detail"]
    finally:
        for sock in polls:
            sock.close()
        with limited.client(token) as api:
            api.delete(f"/executions/{execution_id}")
    assert healthy(limited)
