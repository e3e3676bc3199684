"""What Slurm's accounting (``sacct``) kept of one ended job: state, exit code, elapsed time,
CPU time and the largest resident set size of its steps.

sacct answers only where the cluster has an accounting database (slurmdbd); elsewhere, or
before slurmdbd has recorded the job's end, ``parse_accounting`` returns None.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass
from typing import Any

from hpcwaas.schedulers.slurm_states import JobState

_JOB_ID = re.compile(r"[0-9]+(?:_[0-9]+)?")
# TotalCPU: [D-][HH:]MM:SS[.mmm]
_CPU_TIME = re.compile(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
FIELDS = "JobID,State,ExitCode,ElapsedRaw,TotalCPU,MaxRSS"


@dataclass(frozen=True)
class Accounting:
    """A job's accounting, as the API shows it (api/models.py SlurmAccounting)."""

    state: str
    exit_code: int | None
    elapsed_seconds: int | None
    cpu_seconds: float | None
    max_rss_bytes: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def accounting_command(job_id: str) -> str:
    """sacct's lines for the job's allocation and its steps (sizes in KiB)."""
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"{job_id!r} is not a Slurm job ID")
    return f"sacct --noheader --parsable2 --units=K --jobs={shlex.quote(job_id)} --format={FIELDS}"


def parse_accounting(job_id: str, exit_code: int, stdout: str) -> Accounting | None:
    """The job's accounting once sacct has its end; None while it has not (or cannot)."""
    if exit_code != 0:
        return None
    allocation: list[str] | None = None
    rss: list[int] = []
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6:
            continue
        if parts[0] == job_id:
            allocation = parts
        if parts[0] == job_id or parts[0].startswith(f"{job_id}."):
            size = _bytes(parts[5])
            if size is not None:
                rss.append(size)
    if allocation is None or not JobState.parse(allocation[1]).terminal:
        return None
    code = re.fullmatch(r"(\d+):\d+", allocation[2])
    elapsed = allocation[3]
    return Accounting(
        state=allocation[1].split()[0],
        exit_code=int(code.group(1)) if code else None,
        elapsed_seconds=int(elapsed) if elapsed.isdigit() else None,
        cpu_seconds=_seconds(allocation[4]),
        max_rss_bytes=max(rss) if rss else None,
    )


def _seconds(text: str) -> float | None:
    match = _CPU_TIME.fullmatch(text.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def _bytes(text: str) -> int | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS.get(match.group(2), 1))
