"""`/executions`: list, status, cancel, logs (long poll)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from hpcwaas.api import parameters
from hpcwaas.api.durations import parse_duration
from hpcwaas.api.models import (
    DataRemovalPublic,
    ExecutionList,
    ExecutionLogs,
    ExecutionPublic,
    ExecutionSummary,
    LogEntry,
    SlurmAccounting,
    StepPublic,
)
from hpcwaas.api.states import ExecutionStatus, LogLevel
from hpcwaas.auth.operators import is_operator
from hpcwaas.server.auditing import Audit
from hpcwaas.server.deps import CurrentUser, RuntimeDep, page_size
from hpcwaas.server.longpoll import changed_or_stopped, shutdown_event
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem, not_found
from hpcwaas.services import executions
from hpcwaas.services.runtime import Runtime
from hpcwaas.store import executions as execution_store
from hpcwaas.store import logs as log_store
from hpcwaas.store.data_removal import RETENTION_ACTOR, DataKind, removed_at
from hpcwaas.store.executions import ExecutionRecord, StepRecord
from hpcwaas.store.logs import LogRecord
from hpcwaas.telemetry import LOGS_LONG_POLLS_WAITING

router = APIRouter(tags=["executions"])

# How long a logs request without `timeout` waits on an ended execution with nothing new.
ENDED_LOGS_PAUSE_SECONDS = 1.0


def _parse_statuses(raw: str | None) -> list[ExecutionStatus] | None:
    """The `status` filter: comma-separated statuses, or a 400 listing the valid ones."""
    if not raw:
        return None
    statuses = []
    for part in raw.split(","):
        try:
            statuses.append(ExecutionStatus(part.strip().upper()))
        except ValueError:
            allowed = ", ".join(s.value for s in ExecutionStatus)
            raise ApiProblem(
                400, f"query parameter 'status': unknown status {part[:40]!r}; use {allowed}"
            ) from None
    return statuses


@router.get("/executions", response_model=ExecutionList, responses=problems(403))
async def list_executions(
    runtime: RuntimeDep,
    user: CurrentUser,
    limit: int | None = None,
    cursor: str | None = None,
    all_users: Annotated[bool, Query(alias="all")] = False,
    status: str | None = None,
    workflow_id: str | None = None,
) -> ExecutionList:
    """The caller's executions, newest first, paginated (`limit`, `cursor`).

    Optional filters: `status` (one or more statuses, comma-separated) and `workflow_id`.
    With `all=true`, every user's (operators only).
    """
    if all_users and not is_operator(runtime.settings.operators, user):
        raise ApiProblem(
            403,
            "all=true lists every user's executions and is for operators only: an "
            "administrator lists operators under the `operators` config key; without it "
            "you get your own executions",
        )
    size = page_size(limit, runtime, default=50)
    owner = None if all_users else user.user_id
    return await executions_page(runtime, owner, size, cursor, status, workflow_id)


async def executions_page(
    runtime: Runtime,
    owner: str | None,
    size: int,
    cursor: str | None,
    status: str | None,
    workflow_id: str | None,
) -> ExecutionList:
    """One page of ``owner``'s executions (everyone's if None), newest first, filtered."""
    async with runtime.db.read() as conn:
        items, next_cursor = await execution_store.list_executions(
            conn,
            owner,
            limit=size,
            cursor=cursor,
            statuses=_parse_statuses(status),
            workflow_id=workflow_id or None,
        )
    return ExecutionList(
        executions=[
            ExecutionSummary(
                id=e.id,
                workflow_id=e.workflow_id,
                status=e.status,
                created_at=e.created_at,
                started_at=e.started_at,
                ended_at=e.ended_at,
                owner=e.owner,
            )
            for e in items
        ],
        next_cursor=next_cursor,
    )


async def execution_public(runtime: Runtime, record: ExecutionRecord) -> ExecutionPublic:
    """The execution as ``GET /executions/{id}`` shows it: status, steps and needs, outputs."""
    async with runtime.db.read() as conn:
        steps = await execution_store.get_steps(conn, record.id)
    return public_view(runtime, record, steps)


def public_view(
    runtime: Runtime, record: ExecutionRecord, steps: list[StepRecord]
) -> ExecutionPublic:
    """The execution and its recorded steps as the API shows them."""
    # The DAG's edges come from the workflow's definition; the recorded steps are its nodes.
    # The definition it was triggered with, even if the catalog was reloaded since.
    workflow = runtime.live_catalog.definition(
        record.workflow_id, record.definition_digest
    ) or runtime.catalog.by_id(record.workflow_id)
    specs = workflow.spec.steps if workflow is not None else {}
    return ExecutionPublic(
        id=record.id,
        status=record.status,
        outputs=record.outputs,
        workflow_id=record.workflow_id,
        created_at=record.created_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
        error=record.error,
        definition_digest=record.definition_digest,
        data_removed=data_removed(record),
        inputs=record.inputs,
        steps=[
            StepPublic(
                name=s.name,
                state=s.state,
                started_at=s.started_at,
                ended_at=s.ended_at,
                exit_code=s.exit_code,
                job_id=s.job_id,
                needs=list(specs[s.name].needs) if s.name in specs else None,
                attempts=s.attempts,
                outputs=s.outputs,
                running_at=s.running_at,
                accounting=SlurmAccounting.model_validate(s.accounting) if s.accounting else None,
                environment_id=_elsewhere(specs[s.name].environment, record.environment)
                if s.name in specs
                else None,
            )
            for s in steps
        ],
    )


def _elsewhere(environment: str | None, home: str) -> str | None:
    """A step's environment, when it names one that is not its execution's."""
    return environment if environment != home else None


def data_removed(record: ExecutionRecord) -> dict[str, DataRemovalPublic] | None:
    """The kinds of the execution's data removed so far: when, by whom; None if none."""
    removed = {}
    for kind in DataKind:
        at = removed_at(record, kind)
        if at is not None:
            by = (record.data_removed_by or {}).get(kind.value, RETENTION_ACTOR)
            removed[kind.value] = DataRemovalPublic(at=at, by=by)
    return removed or None


