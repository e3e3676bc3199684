"""The transition tables of executions and steps, and the store that enforces them."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import TypeVar

import pytest

from hpcwaas.api.states import (
    EXECUTION_TRANSITIONS,
    STEP_TRANSITIONS,
    ExecutionStatus,
    IllegalTransition,
    StepState,
)
from hpcwaas.store import executions as store
from hpcwaas.store.database import Database

E = ExecutionStatus
S = StepState
T = TypeVar("T", ExecutionStatus, StepState)

LEGAL_EXECUTION_MOVES = {
    (E.PENDING, E.RUNNING),
    (E.PENDING, E.FAILED),
    (E.PENDING, E.CANCELLED),
    (E.RUNNING, E.CANCELLING),
    (E.RUNNING, E.SUCCEEDED),
    (E.RUNNING, E.FAILED),
    (E.RUNNING, E.CANCELLED),
    (E.CANCELLING, E.FAILED),
    (E.CANCELLING, E.CANCELLED),
}

LEGAL_STEP_MOVES = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.SKIPPED),
    (S.PENDING, S.WAITING),
    (S.WAITING, S.WAITING),
    (S.WAITING, S.RUNNING),
    (S.WAITING, S.SUCCEEDED),
    (S.WAITING, S.FAILED),
    (S.WAITING, S.CANCELLED),
    (S.RUNNING, S.RUNNING),
    (S.RUNNING, S.UNKNOWN),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.UNKNOWN, S.RUNNING),
    (S.UNKNOWN, S.SUCCEEDED),
    (S.UNKNOWN, S.FAILED),
    (S.UNKNOWN, S.CANCELLED),
}

ILLEGAL_EXECUTION_MOVES = [
    (E.PENDING, E.SUCCEEDED),
    (E.PENDING, E.CANCELLING),
    (E.RUNNING, E.PENDING),
    (E.RUNNING, E.RUNNING),
    (E.CANCELLING, E.RUNNING),
    (E.CANCELLING, E.SUCCEEDED),
    (E.SUCCEEDED, E.FAILED),
    (E.FAILED, E.RUNNING),
    (E.CANCELLED, E.CANCELLING),
]

ILLEGAL_STEP_MOVES = [
    (S.PENDING, S.SUCCEEDED),
    (S.PENDING, S.UNKNOWN),
    (S.RUNNING, S.PENDING),
    (S.RUNNING, S.SKIPPED),
    (S.RUNNING, S.WAITING),
    (S.WAITING, S.PENDING),
    (S.WAITING, S.UNKNOWN),
    (S.UNKNOWN, S.UNKNOWN),
    (S.SUCCEEDED, S.RUNNING),
    (S.FAILED, S.RUNNING),
    (S.CANCELLED, S.FAILED),
    (S.SKIPPED, S.RUNNING),
]


def _moves(table: Mapping[T, frozenset[T]]) -> set[tuple[T, T]]:
    return {(source, to) for source, after in table.items() for to in after}


def test_the_tables_hold_exactly_the_legal_moves() -> None:
    assert _moves(EXECUTION_TRANSITIONS) == LEGAL_EXECUTION_MOVES
    assert _moves(STEP_TRANSITIONS) == LEGAL_STEP_MOVES
    assert set(EXECUTION_TRANSITIONS) == set(ExecutionStatus)
    assert set(STEP_TRANSITIONS) == set(StepState)


def test_terminal_states_are_those_nothing_may_follow() -> None:
    assert {s for s in E if s.terminal} == {
        s for s, after in EXECUTION_TRANSITIONS.items() if not after
    }
    assert {s for s in E if s.terminal} == {E.SUCCEEDED, E.FAILED, E.CANCELLED}
    assert {s for s in S if s.terminal} == {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.SKIPPED}


def _path_to(table: Mapping[T, frozenset[T]], start: T, goal: T) -> list[T]:
    """The states after ``start`` on a shortest legal path from ``start`` to ``goal``."""
    came_from: dict[T, T | None] = {start: None}
    queue: deque[T] = deque([start])
    while queue:
        state = queue.popleft()
        for after in table[state]:
            if after not in came_from:
                came_from[after] = state
                queue.append(after)
    path: list[T] = []
    at: T | None = goal
    while at is not None and at != start:
        path.append(at)
        at = came_from[at]
    return path[::-1]


async def _execution_in(db: Database, status: E, steps: tuple[str, ...] = ("a",)) -> str:
    """A new execution with ``steps`` (PENDING), moved along legal moves to ``status``."""
    execution_id = f"exec-{status.value.lower()}"
    async with db.write() as conn:
        await store.create_execution(
            conn,
            execution_id=execution_id,
            owner="alice",
            workflow_id="demo@local@hello",
            application="demo",
            environment="local",
            workflow="hello",
            inputs={},
            definition_digest="0" * 64,
            step_names=list(steps),
        )
        current = E.PENDING
        for to in _path_to(EXECUTION_TRANSITIONS, E.PENDING, status):
            assert await store.transition(conn, execution_id, to, expected={current})
            current = to
    return execution_id


async def _step_in(db: Database, state: S) -> str:
    """A new execution whose step ``a`` was moved along legal moves to ``state``."""
    execution_id = await _execution_in(db, E.PENDING)
    async with db.write() as conn:
        current = S.PENDING
        for to in _path_to(STEP_TRANSITIONS, S.PENDING, state):
            assert await store.update_step(conn, execution_id, "a", to, expected={current})
            current = to
    return execution_id


async def _status(db: Database, execution_id: str) -> E:
    async with db.read() as conn:
        record = await store.get_execution(conn, execution_id)
    assert record is not None
    return record.status


async def _step_state(db: Database, execution_id: str) -> S:
    async with db.read() as conn:
        (step,) = await store.get_steps(conn, execution_id)
    return step.state


@pytest.mark.parametrize(("source", "to"), sorted(LEGAL_EXECUTION_MOVES))
async def test_the_store_makes_every_legal_execution_move(db: Database, source: E, to: E) -> None:
    execution_id = await _execution_in(db, source)
    async with db.write() as conn:
        assert await store.transition(conn, execution_id, to, expected={source})
    assert await _status(db, execution_id) is to


@pytest.mark.parametrize(("source", "to"), ILLEGAL_EXECUTION_MOVES)
async def test_the_store_refuses_an_illegal_execution_move(db: Database, source: E, to: E) -> None:
    execution_id = await _execution_in(db, source)
    with pytest.raises(IllegalTransition) as refused:
        async with db.write() as conn:
            await store.transition(conn, execution_id, to, expected={source})
    assert (refused.value.source, refused.value.to) == (source, to)
    assert await _status(db, execution_id) is source  # nothing written


async def test_one_illegal_source_among_the_expected_ones_is_refused(db: Database) -> None:
    execution_id = await _execution_in(db, E.RUNNING)
    with pytest.raises(IllegalTransition):
        async with db.write() as conn:
            await store.transition(conn, execution_id, E.FAILED, expected={E.RUNNING, E.SUCCEEDED})
    assert await _status(db, execution_id) is E.RUNNING


async def test_a_legal_move_from_another_state_than_the_current_one_writes_nothing(
    db: Database,
) -> None:
    """A race (another replica, a cancel during a finish) is no error: nothing is written."""
    execution_id = await _execution_in(db, E.CANCELLING)
    async with db.write() as conn:
        assert not await store.transition(conn, execution_id, E.SUCCEEDED, expected={E.RUNNING})
    assert await _status(db, execution_id) is E.CANCELLING


@pytest.mark.parametrize(("source", "to"), sorted(LEGAL_STEP_MOVES))
async def test_the_store_makes_every_legal_step_move(db: Database, source: S, to: S) -> None:
    execution_id = await _step_in(db, source)
    async with db.write() as conn:
        assert await store.update_step(conn, execution_id, "a", to, expected={source})
    assert await _step_state(db, execution_id) is to


@pytest.mark.parametrize(("source", "to"), ILLEGAL_STEP_MOVES)
async def test_the_store_refuses_an_illegal_step_move(db: Database, source: S, to: S) -> None:
    execution_id = await _step_in(db, source)
    with pytest.raises(IllegalTransition):
        async with db.write() as conn:
            await store.update_step(conn, execution_id, "a", to, expected={source})
    assert await _step_state(db, execution_id) is source


async def test_a_step_move_from_another_state_than_the_current_one_writes_nothing(
    db: Database,
) -> None:
    execution_id = await _step_in(db, S.CANCELLED)
    async with db.write() as conn:
        assert not await store.update_step(
            conn, execution_id, "a", S.SUCCEEDED, expected={S.RUNNING, S.UNKNOWN}
        )
    assert await _step_state(db, execution_id) is S.CANCELLED


async def test_ending_an_execution_closes_its_open_steps(db: Database) -> None:
    execution_id = await _execution_in(db, E.RUNNING, steps=("a", "b", "c", "d"))
    async with db.write() as conn:
        await store.update_step(conn, execution_id, "a", S.RUNNING, expected={S.PENDING})
        await store.update_step(conn, execution_id, "b", S.RUNNING, expected={S.PENDING})
        await store.update_step(conn, execution_id, "b", S.UNKNOWN, expected={S.RUNNING})
        await store.update_step(conn, execution_id, "d", S.RUNNING, expected={S.PENDING})
        await store.update_step(conn, execution_id, "d", S.SUCCEEDED, expected={S.RUNNING})
        assert await store.end_execution(
            conn, execution_id, E.CANCELLED, expected={E.RUNNING}, running_steps_to=S.CANCELLED
        )
    async with db.read() as conn:
        record = await store.get_execution(conn, execution_id)
        steps = {step.name: step for step in await store.get_steps(conn, execution_id)}
    assert record is not None and record.status is E.CANCELLED and record.ended_at is not None
    assert {name: step.state for name, step in steps.items()} == {
        "a": S.CANCELLED,
        "b": S.CANCELLED,
        "c": S.SKIPPED,
        "d": S.SUCCEEDED,
    }
    assert steps["a"].ended_at is not None and steps["b"].ended_at is not None
    assert steps["c"].ended_at is None


async def test_an_end_that_finds_the_execution_moved_on_touches_nothing(db: Database) -> None:
    execution_id = await _execution_in(db, E.CANCELLING)
    async with db.write() as conn:
        assert not await store.end_execution(
            conn, execution_id, E.FAILED, expected={E.RUNNING}, running_steps_to=S.FAILED
        )
    assert await _status(db, execution_id) is E.CANCELLING
    assert await _step_state(db, execution_id) is S.PENDING


async def test_an_end_that_would_move_a_step_illegally_is_refused(db: Database) -> None:
    execution_id = await _execution_in(db, E.RUNNING)
    with pytest.raises(IllegalTransition):
        async with db.write() as conn:
            await store.end_execution(
                conn, execution_id, E.FAILED, expected={E.RUNNING}, running_steps_to=S.PENDING
            )
    assert await _status(db, execution_id) is E.RUNNING  # nothing written
