"""Executions and their steps. Every change of state is a compare-and-set checked against
its transition table (api/states.py): one the table does not allow raises IllegalTransition;
one that finds the row in another state than expected (a race) writes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.api.states import (
    ACTIVE_STEP_STATES,
    EXECUTION_TRANSITIONS,
    STEP_TRANSITIONS,
    ExecutionStatus,
    StepState,
    check_transition,
)
from hpcwaas.store.pagination import newest_first_page
from hpcwaas.store.tables import executions, steps


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    owner: str
    workflow_id: str
    application: str
    environment: str
    workflow: str
    inputs: dict[str, Any]
    status: ExecutionStatus
    error: str | None
    outputs: dict[str, Any] | None
    definition_digest: str
    work_dir: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    cancel_requested: bool
    cluster_login: str | None
    key_id: str | None
    lease_owner: str | None = None  # the replica driving it (see store/execution_leases.py)
    lease_expires_at: datetime | None = None
    # when each kind of data was removed (engine/retention.py), and by whom
    work_dir_removed_at: datetime | None = None
    cluster_work_dir_removed_at: datetime | None = None
    logs_removed_at: datetime | None = None
    outputs_removed_at: datetime | None = None
    data_removed_by: dict[str, str] | None = None
    # the environments its steps run on besides its own: their cluster login and key ID, and
    # ``user_id`` when that account is not the owner's (a deployment's: that environment's
    # deployment_user)
    places: dict[str, dict[str, str | None]] | None = None

    def account_on(self, environment: str) -> tuple[str | None, str | None]:
        """The (cluster login, SSH key ID) its steps use on ``environment``; Nones if none."""
        if environment == self.environment:
            return self.cluster_login, self.key_id
        account = (self.places or {}).get(environment, {})
        return account.get("login"), account.get("key_id")

    def user_on(self, environment: str) -> str:
        """The user ID whose cluster account its steps use on ``environment``."""
        return (self.places or {}).get(environment, {}).get("user_id") or self.owner


@dataclass(frozen=True)
class StepRecord:
    name: str
    position: int
    state: StepState
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    job_id: str | None
    attempts: int | None = None
    outputs: dict[str, str] | None = None
    running_at: datetime | None = None  # when its Slurm job was first seen running
    accounting: dict[str, Any] | None = None  # what sacct kept of its ended job


def _execution(row: Any) -> ExecutionRecord:
    return _execution_from(row._mapping)


_EXECUTION_FIELDS = tuple(c.name for c in executions.c)


def _execution_from(mapping: Any) -> ExecutionRecord:
    data = {name: mapping[name] for name in _EXECUTION_FIELDS}
    data["status"] = ExecutionStatus(data["status"])
    return ExecutionRecord(**data)


def execution_from_row(row: Any) -> ExecutionRecord:
    """The record of a row selected from the ``executions`` table."""
    return _execution(row)


# Built once, values as parameters: building a statement per call costs more than running it.
_INSERT_EXECUTION = executions.insert()
_INSERT_STEPS = steps.insert()


async def create_execution(
    conn: AsyncConnection,
    *,
    execution_id: str,
    owner: str,
    workflow_id: str,
    application: str,
    environment: str,
    workflow: str,
    inputs: dict[str, Any],
    definition_digest: str,
    step_names: list[str],
    cluster_login: str | None = None,
    key_id: str | None = None,
    places: dict[str, dict[str, str | None]] | None = None,
) -> datetime:
    """Record a new PENDING execution and its PENDING steps; return its creation time."""
    now = datetime.now(UTC)
    await conn.execute(
        _INSERT_EXECUTION,
        {
            "id": execution_id,
            "owner": owner,
            "workflow_id": workflow_id,
            "application": application,
            "environment": environment,
            "workflow": workflow,
            "inputs": inputs,
            "status": ExecutionStatus.PENDING.value,
            "definition_digest": definition_digest,
            "created_at": now,
            "cancel_requested": False,
            "cluster_login": cluster_login,
            "key_id": key_id,
            "places": places or None,
        },
    )
    if step_names:
        await conn.execute(
            _INSERT_STEPS,
            [
                {
                    "execution_id": execution_id,
                    "name": name,
                    "position": i,
                    "state": StepState.PENDING.value,
                }
                for i, name in enumerate(step_names)
            ],
        )
    return now


async def get_execution(
    conn: AsyncConnection, execution_id: str, owner: str | None = None
) -> ExecutionRecord | None:
    """The execution, or None if it does not exist or (with ``owner``) is someone else's."""
    row = (await conn.execute(*_execution_query(execution_id, owner))).first()
    return None if row is None else _execution(row)


