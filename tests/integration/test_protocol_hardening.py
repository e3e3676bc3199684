"""What a hostile client does at the HTTP level, over raw sockets, against a real server.

Forged log lines, and control characters in the server log.
"""

from __future__ import annotations

import re
import socket
import time
import uuid

from tests.conftest import LiveServer


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
