"""Whether a failed step is attempted again: typed where the failure is found, never read
off its message (engine/outcome.py, engine/jobsteps.py, engine/steprunner.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.kinds.slurm import SlurmKind, SlurmStep
from hpcwaas.engine.jobsteps import JobStep
from hpcwaas.engine.outcome import Halt, Outcome
from hpcwaas.engine.places import Places
from hpcwaas.engine.run_context import RunContext, RunState
from hpcwaas.engine.steprunner import tries_again
from hpcwaas.schedulers.slurm import FinalState, SubmitError
from hpcwaas.schedulers.slurm_states import JobState
from hpcwaas.settings import Settings, SlurmEnvironment
from hpcwaas.store import executions
from hpcwaas.store.database import Database
from hpcwaas.transports.base import CommandOutput

FAILED_RETRYABLE = Outcome(StepState.FAILED, 1, "failed with exit code 1", retryable=True)


@pytest.mark.parametrize(
    ("outcome", "attempt", "allowed", "halted", "again"),
    [
        (FAILED_RETRYABLE, 1, 3, False, True),
        (FAILED_RETRYABLE, 2, 3, False, True),
        (FAILED_RETRYABLE, 3, 3, False, False),  # no attempt left
        (FAILED_RETRYABLE, 1, 3, True, False),  # the execution is failing or cancelled
        (Outcome(StepState.FAILED, None, "failed: its job cannot be rendered"), 1, 3, False, False),
        (Outcome(StepState.CANCELLED, None, "was cancelled"), 1, 3, False, False),
        (Outcome(StepState.SUCCEEDED, 0), 1, 3, False, False),
    ],
)
def test_a_step_is_attempted_again_only_after_a_retryable_failure_with_attempts_left(
    outcome: Outcome, attempt: int, allowed: int, halted: bool, again: bool
) -> None:
    assert tries_again(outcome, attempt=attempt, allowed=allowed, halted=halted) is again


class FakeTracker:
    """Follows one job: it ends with ``final``, or CANCELLED once scancelled."""

    def __init__(self, final: FinalState | None) -> None:
        self.final = final
        self.cancelled = asyncio.Event()

    async def wait(self, *args: Any, **kwargs: Any) -> FinalState:
        if self.final is not None:
            return self.final
        await self.cancelled.wait()
        return FinalState(JobState.CANCELLED, None)

    async def cancel(self, target: Any, job_ids: list[str]) -> None:
        self.cancelled.set()


class NoAccounting:
    """The cluster's commands: only sacct is run here, and it has no accounting storage."""

    async def run(self, command: str, **_: Any) -> CommandOutput:
        assert command.startswith("sacct "), command
        return CommandOutput(1, "", "sacct: error: Slurm accounting storage is disabled\n")


class FakeCluster:
    """A cluster on which submitting answers job 42, or raises ``submit_error``."""

    def __init__(self, final: FinalState | None, submit_error: Exception | None = None) -> None:
        self.environment = SlurmEnvironment(kind="slurm", host="login", host_keys=["login key"])
        self.work_dir = "/home/u/.hpcwaas/executions/e1"
        self.target = SimpleNamespace(login="u", key_id="k")
        self.tracker = FakeTracker(final)
        self.transport = NoAccounting()
        self._submit_error = submit_error
        self.cluster = self  # as a place: its own cluster

    def outputs_path(self, step: str) -> str:
        return f"{self.work_dir}/.hpcwaas-{step}.outputs"

    async def retrying(self, operation: Callable[[], Awaitable[str]]) -> str:
        if self._submit_error is not None:
            raise self._submit_error
        return "42"


async def _run_job(
    db: Database, cluster: FakeCluster, script: str = "srun ./sim", **fields: Any
) -> Outcome | None:
    async with db.write() as conn:
        await executions.create_execution(
            conn,
            execution_id="e1",
            owner="alice",
            workflow_id="demo@hpc@sim",
            application="demo",
            environment="hpc",
            workflow="sim",
            inputs={},
            definition_digest="0" * 64,
            step_names=["simulate"],
        )
        record = await executions.get_execution(conn, "e1")
    assert record is not None
    logged: list[tuple[LogLevel, str]] = []
    logs = SimpleNamespace(emit=lambda _id, level, text, _step, *_: logged.append((level, text)))
    secrets = SimpleNamespace(inputs={}, workflow_secrets={}, hidden={})
    halt = Halt(lambda: False, lambda: StepState.CANCELLED)
    context = RunContext(
        db=db,
        settings=Settings(),
        logs=logs,  # type: ignore[arg-type]
        places=Places("hpc", cluster),  # type: ignore[arg-type]
        execution=record,
        secrets=secrets,  # type: ignore[arg-type]
        state=RunState(["simulate"]),
        halt=halt,
        stopping=lambda: False,
        driving=lambda: True,
    )
    spec = SlurmStep.model_validate({"kind": "slurm", "script": script, **fields})
    job = JobStep(
        context,
        cluster,  # type: ignore[arg-type]
        "simulate",
        SlurmKind(),
        spec,
        on_line=lambda *args: asyncio.sleep(0),
        job_id=None,
    )
    return await job.run()


async def test_a_job_that_cannot_be_rendered_is_not_retryable(db: Database) -> None:
    outcome = await _run_job(db, FakeCluster(None), script="echo {{ inputs.missing }}")
    assert outcome == Outcome(StepState.FAILED, None, "failed: its job cannot be rendered")
    assert not outcome.retryable


async def test_a_job_that_ended_failed_is_retryable(db: Database) -> None:
    outcome = await _run_job(db, FakeCluster(FinalState(JobState.FAILED, 3)))
    assert outcome == Outcome(
        StepState.FAILED, 3, "failed: Slurm job 42 ended FAILED with exit code 3", retryable=True
    )


async def test_a_submission_failure_is_retryable_whatever_its_message_says(db: Database) -> None:
    """The retry decision does not read the reason: this one names a template all the same."""
    error = SubmitError("sbatch: the script cannot be rendered", retryable=False)
    outcome = await _run_job(db, FakeCluster(None, submit_error=error))
    assert outcome == Outcome(
        StepState.FAILED, None, "failed: sbatch: the script cannot be rendered", retryable=True
    )


async def test_a_job_past_its_timeout_is_retryable(db: Database) -> None:
    outcome = await _run_job(db, FakeCluster(None), timeout=0.01)
    assert outcome == Outcome(
        StepState.FAILED, None, "timed out after 0.01 s (Slurm job 42 cancelled)", retryable=True
    )


async def test_a_cancelled_job_is_not_retryable(db: Database) -> None:
    outcome = await _run_job(db, FakeCluster(FinalState(JobState.CANCELLED, None)))
    assert outcome == Outcome(StepState.CANCELLED, None, "was cancelled")


async def test_a_completed_job_succeeds(db: Database) -> None:
    outcome = await _run_job(db, FakeCluster(FinalState(JobState.COMPLETED, 0)))
    assert outcome == Outcome(StepState.SUCCEEDED, 0)