@router.get("/executions/{execution_id}", response_model=ExecutionPublic)
async def get_execution(execution_id: str, request: Request, user: CurrentUser) -> Response:
    """Status of one execution, with its steps and (when finished) its outputs."""
    # The runtime from the app rather than through RuntimeDep: one dependency fewer for
    # FastAPI to solve on the most polled route (about a tenth of its time).
    runtime: Runtime = request.app.state.runtime
    owner = None if is_operator(runtime.settings.operators, user) else user.user_id
    # The most polled route: one snapshot through the quick read path (Database.quick_read).
    found = await runtime.db.quick_read(
        partial(execution_store.read_execution_with_steps, execution_id=execution_id, owner=owner)
    )
    if found is None:
        raise not_found("execution", execution_id)
    # Serialized here: the model was just built from our own records, and FastAPI would
    # validate it once more against response_model (which stays, for the API schema).
    return Response(public_view(runtime, *found).model_dump_json(), media_type="application/json")


@router.delete(
    "/executions/{execution_id}",
    status_code=202,
    response_class=Response,
    responses=problems(409),
)
async def cancel_execution(
    execution_id: str, runtime: RuntimeDep, user: CurrentUser, audit: Audit
) -> Response:
    """Cancel: a pending execution at once, a running one through CANCELLING. 409 if finished."""
    await executions.cancel(runtime, audit, user, execution_id)
    return Response(status_code=202)


def parse_int(what: str, raw: str | None, default: int, minimum: int) -> int:
    """An integer request parameter (``what`` names it in errors), or a 400 that says why.

    Only the forms the OpenAPI document declares are accepted (hpcwaas.api.parameters).
    """
    if raw is None or raw == "":
        return default
    if not parameters.matches(parameters.COUNT_OR_ALL if minimum < 0 else parameters.POSITION, raw):
        raise ApiProblem(400, f"{what} must be an integer of {minimum} or more, got {raw[:40]!r}")
    return int(raw)


def parse_levels(raw: str | None) -> LogLevel:
    """The ``levels`` query parameter: a bitmask 0-15, 0 (the default) meaning INFO+WARN+ERROR."""
    if raw is None or raw == "":
        return LogLevel.default_mask()
    if not parameters.matches(parameters.LEVELS, raw):
        raise ApiProblem(
            400, f"query parameter 'levels' must be between 0 and 15, got {raw[:40]!r}"
        )
    return LogLevel(int(raw)) if int(raw) else LogLevel.default_mask()


def log_entry(record: LogRecord) -> LogEntry:
    """A stored entry as the logs route shows it."""
    return LogEntry(
        level=record.level.label,
        timestamp=record.timestamp,
        content=record.content,
        step=record.step,
    )


@router.get("/executions/{execution_id}/logs", response_model=ExecutionLogs)
async def get_logs(
    execution_id: str,
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    from_: Annotated[str | None, Query(alias="from")] = None,
    size: str | None = None,
    timeout: str | None = None,
    levels: str | None = None,
) -> ExecutionLogs:
    """Entries from position `from` of those matching `levels`; waits up to `timeout` for more."""
    offset = parse_int("query parameter 'from'", from_, 0, 0)
    count = parse_int("query parameter 'size'", size, -1, -1)
    mask = parse_levels(levels)
    wait = 60.0
    if timeout:
        try:
            wait = parse_duration(timeout)
        except ValueError as exc:
            raise ApiProblem(400, f"query parameter 'timeout': {exc}") from None
    wait = min(wait, runtime.settings.limits.max_logs_timeout_seconds)
    await executions.owned_execution(runtime, user, execution_id)

    notifier = runtime.engine.notifier
    stop = shutdown_event(request.app)
    deadline = time.monotonic() + wait
    while True:
        seen = notifier.version(execution_id)
        async with runtime.db.read() as conn:
            # The status first: an execution's entries are all written before its end, so
            # entries read after a terminal status are all it will ever have.
            record = await execution_store.get_execution(conn, execution_id)
            records, total = await log_store.read(
                conn, execution_id, mask, offset, None if count < 0 else count
            )
        finished = record is None or record.status.terminal
        remaining = deadline - time.monotonic()
        if finished and not records and not timeout:
            # The original client's `logs -f` asks again at once, forever, without `timeout`:
            # a pause paces its loop (docs/compatibility.md, "Logs").
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ENDED_LOGS_PAUSE_SECONDS)
            break
        # A finished execution gets no more entries: answer at once instead of idling.
        if records or finished or remaining <= 0 or count == 0 or stop.is_set():
            break
        with LOGS_LONG_POLLS_WAITING.track_inprogress():
            await changed_or_stopped(notifier, execution_id, seen, remaining, stop)
    return ExecutionLogs(
        logs=[log_entry(r) for r in records],
        total_results=total,
        from_=offset,
    )
