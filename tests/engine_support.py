"""The engine on the local environment, for engine tests: a harness over a one-workflow
catalog, real subprocesses and a real database."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hpcwaas.api.states import LogLevel
from hpcwaas.catalog.catalog import DeployedWorkflow
from hpcwaas.catalog.model import ApplicationSpec
from hpcwaas.engine.engine import Engine
from hpcwaas.settings import Settings
from hpcwaas.store import executions, logs
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord, StepRecord
from hpcwaas.store.logs import LogRecord

ALL_LEVELS = LogLevel.DEBUG | LogLevel.INFO | LogLevel.WARN | LogLevel.ERROR


def make_workflow(
    steps: dict[str, dict[str, Any]],
    outputs: dict[str, dict[str, str]] | None = None,
    inputs: dict[str, dict[str, Any]] | None = None,
    on_failure: dict[str, dict[str, Any]] | None = None,
) -> DeployedWorkflow:
    """The workflow ``demo@local@wf`` of ``steps`` (shell unless they say otherwise)."""
    for step in [*steps.values(), *(on_failure or {}).values()]:
        step.setdefault("kind", "shell")
    app = ApplicationSpec.model_validate(
        {
            "application": "demo",
            "environments": ["local"],
            "expose": ["wf"],
            "workflows": {
                "wf": {
                    "steps": steps,
                    "outputs": outputs or {},
                    "inputs": inputs or {},
                    "on_failure": on_failure or {},
                }
            },
        }
    )
    return DeployedWorkflow(
        id="demo@local@wf",
        application=app,
        environment="local",
        environment_name="Local host",
        name="wf",
        spec=app.workflows["wf"],
        digest="d" * 64,
        source=Path("demo.yaml"),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A local environment whose steps get 2 s to stop."""
    return Settings(data_dir=tmp_path / "data", step_grace_seconds=2.0)


class Harness:
    """An engine over a catalog of one workflow, and helpers to trigger and follow it."""

    def __init__(self, db: Database, settings: Settings, **engine_options: Any) -> None:
        self.db = db
        self.settings = settings
        self.catalog: dict[str, DeployedWorkflow] = {}
        self.engine = Engine(db, settings, self.catalog.get, **engine_options)

    async def trigger(
        self, workflow: DeployedWorkflow, inputs: dict[str, Any] | None = None
    ) -> str:
        self.catalog[workflow.id] = workflow
        execution_id = str(uuid.uuid4())
        async with self.db.write() as conn:
            await executions.create_execution(
                conn,
                execution_id=execution_id,
                owner="alice",
                workflow_id=workflow.id,
                application="demo",
                environment="local",
                workflow="wf",
                inputs=inputs or {},
                definition_digest=workflow.digest,
                step_names=list(workflow.spec.steps),
            )
        self.engine.wake()
        return execution_id

    async def record(self, execution_id: str) -> ExecutionRecord:
        async with self.db.read() as conn:
            record = await executions.get_execution(conn, execution_id)
        assert record is not None
        return record

    async def steps(self, execution_id: str) -> dict[str, StepRecord]:
        async with self.db.read() as conn:
            return {s.name: s for s in await executions.get_steps(conn, execution_id)}

    async def logs(self, execution_id: str) -> list[LogRecord]:
        async with self.db.read() as conn:
            records, _ = await logs.read(conn, execution_id, ALL_LEVELS, 0, None)
        return records

    async def wait_until(
        self, execution_id: str, done: Callable[[ExecutionRecord], bool], timeout: float = 15.0
    ) -> ExecutionRecord:
        """Follow the execution the way a status long-poll does, through the notifier."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.engine.notifier.version(execution_id)
            record = await self.record(execution_id)
            if done(record):
                return record
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"execution still {record.status}"
            await self.engine.notifier.wait(execution_id, seen, remaining)

    async def finished(self, execution_id: str) -> ExecutionRecord:
        return await self.wait_until(execution_id, lambda r: r.status.terminal)


@pytest.fixture
async def harness(db: Database, settings: Settings) -> AsyncIterator[Harness]:
    """A started engine; stopped after the test."""
    h = Harness(db, settings)
    await h.engine.start()
    yield h
    await h.engine.stop()
