"""Steps whose kind runs a command (``shell``): render, start on the place's host, wait, kill."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import CommandInvocation, Preparation, StepKind, StepSettings
from hpcwaas.engine.outcome import Emit, Halt, Outcome
from hpcwaas.engine.places import Place
from hpcwaas.transports.base import (
    CommandResult,
    LineCallback,
    RunningCommand,
    Transport,
)
from hpcwaas.transports.errors import TransportError


class CommandStep:
    """One attempt of a step that is a command, from its rendered command line to its exit."""

    def __init__(
        self,
        *,
        place: Place,
        execution_id: str,
        inputs: dict[str, Any],
        name: str,
        kind: StepKind[Any, CommandInvocation],
        spec: StepSettings,
        emit: Emit,
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        halt: Halt,
        kill: Callable[[RunningCommand], None],
        grace: float,
        step_outputs: dict[str, dict[str, str]],
        secrets: dict[str, str],
        key_store_secrets: dict[str, str],
    ) -> None:
        self._place = place
        self._execution_id = execution_id
        self._inputs = inputs
        self._name = name
        self._kind = kind
        self._spec = spec
        self._emit = emit
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._halt = halt
        self._kill = kill  # the runner's: it kills with the grace a cancel or a stop asks for
        self._grace = grace
        self._step_outputs = step_outputs
        self._secrets = secrets
        self._key_store_secrets = key_store_secrets
        self.command: RunningCommand | None = None  # while it runs: what a cancel kills

    async def run(self) -> Outcome:
        """Render the command, run it to its end and say how it ended."""
        name, spec = self._name, self._spec
        try:
            invocation = self._kind.prepare(
                spec,
                Preparation(
                    execution_id=self._execution_id,
                    step_name=name,
                    inputs=self._inputs,
                    step_outputs=self._step_outputs,
                    secrets=self._secrets,
                    key_store_secrets=self._key_store_secrets,
                    outputs_path=self._place.outputs_path(name) if spec.outputs else None,
                    work_dir=str(self._place.work_dir),
                ),
            )
        except RenderError as exc:
            self._emit(LogLevel.ERROR, f"Step {name}: its command cannot be rendered: {exc}")
            return Outcome(StepState.FAILED, None, "failed: its command cannot be rendered")
        self._emit(LogLevel.DEBUG, f"Command: {invocation.command}")
        if self._halt.halted():
            return self._halt.not_started()
        try:
            command = await start_command(
                invocation,
                self._place.transport,
                cwd=self._place.work_dir,
                on_stdout=self._on_stdout,
                on_stderr=self._on_stderr,
                grace=self._grace,
            )
        except (OSError, TransportError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return Outcome(
                StepState.FAILED, None, f"could not be started: {detail}", retryable=True
            )
        self.command = command
        try:
            if self._halt.halted():  # halted while the command was starting: kill() missed it
                self._kill(command)
            result = await command.wait()
        finally:
            self.command = None
        if result.timed_out:
            return Outcome(
                StepState.FAILED,
                result.exit_code,
                failure_reason(result, spec.timeout),
                retryable=True,
            )
        if result.killed:
            return self._halt.killed(result.exit_code)
        if result.exit_code == 0:
            return Outcome(StepState.SUCCEEDED, 0)
        return Outcome(
            StepState.FAILED, result.exit_code, failure_reason(result, spec.timeout), retryable=True
        )


async def start_command(
    invocation: CommandInvocation,
    transport: Transport,
    *,
    cwd: PurePath | str,
    on_stdout: LineCallback,
    on_stderr: LineCallback,
    grace: float,
) -> RunningCommand:
    """Start a rendered command through ``transport``; the caller waits for (or kills) it."""
    return await transport.start(
        invocation.command,
        cwd=cwd,
        env=invocation.env,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
        timeout=invocation.timeout,
        grace=grace,
    )


def failure_reason(result: CommandResult, timeout: float | None) -> str:
    """Why a command that did not succeed ended, for logs and the execution's ``error``."""
    if result.timed_out:
        return f"timed out after {timeout:g} s" if timeout is not None else "timed out"
    if result.signal is not None:
        try:
            name = signal.Signals(result.signal).name
        except ValueError:
            name = f"signal {result.signal}"
        return f"was killed by {name} (exit code {result.exit_code})"
    return f"failed with exit code {result.exit_code}"
