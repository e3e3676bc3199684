"""The transport interface: start a shell command line somewhere, stream its output, kill it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Protocol

# Called once per line of output (without its newline). Awaited, so that a slow consumer
# slows the reader down and, through the pipe, the command itself.
LineCallback = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class CommandResult:
    """How a command ended.

    ``exit_code`` follows the shell's convention: 128 + N when killed by signal N.
    ``killed`` is true when ``kill()`` was called before the command ended on its own;
    ``timed_out`` when the command outlived its timeout and was killed for it.
    """

    exit_code: int
    killed: bool = False
    timed_out: bool = False
    signal: int | None = None


class RunningCommand(Protocol):
    """A command that was started; ``wait()`` once for its result, ``kill()`` at any time."""

    async def wait(self) -> CommandResult:
        """Wait until the command and its output streams have ended."""
        ...

    async def kill(self, grace: float) -> None:
        """Ask the command (all its processes) to stop; force it after ``grace`` seconds."""
        ...


class Transport(Protocol):
    """Starts commands in one place (this host, a cluster's login node...)."""

    async def start(
        self,
        command: str,
        *,
        cwd: PurePath | str,
        env: Mapping[str, str],
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        timeout: float | None = None,
        grace: float = 5.0,
    ) -> RunningCommand:
        """Start ``command`` (a shell command line) in ``cwd`` with ``env`` added."""
        ...