# Built once: building a SELECT and its cache key costs more than running it on SQLite.
_BY_ID = select(executions).where(executions.c.id == bindparam("execution_id"))
_BY_ID_AND_OWNER = _BY_ID.where(executions.c.owner == bindparam("owner"))
_STEPS_OF = (
    select(steps)
    .where(steps.c.execution_id == bindparam("execution_id"))
    .order_by(steps.c.position)
)


def _execution_query(execution_id: str, owner: str | None) -> tuple[Any, dict[str, str]]:
    if owner is None:
        return _BY_ID, {"execution_id": execution_id}
    return _BY_ID_AND_OWNER, {"execution_id": execution_id, "owner": owner}


# The execution's columns then its steps' (prefixed `step_`), one row per step (or one row
# of NULL step columns): one statement where two cost twice SQLAlchemy's per-statement work.
_STEP_COLUMNS = [c.label(f"step_{c.name}") for c in steps.c if c.name != "execution_id"]
_WITH_STEPS = (
    select(executions, *_STEP_COLUMNS)
    .outerjoin(steps, steps.c.execution_id == executions.c.id)
    .where(executions.c.id == bindparam("execution_id"))
    .order_by(steps.c.position)
)
_WITH_STEPS_OWNED = _WITH_STEPS.where(executions.c.owner == bindparam("owner"))


def read_execution_with_steps(
    conn: Connection, execution_id: str, owner: str | None = None
) -> tuple[ExecutionRecord, list[StepRecord]] | None:
    """The execution and its steps in one statement (a sync connection: Database.quick_read)."""
    if owner is None:
        rows = conn.execute(_WITH_STEPS, {"execution_id": execution_id}).all()
    else:
        rows = conn.execute(_WITH_STEPS_OWNED, {"execution_id": execution_id, "owner": owner}).all()
    if not rows:
        return None
    record = _execution_from(rows[0]._mapping)
    found = [_step(r, "step_") for r in rows if r.step_name is not None]
    return record, found


async def get_steps(conn: AsyncConnection, execution_id: str) -> list[StepRecord]:
    return _steps(await conn.execute(_STEPS_OF, {"execution_id": execution_id}))


def _steps(rows: Iterable[Any]) -> list[StepRecord]:
    return [_step(r) for r in rows]


def _step(row: Any, prefix: str = "") -> StepRecord:
    """A step from a row of the steps table, or of a join whose step columns carry ``prefix``."""
    values = row._mapping
    return StepRecord(
        name=values[f"{prefix}name"],
        position=values[f"{prefix}position"],
        state=StepState(values[f"{prefix}state"]),
        started_at=values[f"{prefix}started_at"],
        ended_at=values[f"{prefix}ended_at"],
        exit_code=values[f"{prefix}exit_code"],
        job_id=values[f"{prefix}job_id"],
        attempts=values[f"{prefix}attempts"],
        outputs=values[f"{prefix}outputs"],
        running_at=values[f"{prefix}running_at"],
        accounting=values[f"{prefix}accounting"],
    )


async def list_executions(
    conn: AsyncConnection,
    owner: str | None,
    *,
    limit: int,
    cursor: str | None,
    statuses: Iterable[ExecutionStatus] | None = None,
    workflow_id: str | None = None,
) -> tuple[list[ExecutionRecord], str | None]:
    """The owner's executions (everyone's with ``owner=None``), newest first, one page at a
    time; optionally only some statuses or one workflow."""
    query = select(executions)
    if owner is not None:
        query = query.where(executions.c.owner == owner)
    if statuses is not None:
        query = query.where(executions.c.status.in_([s.value for s in statuses]))
    if workflow_id is not None:
        query = query.where(executions.c.workflow_id == workflow_id)
    rows, next_cursor = await newest_first_page(conn, executions, query, limit=limit, cursor=cursor)
    return [_execution(r) for r in rows], next_cursor


async def count_unfinished(conn: AsyncConnection, owner: str) -> int:
    """How many of the owner's executions are not terminal (PENDING, RUNNING, CANCELLING)."""
    return int((await conn.execute(_COUNT_UNFINISHED, {"owner": owner})).scalar_one())


_COUNT_UNFINISHED = (
    select(func.count())
    .select_from(executions)
    .where(
        executions.c.owner == bindparam("owner"),
        executions.c.status.in_([s.value for s in ExecutionStatus if not s.terminal]),
    )
)


async def transition(
    conn: AsyncConnection,
    execution_id: str,
    to: ExecutionStatus,
    *,
    expected: Iterable[ExecutionStatus],
    **fields: Any,
) -> bool:
    """Move the execution from one of ``expected`` to ``to``; False, writing nothing, if in none.

    IllegalTransition if EXECUTION_TRANSITIONS forbids a move to ``to`` from one of them.
    """
    expected = frozenset(expected)
    check_transition(EXECUTION_TRANSITIONS, expected, to)
    values: dict[str, Any] = {"status": to.value, **fields}
    if to.terminal and "ended_at" not in fields:
        values["ended_at"] = datetime.now(UTC)
    result = await conn.execute(
        _TRANSITION,
        {
            "b_execution_id": execution_id,
            "b_expected": [s.value for s in expected],
            **values,
        },
    )
    return result.rowcount > 0


