"""`/events/executions`: the first page of the caller's executions, sent again on every change.

For lists that refresh by themselves (the portal's executions page) without polling each
row: one stream, woken by the engine's change notifications (any execution), never a timer.

    event: executions
    data: <the page, as GET /executions?limit=&status=&workflow_id= answers it>

The page is sent first, then each time it differs from the last one sent. The stream is
closed after ``timeout`` (a duration, at most ``limits.max_logs_timeout_seconds``, the
default) and when the server shuts down: the client connects again and gets the page
afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from hpcwaas.api.durations import parse_duration
from hpcwaas.engine.logsink import ANY_EXECUTION
from hpcwaas.server.deps import CurrentUser, RuntimeDep, page_size
from hpcwaas.server.longpoll import changed_or_stopped, shutdown_event
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem
from hpcwaas.server.routes.events import KEEPALIVE_SECONDS, MEDIA_TYPE, STREAM_HEADERS
from hpcwaas.server.routes.executions import executions_page
from hpcwaas.services.runtime import Runtime

router = APIRouter(tags=["executions"])

MIN_INTERVAL_SECONDS = 1.0


async def _pause(seconds: float, stop: asyncio.Event) -> None:
    """Wait ``seconds``, or less if the server is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


LIST_EVENTS_DESCRIPTION = """\
A `text/event-stream` (server-sent events) of the first page of your executions, newest
first: `event: executions`, `data: <page>` where the page is what `GET /executions` answers
with the same `limit`, `status` and `workflow_id`. Sent first, then whenever the page
changes (a new execution, a status change). Lines starting with `:` are keep-alive comments.
The stream is closed after `timeout` (a duration such as `30s` or `5m`, at most and by
default `limits.max_logs_timeout_seconds`) and at server shutdown: connect again.
"""


async def _stream(
    runtime: Runtime,
    owner: str,
    size: int,
    status: str | None,
    workflow_id: str | None,
    stop: asyncio.Event,
    duration: float,
) -> AsyncIterator[str]:
    notifier = runtime.engine.notifier
    deadline = time.monotonic() + duration
    last = ""
    while not stop.is_set():
        seen = notifier.version(ANY_EXECUTION)  # before the read: no change is missed
        page = await executions_page(runtime, owner, size, None, status, workflow_id)
        data = page.model_dump_json()
        if data != last:
            yield f"event: executions\ndata: {data}\n\n"
            last = data
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            wait = min(KEEPALIVE_SECONDS, remaining)
            if await changed_or_stopped(notifier, ANY_EXECUTION, seen, wait, stop):
                break
            if stop.is_set():
                return
            yield ": keep-alive\n\n"
        # Log entries wake the channel many times a second: the page is read at most once
        # a second, the changes in between coalesced into that read.
        await _pause(MIN_INTERVAL_SECONDS, stop)


@router.get(
    "/events/executions",
    response_class=StreamingResponse,
    summary="Follow the list of your executions as server-sent events",
    description=LIST_EVENTS_DESCRIPTION,
    responses={
        200: {"description": "The event stream.", "content": {MEDIA_TYPE: {}}},
        **problems(400),
    },
)
async def executions_events(
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    limit: int | None = None,
    status: str | None = None,
    workflow_id: str | None = None,
    timeout: str | None = None,
) -> StreamingResponse:
    """Stream the first page of the caller's executions, again on every change."""
    size = page_size(limit, runtime, default=50)
    duration = runtime.settings.limits.max_logs_timeout_seconds
    if timeout:
        try:
            duration = min(parse_duration(timeout), duration)
        except ValueError as exc:
            raise ApiProblem(400, f"query parameter 'timeout': {exc}") from None
    # A wrong status filter is refused now, as by the list itself, not in the stream.
    await executions_page(runtime, user.user_id, 1, None, status, workflow_id)
    return StreamingResponse(
        _stream(
            runtime, user.user_id, size, status, workflow_id, shutdown_event(request.app), duration
        ),
        media_type=MEDIA_TYPE,
        headers=STREAM_HEADERS,
    )
