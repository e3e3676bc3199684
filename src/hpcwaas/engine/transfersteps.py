"""Steps the service runs itself (``stage_in``, ``stage_out``): render, transfer, time out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.model import StageInStep, StageOutStep
from hpcwaas.engine.outcome import Halt, Outcome
from hpcwaas.engine.placefiles import PlaceFiles
from hpcwaas.engine.resultstore import ResultStore
from hpcwaas.engine.secret_inputs import mask
from hpcwaas.engine.stagein import stage_in
from hpcwaas.engine.stageout import stage_out
from hpcwaas.settings import Settings
from hpcwaas.steps.transfers import (
    TransferError,
    effective_limit,
    prepare_stage_in,
    prepare_stage_out,
)
from hpcwaas.store.database import Database
from hpcwaas.transports.ssh import SshError

Emit = Callable[[LogLevel, str], None]


async def run_transfer_step(
    *,
    name: str,
    spec: StageInStep | StageOutStep,
    execution_id: str,
    inputs: dict[str, Any],
    files: PlaceFiles,
    settings: Settings,
    db: Database,
    emit: Emit,
    key_store_secrets: Mapping[str, str] | None = None,
) -> None:
    """Run one transfer step; TransferError (or SshError) says why it failed."""
    limits = settings.limits
    try:
        if isinstance(spec, StageInStep):
            limit, note = effective_limit(
                spec.max_bytes, limits.max_stage_in_bytes, "max_stage_in_bytes"
            )
            plan_in = prepare_stage_in(
                spec,
                execution_id=execution_id,
                inputs=inputs,
                max_bytes=limit,
                key_store_secrets=key_store_secrets,
            )
            work = stage_in(plan_in, files, emit)
        else:
            limit, note = effective_limit(
                spec.max_bytes, limits.max_stage_out_bytes, "max_stage_out_bytes"
            )
            plan_out = prepare_stage_out(
                spec, step_name=name, execution_id=execution_id, inputs=inputs, max_bytes=limit
            )
            store = ResultStore(settings.results_root)
            work = _discard_result(stage_out(plan_out, files, store, db, execution_id, emit))
    except RenderError as exc:
        raise TransferError(f"its paths cannot be rendered: {exc}") from None
    if note:
        emit(LogLevel.WARN, note)
    if spec.timeout is None:
        await work
        return
    try:
        await asyncio.wait_for(work, spec.timeout)
    except TimeoutError:
        raise TransferError(f"timed out after {spec.timeout:g} s; nothing kept") from None


async def _discard_result(work: Any) -> None:
    await work


class TransferStep:
    """One attempt of a stage_in or stage_out step: the service moves the bytes itself."""

    def __init__(
        self,
        *,
        name: str,
        spec: StageInStep | StageOutStep,
        execution_id: str,
        inputs: dict[str, Any],
        files: PlaceFiles,
        settings: Settings,
        db: Database,
        emit: Emit,
        halt: Halt,
        detaches: Callable[[], bool],
        hidden: Mapping[str, str],
        key_store_secrets: Mapping[str, str] | None = None,
    ) -> None:
        self._name = name
        self._spec = spec
        self._execution_id = execution_id
        self._inputs = inputs
        self._files = files
        self._settings = settings
        self._db = db
        self._emit = emit
        self._halt = halt
        self._detaches = detaches  # whether the server stops and leaves the execution running
        self._hidden = hidden
        self._key_store_secrets = key_store_secrets
        self._task: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        """Stop the transfer; its partial file is removed as it unwinds."""
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> Outcome | None:
        """Run the transfer to its end; None when the server stops meanwhile.

        Then the step stays RUNNING and is run again at the next start.
        """
        name = self._name
        if self._halt.halted():
            return self._halt.not_started()
        task = asyncio.create_task(
            run_transfer_step(
                name=name,
                spec=self._spec,
                execution_id=self._execution_id,
                inputs=self._inputs,
                files=self._files,
                settings=self._settings,
                db=self._db,
                emit=lambda level, text: self._emit(
                    level, mask(f"Step {name}: {text}", self._hidden)
                ),
                key_store_secrets=self._key_store_secrets,
            )
        )
        self._task = task
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():
                task.cancel()
            self._task = None
        if task.cancelled():
            if self._detaches():
                return None
            return self._halt.killed(None)
        exc = task.exception()
        if exc is None:
            return Outcome(StepState.SUCCEEDED, None)
        if isinstance(exc, TransferError | SshError):
            return Outcome(
                StepState.FAILED, None, mask(f"failed: {exc}", self._hidden), retryable=True
            )
        raise exc
