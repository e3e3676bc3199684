"""A stand-in for the eFlows4HPC Container Image Creation service, for the ``images`` tests.

The real service (eflows4hpc/image_creation, a Flask app) builds images with Docker buildx and
converts them with Singularity: no container engine runs on these machines, so the tests run
this stand-in instead. It is a real HTTP server on 127.0.0.1 that implements the service's
REST contract as its code has it (blueprints/images.py, blueprints/download.py,
builder_service.py, image_builder/build.py):

- everything under the prefix ``/image_creation`` (the service's ``DispatcherMiddleware``);
- ``POST /build/`` (HTTP Basic) with ``{machine: {platform, architecture, container_engine,
  mpi?, gpu?}, workflow, step_id, force?, push?, version?}`` answers ``{"id": <build id>}``;
  a missing key is a 400 ``Bad request: Key error'<key>'``, an unknown architecture a 500
  ``Exception requesting image creation...`` (Flask's HTML error pages, as the real one);
  a request for an image being built answers the running build's ID;
- ``GET /build/<id>`` (HTTP Basic) answers ``{status, image_id, filename, message}``, the
  status going PENDING, STARTED, BUILDING, CONVERTING, FINISHED (or FAILED, with a message);
  an unknown ID is a 400 ``Build not found``; a request for an image already built (and not
  ``force``) skips BUILDING, as the real builder finds it in its registry;
- ``GET /images/download/<filename>`` (no authentication, as the real blueprint) serves a
  generated file as the Singularity image of that name.

The tests can also make it refuse the next build, fail builds with a message, cut downloads
halfway or announce a wrong Content-Length.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

PREFIX = "/image_creation"
IMAGES_PREFIX = "ghcr.io/eflows4hpc/"
STATUSES = ("PENDING", "STARTED", "BUILDING", "CONVERTING", "FINISHED")
# Some of the Spack targets the real service accepts (image_builder/utils.py).
ARCHITECTURES = frozenset(
    "x86_64 skylake sandybridge haswell zen2 zen3 power9 power9le a64fx icelake".split()
)


def image_name(workflow: str, step: str, machine: dict[str, Any], version: str) -> str:
    """The image's name as the real builder makes it (``_gen_image_name``)."""

    def key(name: str) -> str:
        value = str(machine.get(name) or "")
        return value.replace("@", "_") if value else "no" + name

    name = f"{workflow}_{step}_{machine['architecture']}_{key('mpi')}_{key('gpu')}:{version}"
    return name.lower()


