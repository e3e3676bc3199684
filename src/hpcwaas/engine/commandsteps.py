"""Steps whose kind runs a command (``shell``): render, start on the place's host, wait, kill."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from hpcwaas.api.states import LogLevel, StepState
from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import CommandInvocation, StepKind, StepSettings
from hpcwaas.engine.outcome import Outcome
from hpcwaas.transports.base import (
    CommandResult,
    LineCallback,
    RunningCommand,
    Transport,
)
from hpcwaas.transports.errors import TransportError

if TYPE_CHECKING:
    from hpcwaas.engine.run_context import RunContext


class CommandStep:
    """One attempt of a step that is a command, from its rendered command line to its exit."""

    def __init__(
        self,
        context: RunContext,
        name: str,
        kind: StepKind[Any, CommandInvocation],
        spec: StepSettings,
        *,
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        kill: Callable[[RunningCommand], None],
    ) -> None:
        self._context = context
        self._name = name
        self._kind = kind
        self._spec = spec
        self._emit = context.emitter(name)
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._kill = kill  # the runner's: it kills with the grace a cancel or a stop asks for
        self.command: RunningCommand | None = None  # while it runs: what a cancel kills

    async def run(self) -> Outcome:
        """Render the command, run it to its end and say how it ended."""
        name, spec, context = self._name, self._spec, self._context
        halt, place = context.halt, context.place_of(spec)
        try:
            invocation = self._kind.prepare(spec, context.preparation(name, spec))
        except RenderError as exc:
            self._emit(LogLevel.ERROR, f"Step {name}: its command cannot be rendered: {exc}")
            return Outcome(StepState.FAILED, None, "failed: its command cannot be rendered")
        self._emit(LogLevel.DEBUG, f"Command: {invocation.command}")
        if halt.halted():
            return halt.not_started()
        try:
            command = await start_command(
                invocation,
                place.transport,
                cwd=place.work_dir,
                on_stdout=self._on_stdout,
                on_stderr=self._on_stderr,
                grace=context.settings.step_grace_seconds,
            )
        except (OSError, TransportError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return Outcome(
                StepState.FAILED, None, f"could not be started: {detail}", retryable=True
            )
        self.command = command
        try:
            if halt.halted():  # halted while the command was starting: kill() missed it
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
            return halt.killed(result.exit_code)
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
