"""Waiting for an execution to change, in long polls and event streams, until shutdown.

A waiting request would otherwise hold a server's shutdown up for as long as it waits (the
HTTP server lets requests in flight finish); at shutdown they answer with what they have,
and the client asks again, of this replica once back or of another one.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from hpcwaas.engine.logsink import LogNotifier


def shutdown_event(app: FastAPI) -> asyncio.Event:
    """The event set when ``app``'s server shuts down: every wait ends then."""
    event = getattr(app.state, "shutting_down", None)
    if not isinstance(event, asyncio.Event):
        event = asyncio.Event()
        app.state.shutting_down = event
    return event


async def changed_or_stopped(
    notifier: LogNotifier, execution_id: str, seen: int, timeout: float, stop: asyncio.Event
) -> bool:
    """True once the execution changed; False on timeout or when ``stop`` is set."""
    change = asyncio.ensure_future(notifier.wait(execution_id, seen, timeout))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({change, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (change, stopping):
            task.cancel()
    return change.done() and not change.cancelled() and change.result()
