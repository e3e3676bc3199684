"""A small HTTP server in a thread that serves generated files, for the stage_in tests.

``HttpFiles.add(path, data)`` publishes bytes at ``url(path)``; ``fail_next(path, n, status)``
makes the next ``n`` requests of a path answer ``status``; ``hits[path]`` counts requests.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class HttpFiles:
    """Files served over HTTP on 127.0.0.1 from this process."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[int]] = {}
        self.hits: Counter[str] = Counter()
        self.slow: dict[str, float] = {}  # seconds to wait between chunks of a path
        self.unsized: set[str] = set()  # paths served without Content-Length (read to the end)
        self.requested: list[str] = []  # every request's path with its query string
        files = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                files.hits[path] += 1
                files.requested.append(self.path)
                pending = files.failures.get(path)
                if pending:
                    self.send_error(pending.pop(0))
                    return
                data = files.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if path not in files.unsized:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for start in range(0, len(data), 65536):
                        self.wfile.write(data[start : start + 65536])
                        if path in files.slow:
                            self.wfile.flush()
                            time.sleep(files.slow[path])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (a cancelled or refused download)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url(path)

    def fail_next(self, path: str, count: int, status: int = 503) -> None:
        self.failures[path] = [status] * count


@pytest.fixture
def http_files() -> Iterator[HttpFiles]:
    server = HttpFiles()
    server.start()
    yield server
    server.stop()
