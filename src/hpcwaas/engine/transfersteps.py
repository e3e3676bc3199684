"""Steps the service runs itself (``stage_in``, ``stage_out``): render, transfer, time out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from hpcwaas.api.states import LogLevel
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.model import StageInStep, StageOutStep
from hpcwaas.engine.placefiles import PlaceFiles
from hpcwaas.engine.resultstore import ResultStore
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
