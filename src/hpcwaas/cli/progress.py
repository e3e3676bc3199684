"""What `-f` shows while it waits: one line on stderr, rewritten in place, on a terminal only.

`waas ... -f` prints the original's lines on stdout; a terminal also gets, on stderr, how
long the execution has been running and which step it is at, so that a quiet wait does not
look like a hang. Pipes and files get nothing of it. On Ctrl-C the line says that only the
following stopped, and how to follow the execution again.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from hpcwaas.cli.output import is_terminal

if TYPE_CHECKING:
    from hpcwaas.api.models import ExecutionPublic

_CLEAR = "\r\x1b[K"  # back to the line's start, erase it


def elapsed(seconds: float) -> str:
    """`1 h 2 min`, `3 min 4 s`, `5 s`."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def waiting_line(execution: ExecutionPublic, now: datetime | None = None) -> str:
    """`RUNNING for 1 min 5 s, step compute (Slurm job 42, queued)`."""
    now = now or datetime.now(UTC)
    since = execution.started_at or execution.created_at
    text = execution.status.value
    if since is not None:
        text += f" for {elapsed((now - since).total_seconds())}"
    steps = []
    for step in execution.steps or []:
        if step.state.value not in ("RUNNING", "UNKNOWN"):
            continue
        if step.job_id:
            queued = ", queued" if step.running_at is None else ""
            steps.append(f"{step.name} (Slurm job {step.job_id}{queued})")
        else:
            steps.append(step.name)
    if steps:
        text += f", step{'s' if len(steps) > 1 else ''} {', '.join(steps)}"
    return text


class Progress:
    """The waiting line on stderr; does nothing unless stderr is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.shown = False
        self.enabled = is_terminal(self._stream)

    def show(self, text: str) -> None:
        """Replace the line with ``text``."""
        if self.enabled:
            self._stream.write(f"{_CLEAR}{text}")
            self._stream.flush()
            self.shown = True

    def clear(self) -> None:
        """Erase the line (before anything else is printed)."""
        if self.shown:
            self._stream.write(_CLEAR)
            self._stream.flush()
            self.shown = False


def interrupted_note(execution_id: str, command: str) -> str:
    """What Ctrl-C during `-f` says: the execution itself goes on."""
    return (
        f"Stopped following. Execution {execution_id} keeps running on the server; "
        f"follow it again with: waas executions {command} -f {execution_id}  "
        f"(or stop it with: waas executions cancel {execution_id})"
    )
