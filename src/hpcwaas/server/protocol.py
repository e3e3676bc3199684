"""The server's HTTP/1.1 connections: uvicorn's httptools protocol with the limits it lacks.

uvicorn 0.54 bounds neither the size of a request's line and headers (httptools buffers
them whole, at a cost that grows with the square of their size), nor the time a client
takes to send them or its body, nor the connections a server holds open (its
``limit_concurrency`` answers 503 to every request at the cap, health checks included,
and idle connections count against it). This subclass of its ``HttpToolsProtocol`` adds,
for each server (settings under ``limits``):

- ``max_header_bytes``: a request line and headers larger than this get 431, and the
  connection is closed before more of them is read;
- ``header_timeout_seconds``: a connection that has not sent a whole request line and
  headers within this time of its opening, or of the end of its previous response, is
  closed (with 408 if part of them came; uvicorn's 5 s keep-alive closes an idle one
  sooner);
- ``body_timeout_seconds``: a request body not received in full within this time of its
  headers gets 408 (or the connection is closed if the response has started);
- ``max_connections``: at the cap, a new connection takes the place of the one that has
  waited longest for a request (idle, or still sending its line and headers), so a flood
  of idle or slow connections cannot keep health checks and users out; a connection
  whose request is being served is never dropped for another. When every connection is
  serving a request, the new one gets 503.

These refusals are written here, in the error envelope, and logged as access lines.

uvicorn's other HTTP/1.1 protocol, h11's, bounds a head (``h11_max_incomplete_event_size``)
but answers a plain-text 400 that does not say why, and has no read timeouts either; the
server passes this class to uvicorn as its ``http``, so httptools (the faster parser) is
always the one used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from hpcwaas.api.errors import envelope
from hpcwaas.settings import Limits

access_log = logging.getLogger("hpcwaas.access")
log = logging.getLogger(__name__)

# File descriptors a server needs besides its clients' connections: database connections,
# SSH sessions, log and work files, the catalog's watcher.
RESERVED_FILES = 256
RETRY_AFTER_SECONDS = "5"
# After a refusal, what the client still sends is read and dropped this long before the
# connection closes: closing with unread data would reset it, and the client could lose
# the answer.
LINGER_SECONDS = 1.0


class ConnectionGuard:
    """The limits of one server, and its connections waiting for a request, oldest first."""

    def __init__(self, limits: Limits, max_connections: int) -> None:
        self.limits = limits
        self.max_connections = max_connections
        # A dict keeps insertion order: the first key has waited longest.
        self.waiting: dict[LimitedHttpProtocol, None] = {}

    def evict_longest_waiting(self) -> bool:
        """Close the connection that has waited longest for a request; False if none waits."""
        for protocol in self.waiting:
            protocol.close_waiting()
            return True
        return False


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the limits of its server's ``guard``."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # between requests, or in a request's line and headers
        self._reading_body = False
        self._head_bytes = 0  # of the current request's line and headers, so far
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False  # answered by a refusal: what comes next is dropped

    # -- connections -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.guard.max_connections:
            if not self.guard.evict_longest_waiting():
                self._refuse(
                    503,
                    "the server is at its connection limit (limits.max_connections), every "
                    "connection serving a request; retry shortly",
                    {"retry-after": RETRY_AFTER_SECONDS},
                )
                return
        self._start_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self._cancel_deadline()
        super().connection_lost(exc)

    def close_waiting(self) -> None:
        """Close this connection, which waits for a request, to make room for a new one."""
        self._stop_waiting()
        self._cancel_deadline()
        self.transport.close()

    def _start_waiting(self) -> None:
        """No request in progress: wait for the next one's head, for header_timeout_seconds."""
        self.guard.waiting[self] = None
        self._set_deadline(self.guard.limits.header_timeout_seconds, self._head_timed_out)

    def _stop_waiting(self) -> None:
        self.guard.waiting.pop(self, None)

    # -- reading -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        # While a head is read, the parser gets no more than the room left for it: a larger
        # head is refused before it is buffered. The rest of the data (a body, the next
        # request) is fed once the head has ended.
        while data and self._reading_head:
            room = self.guard.limits.max_header_bytes - self._head_bytes
            if room <= 0:
                self._refuse_large_head()
                return
            part, data = data[:room], data[room:]
            self._head_bytes += len(part)
            self._feed(part)
            if self._refused or self.transport.is_closing():
                return
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading_body and self._deadline is None and not self.transport.is_closing():
            self._set_deadline(self.guard.limits.body_timeout_seconds, self._body_timed_out)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._reading_body = True
        self._stop_waiting()
        self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_body = False
        self._cancel_deadline()
        # The next request's head starts here. A pipelined request read in the same network
        # read before this point counts toward it: at most one read more than the cap.
        self._reading_head = True
        self._head_bytes = 0
        answered = self.cycle is not None and self.cycle.response_complete  # no cycle: upgrade
        if answered and not self.transport.is_closing():
            self._start_waiting()  # answered before its body was read in full

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._reading_head and self.cycle.response_complete:
            if not self.transport.is_closing():
                self._start_waiting()

    # -- deadlines ---------------------------------------------------------------------------

    def _set_deadline(self, seconds: float, expired: Any) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, expired)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self._refused or self.transport.is_closing():
            return
        self._stop_waiting()
        if self._head_bytes == 0:
            self.transport.close()  # idle: nothing to answer
            return
        seconds = self.guard.limits.header_timeout_seconds
        self._refuse(
            408,
            f"the request line and headers did not arrive within {seconds:g} s "
            "(limits.header_timeout_seconds)",
        )

    def _body_timed_out(self) -> None:
        self._deadline = None
        if self._refused or self.transport.is_closing():
            return
        seconds = self.guard.limits.body_timeout_seconds
        detail = (
            f"the request body did not arrive in full within {seconds:g} s "
            "(limits.body_timeout_seconds)"
        )
        if self.cycle.response_started:
            self._log_refusal(408, detail)
            self.transport.close()
            return
        # The application reads no more: it sees a disconnected client and sends nothing.
        self.cycle.disconnected = True
        self.cycle.message_event.set()
        self._refuse(408, detail)

    # -- refusals ----------------------------------------------------------------------------

    def _refuse_large_head(self) -> None:
        limit = self.guard.limits.max_header_bytes
        detail = (
            f"the request line and headers are larger than {limit} bytes (limits.max_header_bytes)"
        )
        if self.cycle is not None and not self.cycle.response_complete:
            # A request is being answered on this connection: no room for another answer.
            self._log_refusal(431, detail)
            self.transport.close()
            return
        self._refuse(431, detail)

    def _refuse(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` in the envelope, then close the connection (see LINGER_SECONDS)."""
        self._log_refusal(status, detail)
        self._refused = True
        self._stop_waiting()
        body = json.dumps(envelope(status, detail)).encode()
        lines = [STATUS_LINE[status]]
        fields = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
        ]
        lines += [name + b": " + value + b"\r\n" for name, value in fields]
        self.transport.write(b"".join([*lines, b"\r\n", body]))
        if not self.transport.can_write_eof():  # TLS: no half-close
            self.transport.close()
            return
        self.transport.write_eof()
        self._set_deadline(LINGER_SECONDS, self.transport.close)

    def _log_refusal(self, status: int, detail: str) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
        access_log.info("%s %d: %s", client, status, detail)


def file_limit(wanted: int) -> int:
    """The files this process may open, raised toward ``wanted`` if the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    return wanted if soft == resource.RLIM_INFINITY else soft


def protocol_class(limits: Limits) -> type[LimitedHttpProtocol]:
    """The ``http`` protocol of one server: its own class, holding its waiting connections.

    ``limits.max_connections`` is lowered, with a warning, to what the process's file
    limit leaves once RESERVED_FILES are set aside: past it, accepting fails for everyone.
    """
    wanted = limits.max_connections + RESERVED_FILES
    available = file_limit(wanted)
    cap = limits.max_connections
    if available < wanted:
        cap = max(1, available - RESERVED_FILES)
        log.warning(
            "limits.max_connections is %d, but this process may open only %d files (ulimit "
            "-n), %d of them kept for the database, SSH and files: at most %d connections; "
            "raise the limit (LimitNOFILE= in a systemd unit) to allow more",
            limits.max_connections,
            available,
            RESERVED_FILES,
            cap,
        )
    guard = ConnectionGuard(limits, cap)
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"guard": guard})
