"""Starting an execution: PENDING to RUNNING, ready to run; or picked up after a restart."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hpcwaas.api.states import ExecutionStatus, LogLevel, StepState
from hpcwaas.engine.execution_secrets import ExecutionSecrets
from hpcwaas.engine.outcome import Emit
from hpcwaas.engine.places import Places
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database
from hpcwaas.store.executions import ExecutionRecord
from hpcwaas.transports.errors import TransportError

if TYPE_CHECKING:
    from hpcwaas.catalog.catalog import DeployedWorkflow


async def mark_running(db: Database, execution_id: str, work_dir: str) -> set[str] | None:
    """Move a PENDING execution to RUNNING in ``work_dir``; the names of its recorded steps.

    None when it is not PENDING any more: it is then not run.
    """
    async with db.write() as conn:
        moved = await store_executions.transition(
            conn,
            execution_id,
            ExecutionStatus.RUNNING,
            expected={ExecutionStatus.PENDING},
            started_at=datetime.now(UTC),
            work_dir=work_dir,
        )
        if not moved:
            return None
        return {s.name for s in await store_executions.get_steps(conn, execution_id)}


async def prepare_run(
    *,
    places: Places,
    secrets: ExecutionSecrets,
    workflow: DeployedWorkflow,
    execution: ExecutionRecord,
    recorded: set[str],
    emit: Emit,
) -> str | None:
    """Read the secrets, create the working directories (one per place), check the definition.

    Why the execution fails before any step runs, or None when its steps may run.
    """
    secrets_failure = await secrets.load()
    if secrets_failure is not None:
        return secrets_failure
    for environment, place in [(None, places.home), *places.others.items()]:
        try:
            await place.prepare()
        except (OSError, TransportError) as exc:
            on = f" on {environment}" if environment is not None else ""
            return f"its working directory{on} cannot be created: {exc}"
    if recorded != set(workflow.spec.steps):
        return (
            f"workflow {workflow.id} changed since this execution was triggered "
            "(its steps differ); trigger it again"
        )
    if workflow.digest != execution.definition_digest:
        emit(
            LogLevel.WARN,
            "The workflow file changed since this execution was triggered; "
            "running its current definition",
        )
    return None


@dataclass
class Progress:
    """What a previous run of the server left of an execution's steps."""

    states: dict[str, StepState] = field(default_factory=dict)
    job_ids: dict[str, str] = field(default_factory=dict)  # of the steps that are jobs
    attempts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # of the steps that succeeded


async def read_progress(db: Database, execution_id: str, names: Collection[str]) -> Progress:
    """The recorded state of the steps named ``names``: finished steps stay finished."""
    async with db.read() as conn:
        steps = await store_executions.get_steps(conn, execution_id)
    progress = Progress()
    for step in steps:
        if step.name not in names:
            continue
        progress.states[step.name] = step.state
        if step.job_id:
            progress.job_ids[step.name] = step.job_id
        if step.attempts:
            progress.attempts[step.name] = step.attempts
        if step.state is StepState.SUCCEEDED and step.outputs:
            progress.outputs[step.name] = dict(step.outputs)
    return progress
