"""How one attempt of a step ends, and the declared outputs that can make a success a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.engine.places import Place
from hpcwaas.engine.secret_inputs import mask
from hpcwaas.engine.step_outputs import parse_step_outputs
from hpcwaas.transports.errors import TransportError

SERVER_STOPPED = "the server was stopped"

Emit = Callable[[LogLevel, str], None]


@dataclass(frozen=True)
class Outcome:
    """How one attempt of a step ended; ``retryable`` is decided where a failure is found."""

    state: StepState
    exit_code: int | None
    reason: str = ""
    _: KW_ONLY
    retryable: bool = False  # another attempt may succeed (not a template error, not a cancel)
    outputs: dict[str, str] | None = None


@dataclass(frozen=True)
class Halt:
    """What the runner says of a step it is running: whether it must stop, and how it ends then."""

    halted: Callable[[], bool]
    state: Callable[[], StepState]  # FAILED when the server stops, CANCELLED otherwise
    signal: asyncio.Event = field(default_factory=asyncio.Event)  # set when steps must stop

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` (between attempts); False if the steps were halted meanwhile."""
        if self.halted():
            return False
        try:
            await asyncio.wait_for(self.signal.wait(), timeout=seconds)
        except TimeoutError:
            return not self.halted()
        return False

    def not_started(self) -> Outcome:
        """The attempt was halted before it started anything."""
        return Outcome(self.state(), None, "was not started")

    def killed(self, exit_code: int | None) -> Outcome:
        """The attempt was killed by the engine: a cancel, or a stop of the server."""
        stopped = self.state() is StepState.FAILED
        reason = f"was killed: {SERVER_STOPPED}" if stopped else "was cancelled"
        return Outcome(self.state(), exit_code, reason)


async def read_declared_outputs(
    place: Place,
    name: str,
    declared: Sequence[str],
    outcome: Outcome,
    *,
    limit: int,
    emit: Emit,
    hidden: Mapping[str, str],
) -> Outcome:
    """The step's declared outputs; a step that did not write them fails."""
    try:
        data = await place.read_step_outputs(name, limit)
    except (OSError, TransportError) as exc:
        return Outcome(StepState.FAILED, outcome.exit_code, f"outputs cannot be read: {exc}")
    parsed = parse_step_outputs(data, declared, limit)
    for warning in parsed.warnings:
        emit(LogLevel.WARN, f"Step {name}: {warning}")
    if parsed.error is not None:
        return Outcome(StepState.FAILED, outcome.exit_code, parsed.error, retryable=True)
    values = {k: mask(v, hidden) for k, v in parsed.values.items()}
    return Outcome(StepState.SUCCEEDED, outcome.exit_code, outputs=values)
