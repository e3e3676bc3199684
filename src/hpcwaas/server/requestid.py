"""Request IDs: taken from ``X-Request-ID`` when sane, else generated; echoed on every response.

The ID is in a context variable while the request runs; ``RequestIdFilter`` copies it onto
log records as ``request_id``. The middleware also writes one access-log line per request.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpcwaas.logging_setup import RequestIdFilter, request_id_var
from hpcwaas.server.problems import unexpected_error_response

__all__ = ["HEADER", "RequestId", "RequestIdFilter", "request_id_var", "sane_request_id"]

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")

access_log = logging.getLogger("hpcwaas.access")
log = logging.getLogger(__name__)


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it is a usable request ID (<= 128 chars of [A-Za-z0-9._-]), else None."""
    if value is not None and _SANE.fullmatch(value):
        return value
    return None


class RequestId:
    """Pure ASGI middleware: request ID in, ``X-Request-ID`` out, one access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = sane_request_id(given) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if started:
                    raise
                # The app's catch-all handler sits outside this middleware: answer here so the
                # error response carries the request ID too.
                response = unexpected_error_response(scope["method"], scope["path"], exc)
                await response(scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
            )
            request_id_var.reset(token)