def image_bytes(filename: str, size: int) -> bytes:
    """The generated content of image ``filename``: ``size`` bytes that depend on the name."""
    seed = hashlib.sha256(filename.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


@dataclass
class Build:
    id: str
    image_id: str
    filename: str | None
    skips_building: bool  # the image exists already and force is false
    fails_with: str | None
    started: float
    status: str = "PENDING"
    message: str | None = None


class ImageService:
    """The stand-in service, on 127.0.0.1 in a thread of this process."""

    def __init__(self, users: dict[str, str] | None = None, step_seconds: float = 0.05) -> None:
        self.users = users if users is not None else {"builder": "s3cret-pass"}
        self.step_seconds = step_seconds  # seconds between two statuses of a build
        self.image_size = 300 * 1024
        self.builds: dict[str, Build] = {}
        self.built: set[str] = set()  # images built (the real one finds them in its registry)
        self.requests: list[dict[str, Any]] = []  # bodies of POST /build/
        self.hits: Counter[str] = Counter()  # requests by path (without the prefix)
        self.refusals: list[tuple[int, str]] = []  # (status, message) for the next builds
        self.failure: str | None = None  # builds requested from now on end FAILED with it
        self.cut_downloads = 0  # the next N downloads stop halfway
        self.wrong_length = 0  # the next N downloads announce more bytes than they send
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                service._handle(self, "POST")

            def do_GET(self) -> None:
                service._handle(self, "GET")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    # ----------------------------------------------------------------- for the tests

    @property
    def url(self) -> str:
        """The service's URL, with its /image_creation prefix."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PREFIX}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def refuse_next(self, status: int, message: str) -> None:
        """The next POST /build/ answers ``status`` with ``message`` (a Flask abort)."""
        self.refusals.append((status, message))

    def image(self, filename: str) -> bytes:
        """The bytes the service serves for image ``filename``."""
        return image_bytes(filename, self.image_size)

    # ----------------------------------------------------------------- the contract

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        if not path.startswith(PREFIX + "/"):
            self._error(handler, 404, "The requested URL was not found on the server.")
            return
        path = path[len(PREFIX) :]
        self.hits[path] += 1
        if method == "GET" and path.startswith("/images/download/"):
            self._download(handler, path.removeprefix("/images/download/"))
            return
        if not self._authorized(handler):
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="Authentication Required"')
            _body(handler, b"Unauthorized Access", "text/html; charset=utf-8")
            return
        if method == "POST" and path.rstrip("/") == "/build":
            self._build(handler)
        elif method == "GET" and path.startswith("/build/"):
            self._status(handler, path.removeprefix("/build/").strip("/"))
        else:
            self._error(handler, 404 if method == "GET" else 405, "Not here.")

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return self.users.get(user) == password

    def _build(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        try:
            content = json.loads(handler.rfile.read(length) or b"null")
        except ValueError:
            self._error(handler, 400, "Failed to decode JSON object")
            return
        self.requests.append(content)
        if self.refusals:
            status, message = self.refusals.pop(0)
            self._error(handler, status, message)
            return
        try:
            machine, workflow, step = content["machine"], content["workflow"], content["step_id"]
            engine = machine["container_engine"]
            architecture = machine["architecture"]
        except (KeyError, TypeError) as exc:
            self._error(handler, 400, f"Bad request: Key error{exc}")
            return
        if architecture not in ARCHITECTURES:
            self._error(
                handler,
                500,
                "Exception requesting image creationThe specified architecture does not exist "
                "or it has been temporaly disabled",
            )
            return
        force = _flag(content, "force", False)
        version = content.get("version") or "latest"
        name = image_name(workflow, step, machine, version)
        filename = name.replace(":", "_v_") + ".sif" if engine == "singularity" else None
        image_id = IMAGES_PREFIX + name
        with self._lock:
            self._advance()
            for build in self.builds.values():
                if build.image_id == image_id and build.status not in ("FINISHED", "FAILED"):
                    _json(handler, {"id": build.id})  # the running build of that image
                    return
            build = Build(
                id=str(uuid.uuid4()),
                image_id=image_id,
                filename=filename,
                skips_building=image_id in self.built and not force,
                fails_with=self.failure,
                started=time.monotonic(),
            )
            self.builds[build.id] = build
        _json(handler, {"id": build.id})

    def _advance(self) -> None:
        """Move every build on by the time it has run (one status per ``step_seconds``)."""
        now = time.monotonic()
        for build in self.builds.values():
            if build.status in ("FINISHED", "FAILED"):
                continue
            statuses = [s for s in STATUSES if not (s == "BUILDING" and build.skips_building)]
            reached = min(int((now - build.started) / self.step_seconds), len(statuses) - 1)
            if build.fails_with is not None and reached >= 2:
                build.status, build.message = "FAILED", build.fails_with
                continue
            build.status = statuses[reached]
            if build.status == "FINISHED":
                self.built.add(build.image_id)

    def _status(self, handler: BaseHTTPRequestHandler, build_id: str) -> None:
        with self._lock:
            self._advance()
            build = self.builds.get(build_id)
            if build is None:
                self._error(handler, 400, "Build not found")
                return
            shown = build.filename if build.status in ("CONVERTING", "FINISHED") else None
            _json(
                handler,
                {
                    "status": build.status,
                    "image_id": build.image_id,
                    "filename": shown,
                    "message": build.message,
                },
            )

    def _download(self, handler: BaseHTTPRequestHandler, filename: str) -> None:
        known = {b.filename for b in self.builds.values() if b.status == "FINISHED"}
        if filename not in known:
            self._error(handler, 404, f"File {filename} not found")
            return
        data = self.image(filename)
        announced = len(data)
        with self._lock:
            if self.cut_downloads:
                self.cut_downloads -= 1
                data = data[: len(data) // 2]
            elif self.wrong_length:
                self.wrong_length -= 1
                announced += 4096
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Disposition", f"attachment; filename={filename}")
        handler.send_header("Content-Length", str(announced))
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            for start in range(0, len(data), 65536):
                handler.wfile.write(data[start : start + 65536])
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    @staticmethod
    def _error(handler: BaseHTTPRequestHandler, status: int, description: str) -> None:
        """Flask's HTML error page for ``abort(status, description)``."""
        title = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(
            status, "Internal Server Error"
        )
        page = (
            f"<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n"
            f"<h1>{title}</h1>\n<p>{description}</p>\n"
        )
        handler.send_response(status)
        _body(handler, page.encode(), "text/html; charset=utf-8")


def _flag(content: dict[str, Any], key: str, default: bool) -> bool:
    """The service's ``check_bool``: a bool, or a string that is 'true' in any case."""
    value = content.get(key, default)
    return value.lower() == "true" if isinstance(value, str) else bool(value)


def _json(handler: BaseHTTPRequestHandler, value: dict[str, Any]) -> None:
    handler.send_response(200)
    _body(handler, json.dumps(value).encode(), "application/json")


def _body(handler: BaseHTTPRequestHandler, data: bytes, content_type: str) -> None:
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def image_service() -> Iterator[ImageService]:
    service = ImageService()
    service.start()
    yield service
    service.stop()
