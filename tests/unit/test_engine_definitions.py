"""An execution dispatched after a catalog reload runs the definition it was triggered with."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from tests.engine_support import Harness, make_workflow
from tests.engine_support import settings as settings

from hpcwaas.api.states import ExecutionStatus
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.settings import Settings
from hpcwaas.store.database import Database

OLD = make_workflow(
    {"only": {"run": "echo old > out.txt"}}, outputs={"out": {"step": "only", "path": "out.txt"}}
)
NEW = dataclasses.replace(
    make_workflow(
        {"only": {"run": "echo new > out.txt"}},
        outputs={"out": {"step": "only", "path": "out.txt"}},
    ),
    digest="e" * 64,
)


@pytest.fixture
async def reloaded(db: Database, settings: Settings) -> AsyncIterator[Harness]:
    """An engine whose catalog now holds NEW, and which still knows OLD by its digest."""
    kept = {(OLD.id, OLD.digest): OLD}

    def definition(workflow_id: str, digest: str) -> DeployedWorkflow | None:
        return kept.get((workflow_id, digest))

    h = Harness(db, settings, definitions=definition)
    await h.engine.start()
    yield h
    await h.engine.stop()


async def test_a_pending_execution_runs_its_own_definition_after_a_reload(
    reloaded: Harness,
) -> None:
    execution_id = await reloaded.trigger(OLD)
    reloaded.catalog[OLD.id] = NEW  # the reload happened before the engine picked it up
    record = await reloaded.finished(execution_id)
    assert record.status is ExecutionStatus.SUCCEEDED, record.error
    assert record.outputs == {"out": "old\n"}
    assert record.definition_digest == OLD.digest


async def test_a_pending_execution_runs_even_if_its_workflow_left_the_catalog(
    reloaded: Harness,
) -> None:
    execution_id = await reloaded.trigger(OLD)
    reloaded.catalog.clear()
    record = await reloaded.finished(execution_id)
    assert record.status is ExecutionStatus.SUCCEEDED, record.error
    assert record.outputs == {"out": "old\n"}


async def test_without_its_definition_an_execution_falls_back_to_the_current_one(
    reloaded: Harness,
) -> None:
    execution_id = await reloaded.trigger(NEW)  # NEW's digest is not among the kept ones
    record = await reloaded.finished(execution_id)
    assert record.status is ExecutionStatus.SUCCEEDED, record.error
    assert record.outputs == {"out": "new\n"}
