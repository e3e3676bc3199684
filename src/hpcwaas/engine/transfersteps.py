"""Steps the service runs itself (``stage_in``, ``stage_out``): render, transfer, time out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.kinds.base import Preparation, StepKind, StepSettings
from hpcwaas.catalog.kinds.transfers import TransferError
from hpcwaas.engine.outcome import Outcome
from hpcwaas.engine.secret_inputs import mask
from hpcwaas.transports.errors import TransportError

if TYPE_CHECKING:
    from hpcwaas.engine.run_context import RunContext

Emit = Callable[[LogLevel, str], None]


class TransferPlan(Protocol):
    """What the engine reads of a transfer kind's prepared plan."""

    @property
    def note(self) -> str | None: ...

    @property
    def outputs(self) -> dict[str, str] | None:
        """The step's outputs once the transfer succeeded (None: it declares none)."""
        ...


P = TypeVar("P", bound=TransferPlan)
# The engine's part of a transfer: move the bytes the plan says, logging through ``Emit``.
Move = Callable[[P, Emit], Awaitable[object]]


async def run_transfer_step(
    kind: StepKind[Any, P], spec: StepSettings, request: Preparation, move: Move[P], emit: Emit
) -> dict[str, str] | None:
    """Run one transfer step, giving its outputs; TransferError (or TransportError) says why
    it failed."""
    plan = kind.prepare(spec, request)
    work = move(plan, emit)
    if plan.note:
        emit(LogLevel.WARN, plan.note)
    if spec.timeout is None:
        await work
        return plan.outputs
    try:
        await asyncio.wait_for(work, spec.timeout)
    except TimeoutError:
        raise TransferError(f"timed out after {spec.timeout:g} s; nothing kept") from None
    return plan.outputs


class TransferStep(Generic[P]):
    """One attempt of a stage_in or stage_out step: the service moves the bytes itself."""

    def __init__(
        self,
        context: RunContext,
        name: str,
        kind: StepKind[Any, P],
        spec: StepSettings,
        move: Move[P],
    ) -> None:
        self._context = context
        self._name = name
        self._kind = kind
        self._spec = spec
        self._move = move
        self._task: asyncio.Task[dict[str, str] | None] | None = None

    def cancel(self) -> None:
        """Stop the transfer; its partial file is removed as it unwinds."""
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> Outcome | None:
        """Run the transfer to its end; None when the server stops meanwhile.

        Then the step stays RUNNING and is run again at the next start.
        """
        name, context = self._name, self._context
        halt, hidden, emit = context.halt, context.secrets.hidden, context.emitter(name)
        if halt.halted():
            return halt.not_started()
        task = asyncio.create_task(
            run_transfer_step(
                self._kind,
                self._spec,
                context.preparation(name, self._spec),
                self._move,
                lambda level, text: emit(level, mask(f"Step {name}: {text}", hidden)),
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
            # The server stops and leaves the execution running: the step is run again.
            if context.stopping() and context.places.survive_restart:
                return None
            return halt.killed(None)
        exc = task.exception()
        if exc is None:
            return Outcome(StepState.SUCCEEDED, None, outputs=task.result())
        if isinstance(exc, TransferError | TransportError):
            return Outcome(StepState.FAILED, None, mask(f"failed: {exc}", hidden), retryable=True)
        raise exc
