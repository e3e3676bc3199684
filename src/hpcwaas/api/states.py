"""Execution and step states, which state may follow which, and log levels, as on the wire.

The transition tables live here, next to the states they order, rather than in engine/:
the store enforces them (store/executions.py refuses a move they do not allow) and the
store must not depend on the engine, which depends on it; ``terminal`` is read off them.
An execution or a step is created PENDING; every later change of its state is a move
in its table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntFlag, StrEnum
from types import MappingProxyType
from typing import TypeVar


class ExecutionStatus(StrEnum):
    """Status of an execution. Non-terminal values end in ``ING``: clients poll while they do."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


class StepState(StrEnum):
    """State of one step of an execution."""

    PENDING = "PENDING"
    WAITING = "WAITING"  # a Slurm job submitted ahead, waiting on the jobs of its needs
    RUNNING = "RUNNING"
    UNKNOWN = "UNKNOWN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_STEP_STATES


# Which status an execution may move to from each status. A cancel is CANCELLING while
# steps still run somewhere; an end written by the engine itself (an internal error, a
# server stop, a definition gone) may fail one that is CANCELLING.
EXECUTION_TRANSITIONS: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = MappingProxyType(
    {
        ExecutionStatus.PENDING: frozenset(
            {ExecutionStatus.RUNNING, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
        ),
        ExecutionStatus.RUNNING: frozenset(
            {
                ExecutionStatus.CANCELLING,
                ExecutionStatus.SUCCEEDED,
                ExecutionStatus.FAILED,
                ExecutionStatus.CANCELLED,
            }
        ),
        ExecutionStatus.CANCELLING: frozenset({ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}),
        ExecutionStatus.SUCCEEDED: frozenset(),
        ExecutionStatus.FAILED: frozenset(),
        ExecutionStatus.CANCELLED: frozenset(),
    }
)

# Which state a step may move to from each state. RUNNING to RUNNING records a new attempt
# or its job ID; UNKNOWN is a running job whose state cannot be read for now; WAITING is a
# job submitted ahead (its Slurm dependencies on the jobs of its needs not yet met), which
# moves to RUNNING once Slurm starts it, or ends without having been seen running.
STEP_TRANSITIONS: Mapping[StepState, frozenset[StepState]] = MappingProxyType(
    {
        StepState.PENDING: frozenset({StepState.WAITING, StepState.RUNNING, StepState.SKIPPED}),
        StepState.WAITING: frozenset(
            {
                StepState.WAITING,
                StepState.RUNNING,
                StepState.SUCCEEDED,
                StepState.FAILED,
                StepState.CANCELLED,
            }
        ),
        StepState.RUNNING: frozenset(
            {
                StepState.RUNNING,
                StepState.UNKNOWN,
                StepState.SUCCEEDED,
                StepState.FAILED,
                StepState.CANCELLED,
            }
        ),
        StepState.UNKNOWN: frozenset(
            {StepState.RUNNING, StepState.SUCCEEDED, StepState.FAILED, StepState.CANCELLED}
        ),
        StepState.SUCCEEDED: frozenset(),
        StepState.FAILED: frozenset(),
        StepState.CANCELLED: frozenset(),
        StepState.SKIPPED: frozenset(),
    }
)

# Started and not ended: submitted ahead, running, or a job whose state cannot be read for now.
ACTIVE_STEP_STATES = frozenset({StepState.WAITING, StepState.RUNNING, StepState.UNKNOWN})

# The states nothing may follow.
TERMINAL_STATUSES = frozenset(s for s, after in EXECUTION_TRANSITIONS.items() if not after)
_TERMINAL_STEP_STATES = frozenset(s for s, after in STEP_TRANSITIONS.items() if not after)


class IllegalTransition(Exception):
    """A move its transition table does not allow: a programming error, never a race."""

    def __init__(self, source: StrEnum, to: StrEnum) -> None:
        super().__init__(f"{type(to).__name__} may not move from {source} to {to}")
        self.source = source
        self.to = to


_State = TypeVar("_State", ExecutionStatus, StepState)


def check_transition(
    table: Mapping[_State, frozenset[_State]], sources: Iterable[_State], to: _State
) -> None:
    """Raise IllegalTransition unless ``table`` allows a move to ``to`` from every source."""
    for source in sources:
        if to not in table[source]:
            raise IllegalTransition(source, to)


class LogLevel(IntFlag):
    """Log levels as the bitmask of the logs endpoint's ``levels`` parameter."""

    DEBUG = 1
    INFO = 2
    WARN = 4
    ERROR = 8

    @classmethod
    def default_mask(cls) -> LogLevel:
        return cls.INFO | cls.WARN | cls.ERROR

    @classmethod
    def from_name(cls, name: str) -> LogLevel:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name or str(int(self))
