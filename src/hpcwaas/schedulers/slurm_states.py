"""Slurm job states: every name squeue, sacct and scontrol print, and what each means for a step."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Literal

log = logging.getLogger(__name__)

Outcome = Literal["SUCCEEDED", "FAILED", "CANCELLED"]


class JobState(StrEnum):
    """A Slurm job state, as squeue, sacct and scontrol name it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    UNDETERMINED = "UNDETERMINED"

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (it will not run again)."""
        return self in _OUTCOMES

    @property
    def outcome(self) -> Outcome | None:
        """What a terminal state means for the step; None while the job may still run."""
        return _OUTCOMES.get(self)

    @classmethod
    def parse(cls, text: str) -> JobState:
        """The state a Slurm command printed; UNDETERMINED (with a warning) when unknown.

        Accepts long names (``RUNNING``), squeue's short codes (``R``), sacct's
        ``CANCELLED by 1000`` and truncated ``CANCELLED+``; states this enum does not list
        are mapped to the nearest one (``CONFIGURING`` is PENDING, ``STAGE_OUT`` COMPLETING).
        """
        words = text.strip().split()
        word = words[0].rstrip("+").upper() if words else ""
        try:
            return cls(word)
        except ValueError:
            pass
        state = _ALIASES.get(word)
        if state is None:
            log.warning("unknown Slurm job state %r, taken as UNDETERMINED", text[:100])
            return cls.UNDETERMINED
        return state


_OUTCOMES: dict[JobState, Outcome] = {
    JobState.COMPLETED: "SUCCEEDED",
    JobState.CANCELLED: "CANCELLED",
    JobState.FAILED: "FAILED",
    JobState.TIMEOUT: "FAILED",
    JobState.NODE_FAIL: "FAILED",
    JobState.OUT_OF_MEMORY: "FAILED",
    JobState.PREEMPTED: "FAILED",
    JobState.BOOT_FAIL: "FAILED",
    JobState.DEADLINE: "FAILED",
}

# Other states Slurm reports, and squeue's short codes (%t), mapped to the nearest state.
_ALIASES: dict[str, JobState] = {
    "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "SPECIAL_EXIT": JobState.PENDING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.COMPLETING,
    "STOPPED": JobState.SUSPENDED,
    "PD": JobState.PENDING,
    "CF": JobState.PENDING,
    "RQ": JobState.PENDING,
    "RH": JobState.PENDING,
    "RF": JobState.PENDING,
    "RD": JobState.PENDING,
    "SE": JobState.PENDING,
    "R": JobState.RUNNING,
    "RS": JobState.RUNNING,
    "SI": JobState.RUNNING,
    "CG": JobState.COMPLETING,
    "SO": JobState.COMPLETING,
    "S": JobState.SUSPENDED,
    "ST": JobState.SUSPENDED,
    "CD": JobState.COMPLETED,
    "F": JobState.FAILED,
    "CA": JobState.CANCELLED,
    "TO": JobState.TIMEOUT,
    "NF": JobState.NODE_FAIL,
    "OOM": JobState.OUT_OF_MEMORY,
    "PR": JobState.PREEMPTED,
    "BF": JobState.BOOT_FAIL,
    "DL": JobState.DEADLINE,
}
