"""Errors of the engine, for the server to map to HTTP responses.

    EngineError
     ├── ExecutionNotFound          no such execution                      (HTTP 404)
     └── ExecutionAlreadyFinished   cancel of a terminal execution         (HTTP 409)

Every message is safe to show to the execution's owner.
"""

from __future__ import annotations

from hpcwaas.api.states import ExecutionStatus


class EngineError(Exception):
    """Base of every engine error."""


class ExecutionNotFound(EngineError):
    """No execution has this ID."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        super().__init__(f"execution {execution_id} not found")


class ExecutionAlreadyFinished(EngineError):
    """The execution is already terminal (``status``), so it cannot be cancelled."""

    def __init__(self, status: ExecutionStatus) -> None:
        self.status = status
        super().__init__(f"the execution has already finished ({status.value})")
