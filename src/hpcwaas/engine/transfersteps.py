"""Steps the service runs itself (``stage_in``, ``stage_out``): render, transfer, time out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.kinds.base import Preparation, StepKind, StepSettings
from hpcwaas.catalog.kinds.transfers import TransferError
from hpcwaas.engine.outcome import Halt, Outcome
from hpcwaas.engine.secret_inputs import mask
from hpcwaas.transports.errors import TransportError

Emit = Callable[[LogLevel, str], None]


class TransferPlan(Protocol):
    """What the engine reads of a transfer kind's prepared plan."""

    @property
    def note(self) -> str | None: ...


P = TypeVar("P", bound=TransferPlan)
# The engine's part of a transfer: move the bytes the plan says, logging through ``Emit``.
Move = Callable[[P, Emit], Awaitable[object]]


async def run_transfer_step(
    *,
    name: str,
    kind: StepKind[Any, P],
    spec: StepSettings,
    move: Move[P],
    execution_id: str,
    inputs: dict[str, Any],
    limits: Mapping[str, Any],
    emit: Emit,
    key_store_secrets: Mapping[str, str] | None = None,
) -> None:
    """Run one transfer step; TransferError (or TransportError) says why it failed."""
    plan = kind.prepare(
        spec,
        Preparation(
            execution_id=execution_id,
            step_name=name,
            inputs=inputs,
            key_store_secrets=key_store_secrets,
            limits=limits,
        ),
    )
    work = move(plan, emit)
    if plan.note:
        emit(LogLevel.WARN, plan.note)
    if spec.timeout is None:
        await work
        return
    try:
        await asyncio.wait_for(work, spec.timeout)
    except TimeoutError:
        raise TransferError(f"timed out after {spec.timeout:g} s; nothing kept") from None


class TransferStep(Generic[P]):
    """One attempt of a stage_in or stage_out step: the service moves the bytes itself."""

    def __init__(
        self,
        *,
        name: str,
        kind: StepKind[Any, P],
        spec: StepSettings,
        move: Move[P],
        execution_id: str,
        inputs: dict[str, Any],
        limits: Mapping[str, Any],
        emit: Emit,
        halt: Halt,
        detaches: Callable[[], bool],
        hidden: Mapping[str, str],
        key_store_secrets: Mapping[str, str] | None = None,
    ) -> None:
        self._name = name
        self._kind = kind
        self._spec = spec
        self._move = move
        self._execution_id = execution_id
        self._inputs = inputs
        self._limits = limits
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
                kind=self._kind,
                spec=self._spec,
                move=self._move,
                execution_id=self._execution_id,
                inputs=self._inputs,
                limits=self._limits,
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
        if isinstance(exc, TransferError | TransportError):
            return Outcome(
                StepState.FAILED, None, mask(f"failed: {exc}", self._hidden), retryable=True
            )
        raise exc