# The columns to set are the parameters' other keys (the b_ prefix keeps the names of the
# WHERE clause's parameters apart from the columns').
_TRANSITION = update(executions).where(
    executions.c.id == bindparam("b_execution_id"),
    executions.c.status.in_(bindparam("b_expected", expanding=True)),
)


async def update_step(
    conn: AsyncConnection,
    execution_id: str,
    name: str,
    to: StepState,
    *,
    expected: Iterable[StepState],
    **fields: Any,
) -> bool:
    """Move a step from one of ``expected`` to ``to``; False, writing nothing, if in none.

    IllegalTransition if STEP_TRANSITIONS forbids a move to ``to`` from one of them.
    """
    return await _move_steps(conn, execution_id, to, expected=expected, name=name, **fields) > 0


async def mark_job_running(
    conn: AsyncConnection, execution_id: str, name: str, job_id: str, at: datetime
) -> bool:
    """Record when the step's Slurm job ``job_id`` was first seen running; False if known."""
    result = await conn.execute(
        update(steps)
        .where(
            steps.c.execution_id == execution_id,
            steps.c.name == name,
            steps.c.job_id == job_id,
            steps.c.running_at.is_(None),
        )
        .values(running_at=at)
    )
    return result.rowcount > 0


async def record_accounting(
    conn: AsyncConnection, execution_id: str, name: str, job_id: str, accounting: dict[str, Any]
) -> None:
    """Keep what Slurm's accounting says of the step's job ``job_id``."""
    await conn.execute(
        update(steps)
        .where(
            steps.c.execution_id == execution_id,
            steps.c.name == name,
            steps.c.job_id == job_id,
        )
        .values(accounting=accounting)
    )


async def _move_steps(
    conn: AsyncConnection,
    execution_id: str,
    to: StepState,
    *,
    expected: Iterable[StepState],
    name: str | None = None,
    **fields: Any,
) -> int:
    """Move the execution's steps (the one ``name``d) that are in ``expected`` to ``to``."""
    expected = frozenset(expected)
    check_transition(STEP_TRANSITIONS, expected, to)
    query = update(steps).where(
        steps.c.execution_id == execution_id,
        steps.c.state.in_([s.value for s in expected]),
    )
    if name is not None:
        query = query.where(steps.c.name == name)
    result = await conn.execute(query.values(state=to.value, **fields))
    return result.rowcount


async def end_execution(
    conn: AsyncConnection,
    execution_id: str,
    to: ExecutionStatus,
    *,
    expected: Iterable[ExecutionStatus],
    running_steps_to: StepState,
    **fields: Any,
) -> bool:
    """End the execution ``to`` (terminal) from one of ``expected``, and close its open steps.

    Running (or unknown) steps move to ``running_steps_to``, never started ones to SKIPPED.
    False, writing nothing, if the execution is in none of ``expected``; IllegalTransition,
    before anything is written, if a table forbids one of these moves.
    """
    check_transition(STEP_TRANSITIONS, ACTIVE_STEP_STATES, running_steps_to)
    if not await transition(conn, execution_id, to, expected=expected, **fields):
        return False
    now = datetime.now(UTC)
    await _move_steps(
        conn, execution_id, running_steps_to, expected=ACTIVE_STEP_STATES, ended_at=now
    )
    await _move_steps(conn, execution_id, StepState.SKIPPED, expected={StepState.PENDING})
    return True


async def with_status(
    conn: AsyncConnection, statuses: Iterable[ExecutionStatus]
) -> list[ExecutionRecord]:
    rows = await conn.execute(
        select(executions)
        .where(executions.c.status.in_([s.value for s in statuses]))
        .order_by(executions.c.created_at)
    )
    return [_execution(r) for r in rows]


async def count_by_status(conn: AsyncConnection) -> dict[str, int]:
    """How many executions there are in each status (statuses with none are absent)."""
    rows = await conn.execute(
        select(executions.c.status, func.count()).group_by(executions.c.status)
    )
    return {str(status): int(n) for status, n in rows}


async def count_steps_by_state(conn: AsyncConnection) -> list[tuple[str, str, str, int]]:
    """(workflow ID, step name, step state, count) for every step of every execution."""
    query = (
        select(executions.c.workflow_id, steps.c.name, steps.c.state, func.count())
        .select_from(steps.join(executions, steps.c.execution_id == executions.c.id))
        .group_by(executions.c.workflow_id, steps.c.name, steps.c.state)
    )
    rows = (await conn.execute(query)).all()
    return [
        (str(workflow_id), str(name), str(state), int(n)) for workflow_id, name, state, n in rows
    ]
