"""Errors of the scheduler layer: what a command's output says went wrong.

    SchedulerError            base; ``retryable`` says whether trying again later may help
     ├── SubmitError          sbatch / enqueue_compss refused or failed to submit a job
     ├── SchedulerUnavailable the scheduler could not be asked (controller down, timeout)
     └── UnexpectedOutput     a command answered something these parsers do not understand

Every message is safe to show to the user whose cluster account ran the command: it holds
at most a short excerpt of the command's own output.
"""

from __future__ import annotations

MAX_EXCERPT = 300


class SchedulerError(Exception):
    """Base of the scheduler errors: a user-safe ``message`` and whether a retry may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class SubmitError(SchedulerError):
    """A job could not be submitted; ``retryable`` is false when the request itself is wrong."""


class SchedulerUnavailable(SchedulerError):
    """The scheduler did not answer (controller unreachable, socket timeout); always retryable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class UnexpectedOutput(SchedulerError):
    """Output these parsers do not understand (truncated, or an unknown format); retryable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


def excerpt(text: str) -> str:
    """The first non-empty line of ``text``, shortened: what an error message may quote."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= MAX_EXCERPT else line[: MAX_EXCERPT - 3] + "..."
    return ""


# Failures that say nothing about the job itself: trying again later may help.
_TRANSIENT = (
    "socket timed out",
    "unable to contact slurm controller",
    "temporarily unable to accept job",
    "resource temporarily unavailable",
    "connection refused",
    "connection reset",
    "zero bytes were transmitted or received",
    "communication connection failure",
    "slurmctld is busy",
    "transport endpoint is not connected",
)


def is_transient(text: str) -> bool:
    """Whether a Slurm error message reports an outage rather than a bad request."""
    lowered = text.lower()
    return any(marker in lowered for marker in _TRANSIENT)


def submit_error(tool: str, exit_code: int, output: str) -> SubmitError:
    """A SubmitError quoting the first line of ``output``, retryable when it is an outage."""
    line = excerpt(output)
    for prefix in (f"{tool}: error: ", "sbatch: error: "):
        line = line.removeprefix(prefix)
    message = f"{tool} failed (exit code {exit_code})" + (f": {line}" if line else "")
    return SubmitError(message, retryable=is_transient(output))
