"""`/executions/{id}/events`: an execution's logs and status changes as server-sent events.

One stream per execution, for pages and clients that follow a run without polling:

    event: log                      event: status
    id: <entry index>               data: <the execution, as GET /executions/{id}>
    data: <the entry, as in the logs route>

Log entries come oldest first; a status event is sent first, then on every change of the
execution or its steps. Once the execution is terminal and every entry has been sent, a last
status event ends the stream. ``Last-Event-ID`` (sent by browsers when they reconnect) resumes
after that entry. The stream waits on the engine's change notifications, never on a timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from hpcwaas.api.states import LogLevel
from hpcwaas.server.deps import CurrentUser, RuntimeDep
from hpcwaas.server.longpoll import changed_or_stopped, shutdown_event
from hpcwaas.server.routes.executions import (
    execution_public,
    log_entry,
    parse_int,
    parse_levels,
)
from hpcwaas.services.executions import owned_execution
from hpcwaas.services.runtime import Runtime
from hpcwaas.store import executions as execution_store
from hpcwaas.store import logs as log_store

router = APIRouter(tags=["executions"])

MEDIA_TYPE = "text/event-stream"
# A comment line this often keeps proxies and browsers from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
# Proxies must pass events on at once (no-transform, X-Accel-Buffering).
STREAM_HEADERS = {"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"}
# Entries read from the database per round; a long backlog is sent in several.
BATCH = 500

EVENTS_DESCRIPTION = """\
A `text/event-stream` (server-sent events) of the execution's log entries and status changes.

* `event: log`, `id: <index>`, `data: <entry>`: one log entry, as in
  `GET /executions/{id}/logs` (`level`, `timestamp`, `content`, `step`). Entries come oldest
  first; the index is the entry's stable position among all the execution's entries.
* `event: status`, `data: <execution>`: the execution as `GET /executions/{id}` shows it
  (status, steps with their state and needs, outputs). Sent first, then on every change.
* Lines starting with `:` are keep-alive comments, sent every 15 s of silence.

Once the execution is terminal and all its entries were sent, a last `status` event ends
the stream. To resume after a dropped connection, send `Last-Event-ID: <index>` (browsers
do): entries after that index follow, none repeated. `levels` filters entries like the logs
route (bitmask DEBUG=1, INFO=2, WARN=4, ERROR=8; 0 or absent: INFO+WARN+ERROR). A stream
is closed after `limits.max_logs_timeout_seconds`, and when the server shuts down: reconnect
with `Last-Event-ID` to go on.
"""


def _event(kind: str, data: str, event_id: int | None = None) -> str:
    lines = [f"event: {kind}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # JSON never holds a raw newline, so the payload is one `data:` line.
    lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


async def _stream(
    runtime: Runtime, execution_id: str, mask: LogLevel, after: int, stop: asyncio.Event
) -> AsyncIterator[str]:
    notifier = runtime.engine.notifier
    deadline = time.monotonic() + runtime.settings.limits.max_logs_timeout_seconds
    last_status = ""
    while not stop.is_set():
        # The version is read before the database, so a change in between is not missed.
        seen = notifier.version(execution_id)
        async with runtime.db.read() as conn:
            record = await execution_store.get_execution(conn, execution_id)
            entries = await log_store.read_after(conn, execution_id, mask, after, BATCH)
        if record is None:  # deleted meanwhile: nothing more will come
            return
        for index, entry in entries:
            yield _event("log", log_entry(entry).model_dump_json(), index)
            after = index
        status = (await execution_public(runtime, record)).model_dump_json()
        if status != last_status:
            yield _event("status", status)
            last_status = status
        if len(entries) == BATCH:
            continue  # more backlog: no need to wait
        # Terminal executions get their logs flushed before the status is written, so
        # everything has been sent by now.
        if record.status.terminal:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        wait = min(KEEPALIVE_SECONDS, remaining)
        if not await changed_or_stopped(runtime.engine.notifier, execution_id, seen, wait, stop):
            if stop.is_set():
                return
            yield ": keep-alive\n\n"


@router.get(
    "/executions/{execution_id}/events",
    response_class=StreamingResponse,
    summary="Follow an execution's logs and status as server-sent events",
    description=EVENTS_DESCRIPTION,
    responses={
        200: {
            "description": "The event stream, until the execution is terminal.",
            "content": {
                MEDIA_TYPE: {
                    # One event (OpenAPI 3.1 tools read `schema` as the per-event schema).
                    "schema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"type": "string", "enum": ["log", "status"]},
                            "id": {
                                "type": "string",
                                "pattern": "^[0-9]+$",
                                "description": "The log entry's index (log events).",
                            },
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "description": "A log entry, or the execution (status events).",
                            },
                        },
                    },
                    "example": (
                        'event: status\ndata: {"id":"...","status":"RUNNING",...}\n\n'
                        "event: log\nid: 0\n"
                        'data: {"level":"INFO","timestamp":"...","content":"Step greet started",'
                        '"step":"greet"}\n\n'
                    ),
                }
            },
        }
    },
)
async def execution_events(
    execution_id: str,
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    levels: str | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Stream the execution's log entries and status changes until it is terminal."""
    mask = parse_levels(levels)
    # The index to resume after; -1: from the start.
    after = parse_int("header Last-Event-ID (a log entry's index)", last_event_id, -1, -1)
    await owned_execution(runtime, user, execution_id)
    return StreamingResponse(
        _stream(runtime, execution_id, mask, after, shutdown_event(request.app)),
        media_type=MEDIA_TYPE,
        headers=STREAM_HEADERS,
    )
