"""After a step's Slurm job ended: what Slurm's accounting kept of it, kept with the step.

``sacct`` gives the job's state, exit code, elapsed time, CPU time and largest resident set
size (api/models.py SlurmAccounting). slurmdbd records a job's end a moment after the job
leaves the queue, so sacct is asked a few times; a cluster without accounting answers at
once that it has none. Either way the step's outcome does not depend on it, and the log
says what was found or why nothing was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hpcwaas.api.models import SlurmAccounting
from hpcwaas.api.states import LogLevel
from hpcwaas.engine.places import ClusterPlace
from hpcwaas.schedulers.slurm_accounting import Accounting, accounting_command, parse_accounting
from hpcwaas.store import executions as store_executions
from hpcwaas.store.database import Database
from hpcwaas.transports.errors import TransportError

ATTEMPTS = 5
DELAY_SECONDS = 1.0

Emit = Callable[[LogLevel, str], None]


async def record_job_accounting(
    cluster: ClusterPlace,
    db: Database,
    execution_id: str,
    step: str,
    job_id: str,
    emit: Emit,
) -> Accounting | None:
    """Read the ended job's accounting, keep it with the step, log it; None if unavailable."""
    found = None
    for attempt in range(ATTEMPTS):
        try:
            result = await cluster.transport.run(accounting_command(job_id))
        except TransportError as exc:
            emit(LogLevel.INFO, f"Step {step}: Slurm's accounting of job {job_id} not read: {exc}")
            return None
        if result.exit_code != 0:
            emit(
                LogLevel.DEBUG,
                f"Step {step}: no Slurm accounting on this cluster "
                f"({result.stderr.strip()[:200] or f'sacct exit code {result.exit_code}'})",
            )
            return None
        found = parse_accounting(job_id, result.exit_code, result.stdout)
        if found is not None:
            break
        if attempt + 1 < ATTEMPTS:
            await asyncio.sleep(DELAY_SECONDS)
    if found is None:
        emit(
            LogLevel.INFO,
            f"Step {step}: Slurm's accounting has not recorded the end of job {job_id} yet",
        )
        return None
    async with db.write() as conn:
        await store_executions.record_accounting(conn, execution_id, step, job_id, found.as_dict())
    summary = SlurmAccounting.model_validate(found.as_dict()).summary()
    emit(LogLevel.INFO, f"Step {step}: Slurm job {job_id} accounting: {summary}")
    return found
