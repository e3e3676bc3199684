"""The Slurm dependencies of the steps submitted ahead (ahead.py): on whose jobs a job waits,
and pointing waiting jobs at the new job of a need that is tried again."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.schedulers import slurm

if TYPE_CHECKING:
    from hpcwaas.engine.places import ClusterPlace
    from hpcwaas.engine.run_context import RunContext


async def jobs_of_needs(context: RunContext, name: str) -> list[str] | None:
    """The jobs step ``name`` must wait for (its needs not yet succeeded), once each has one.

    None when it will never run: a need ended without success, or the steps were halted.
    """
    state, needs = context.state, context.state.plan.needs.get(name, ())
    while True:
        changed = state.changed()
        if state.lost(needs) or context.halt.halted():
            return None
        jobs = state.jobs_to_wait_for(needs)
        if jobs is not None:
            return jobs
        await _first(changed, context.halt.signal)


async def needs_settled(context: RunContext, name: str, seconds: float) -> None:
    """Wait, at most ``seconds``, until the steps halt or every need of ``name`` ended."""
    state, needs = context.state, context.state.plan.needs.get(name, ())
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while not context.halt.halted():
                changed = state.changed()
                if all((s := state.state(need)) is not None and s.terminal for need in needs):
                    return
                await _first(changed, context.halt.signal)


async def _first(*events: asyncio.Event) -> None:
    """Wait until one of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def kill_on_failed_need(context: RunContext, name: str) -> bool:
    """Whether Slurm may cancel the job of step ``name`` when a job it waits for fails: not
    when that need may be tried again (its new job is waited for instead, ``repoint``)."""
    state = context.state
    pending = [
        need
        for need in state.plan.needs.get(name, ())
        if state.state(need) is not StepState.SUCCEEDED
    ]
    return not any(need in state.plan.retried for need in pending)


async def repoint(context: RunContext, cluster: ClusterPlace, name: str) -> None:
    """Step ``name`` has a new job (an attempt after a failure): the waiting jobs of the steps
    submitted ahead on it now wait for that job (``scontrol update Dependency=``)."""
    state = context.state
    for dependent in state.plan.dependents(name):
        job_id = state.job_of(dependent)
        after = state.jobs_to_wait_for(state.plan.needs.get(dependent, ()))
        if state.state(dependent) is not StepState.WAITING or job_id is None or not after:
            continue
        result = await cluster.transport.run(slurm.update_dependency_command(job_id, after))
        emit = context.emitter(dependent)
        if result.exit_code == 0:
            emit(
                LogLevel.INFO,
                f"Step {dependent}: Slurm job {job_id} now waits for jobs {', '.join(after)}",
            )
        else:  # it stays pending; a failure of the need cancels it with the execution's steps
            emit(
                LogLevel.WARN,
                f"Step {dependent}: Slurm job {job_id} could not be pointed at the new job of "
                f"{name}: {result.stderr.strip()[:200]}",
            )
