"""Execution and step states, and log levels, as they appear on the wire."""

from __future__ import annotations

from enum import IntFlag, StrEnum


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


TERMINAL_STATUSES = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)


class StepState(StrEnum):
    """State of one step of an execution."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    UNKNOWN = "UNKNOWN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        return self in {
            StepState.SUCCEEDED,
            StepState.FAILED,
            StepState.CANCELLED,
            StepState.SKIPPED,
        }


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
