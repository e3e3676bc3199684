"""Slurm as pairs of pure builders and parsers: commands as text, results from (exit code, stdout,
stderr). Nothing here runs anything; a transport runs the commands (PSI/J, AiiDA).

Every value in a command is ``shlex.quote``d. Status comes from one ``squeue`` per cluster account
(``squeue_command``); a job that left the queue is looked up with ``sacct`` when accounting
exists, else ``scontrol show job`` (kept ``MinJobAge`` seconds), else the exit file the wrapper
of ``slurm_script.batch_script`` leaves (``remote_files``).
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from hpcwaas.schedulers.errors import (
    SchedulerError,
    SchedulerUnavailable,
    SubmitError,
    UnexpectedOutput,
    excerpt,
    is_transient,
    submit_error,
)
from hpcwaas.schedulers.remote_files import (
    exit_file_command,
    parse_exit_files,
    parse_read_chunks,
    read_chunks_command,
)
from hpcwaas.schedulers.slurm_options import SlurmDefaults, SlurmOptions
from hpcwaas.schedulers.slurm_script import batch_script
from hpcwaas.schedulers.slurm_states import JobState, Outcome

__all__ = [
    "FinalState",
    "FoundJob",
    "FoundJobs",
    "JobState",
    "Outcome",
    "QueueEntry",
    "SchedulerError",
    "SchedulerUnavailable",
    "SlurmDefaults",
    "SlurmOptions",
    "SubmitError",
    "UnexpectedOutput",
    "batch_script",
    "dependency",
    "exit_file_command",
    "find_jobs_command",
    "is_transient",
    "job_comment",
    "job_name",
    "parse_exit_files",
    "parse_find_jobs",
    "parse_read_chunks",
    "parse_sacct",
    "parse_sbatch",
    "parse_scancel",
    "parse_scontrol",
    "parse_squeue",
    "read_chunks_command",
    "sacct_command",
    "sbatch_command",
    "scancel_command",
    "scontrol_command",
    "squeue_command",
    "submit_error",
    "update_dependency_command",
]

log = logging.getLogger(__name__)

MAX_JOB_NAME = 64
JOB_NAME_PREFIX = "hw"
COMMENT_PREFIX = "hpcwaas"
# Separates squeue fields; job names and comments are free text, so it must be unlikely.
FIELD_SEPARATOR = "|^|"
_JOB_ID = re.compile(r"[0-9]+(?:_[0-9]+)?")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_ID_PART = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class QueueEntry:
    """One job as squeue shows it."""

    state: JobState
    reason: str
    name: str
    comment: str


@dataclass(frozen=True)
class FinalState:
    """A job's state and exit code as sacct or scontrol report them (check ``state.terminal``).

    ``exit_code`` is the batch script's exit code; ``signal`` the signal that killed it, if any.
    """

    state: JobState
    exit_code: int | None
    signal: int | None = None


# --- names -----------------------------------------------------------------------------------


def job_name(execution_id: str, step: str) -> str:
    """``hw-<first 8 characters of the execution ID>-<step>``: at most 64 safe characters."""
    name = f"{JOB_NAME_PREFIX}-{execution_id[:8]}-{step}"
    return _NAME_UNSAFE.sub("_", name)[:MAX_JOB_NAME]


def job_comment(execution_id: str, step: str) -> str:
    """``hpcwaas:<execution ID>:<step>``, the job's identity when the engine looks for it again."""
    for part in (execution_id, step):
        if not _ID_PART.fullmatch(part):
            raise ValueError(f"{part!r} cannot be part of a job comment")
    return f"{COMMENT_PREFIX}:{execution_id}:{step}"


def _job_ids(job_ids: Iterable[str]) -> list[str]:
    ids = list(job_ids)
    for job_id in ids:
        if not _JOB_ID.fullmatch(job_id):
            raise ValueError(f"{job_id!r} is not a Slurm job ID")
    if not ids:
        raise ValueError("no job ID given")
    return ids


# --- sbatch ----------------------------------------------------------------------------------


def sbatch_command(
    wrapper_path: str, *, after: Iterable[str] = (), kill_on_fail: bool = True
) -> str:
    """Submit a batch script; the job ID comes back alone (``--parsable``).

    ``after``: jobs that must succeed first (``--dependency=afterok``); with ``kill_on_fail``
    Slurm cancels the job at once if one of them fails (``--kill-on-invalid-dep=yes``),
    else it stays pending until its dependency is changed (``update_dependency_command``).
    """
    flags = ""
    ids = list(after)
    if ids:
        kill = "yes" if kill_on_fail else "no"
        flags = f"--dependency={dependency(ids)} --kill-on-invalid-dep={kill} "
    return f"sbatch --parsable {flags}{shlex.quote(wrapper_path)}"


def dependency(after: Iterable[str]) -> str:
    """``afterok:<id>:<id>...``: start once every one of these jobs succeeded."""
    return "afterok:" + ":".join(_job_ids(after))


def update_dependency_command(job_id: str, after: Iterable[str]) -> str:
    """Point a pending job at other jobs to wait for (a need's job was submitted again)."""
    (checked,) = _job_ids([job_id])
    return f"scontrol update JobId={checked} Dependency={dependency(after)}"


def parse_sbatch(exit_code: int, stdout: str, stderr: str) -> str:
    """The job ID sbatch printed (``123`` or ``123;cluster``); SubmitError otherwise."""
    if exit_code == 0:
        for line in stdout.splitlines():
            job_id = line.strip().split(";", 1)[0]
            if _JOB_ID.fullmatch(job_id):
                return job_id
        # A job may exist all the same: the engine looks for it before submitting again.
        raise SubmitError(
            f"sbatch printed no job ID: {excerpt(stdout) or excerpt(stderr) or '(nothing)'}",
            retryable=True,
        )
    raise submit_error("sbatch", exit_code, stderr or stdout)


# --- squeue ----------------------------------------------------------------------------------

_SQUEUE_FIELDS = ("%i", "%T", "%r", "%j", "%k")


def squeue_command(login: str) -> str:
    """Every job of one cluster account, finished ones included while Slurm keeps them."""
    fmt = FIELD_SEPARATOR.join(_SQUEUE_FIELDS)
    return f"squeue --noheader --states=all --user={shlex.quote(login)} --format={shlex.quote(fmt)}"


def parse_squeue(exit_code: int, stdout: str, stderr: str) -> dict[str, QueueEntry]:
    """Jobs by ID; SchedulerUnavailable when squeue failed (never "no jobs")."""
    if exit_code != 0 or _squeue_error(stderr):
        raise SchedulerUnavailable(f"squeue failed (exit code {exit_code}): {excerpt(stderr)}")
    jobs: dict[str, QueueEntry] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        # The comment comes last, so a separator inside it stays in it.
        parts = line.split(FIELD_SEPARATOR, len(_SQUEUE_FIELDS) - 1)
        if len(parts) != len(_SQUEUE_FIELDS) or not _JOB_ID.fullmatch(parts[0].strip()):
            log.warning("squeue line not understood, skipped: %r", line[:200])
            continue
        job_id, state, reason, name, comment = (p.strip() for p in parts)
        jobs[job_id] = QueueEntry(JobState.parse(state), reason, name, _null(comment))
    return jobs


def _squeue_error(stderr: str) -> bool:
    # squeue exits 0 after some errors ("squeue: error: Invalid user: x"), printing no job:
    # taking that for an empty queue would make every job look gone.
    return "error" in stderr.lower()


def _null(value: str) -> str:
    return "" if value == "(null)" else value


# --- sacct -----------------------------------------------------------------------------------


def sacct_command(job_ids: Iterable[str]) -> str:
    """State and exit code of these jobs from accounting (one line per job allocation)."""
    ids = ",".join(_job_ids(job_ids))
    return (
        "sacct --noheader --parsable2 --allocations "
        f"--jobs={shlex.quote(ids)} --format=JobID,State,ExitCode"
    )


def parse_sacct(exit_code: int, stdout: str, stderr: str) -> dict[str, FinalState] | None:
    """States by job ID; None when sacct cannot answer (no accounting storage, or it failed)."""
    if exit_code != 0 or "accounting storage is disabled" in stderr.lower():
        return None
    states: dict[str, FinalState] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not _JOB_ID.fullmatch(parts[0]):
            if line.strip():
                log.warning("sacct line not understood, skipped: %r", line[:200])
            continue
        exit_status, signal = _exit_code(parts[2])
        states[parts[0]] = FinalState(JobState.parse(parts[1]), exit_status, signal)
    return states


def _exit_code(text: str) -> tuple[int | None, int | None]:
    """``N:M`` (exit code N, signal M) as (N, M or None)."""
    match = re.fullmatch(r"(\d+):(\d+)", text.strip())
    if match is None:
        return None, None
    signal = int(match.group(2))
    return int(match.group(1)), signal or None


# --- scontrol --------------------------------------------------------------------------------


def scontrol_command(job_id: str) -> str:
    """One job as the controller still knows it (for MinJobAge seconds after its end)."""
    (checked,) = _job_ids([job_id])
    return f"scontrol show job {shlex.quote(checked)}"


def parse_scontrol(exit_code: int, stdout: str, stderr: str) -> FinalState | None:
    """The job's state and exit code; None when the controller no longer knows the job."""
    if "invalid job id specified" in (stderr + stdout).lower():
        return None
    if exit_code != 0:
        raise SchedulerUnavailable(
            f"scontrol failed (exit code {exit_code}): {excerpt(stderr or stdout)}"
        )
    # The first occurrences: JobState and ExitCode come before free-text fields (Comment...).
    state = re.search(r"(?:^|\s)JobState=(\S+)", stdout)
    if state is None:
        raise UnexpectedOutput(f"scontrol printed no JobState: {excerpt(stdout)}")
    code = re.search(r"(?:^|\s)ExitCode=(\d+:\d+)", stdout)
    exit_status, signal = _exit_code(code.group(1)) if code else (None, None)
    return FinalState(JobState.parse(state.group(1)), exit_status, signal)


# --- scancel ---------------------------------------------------------------------------------


def scancel_command(job_ids: Iterable[str]) -> str:
    """Cancel these jobs (a job that already ended is not an error, see ``parse_scancel``)."""
    return "scancel " + " ".join(shlex.quote(job_id) for job_id in _job_ids(job_ids))


def parse_scancel(exit_code: int, stdout: str, stderr: str) -> None:
    """Raise SchedulerUnavailable unless every job is cancelled, ending or already gone."""
    if exit_code == 0:
        return
    harmless = ("already completing or completed", "invalid job id specified")
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines and all(any(h in line.lower() for h in harmless) for line in lines):
        return
    raise SchedulerUnavailable(f"scancel failed (exit code {exit_code}): {excerpt(stderr)}")


# --- finding a step's job again after a crash ------------------------------------------------

_FIND_MARK = "#hpcwaas-find"
RECOVERY_DAYS = 14


@dataclass(frozen=True)
class FoundJob:
    """A job that may belong to the execution, as squeue or sacct shows it."""

    job_id: str
    name: str
    comment: str
    state: JobState


@dataclass(frozen=True)
class FoundJobs:
    """The jobs of one execution, in submission order.

    ``complete`` is false when sacct could not be asked: a job that ended more than MinJobAge
    seconds ago is then invisible, and the caller decides whether to submit again (the
    wrapper's exit file of a ``slurm`` step tells whether its job ran).
    """

    execution_id: str
    jobs: tuple[FoundJob, ...]
    complete: bool

    def for_step(self, step: str) -> list[FoundJob]:
        """The jobs submitted for ``step``: by comment, or by name when a job has no comment."""
        comment = job_comment(self.execution_id, step)
        name = job_name(self.execution_id, step)
        return [
            job
            for job in self.jobs
            if job.comment == comment or (not job.comment and job.name == name)
        ]

    def latest(self, step: str) -> FoundJob | None:
        """The last job submitted for ``step``, if any."""
        found = self.for_step(step)
        return found[-1] if found else None


def find_jobs_command(login: str, *, days: int = RECOVERY_DAYS) -> str:
    """The account's jobs from squeue (with comments) and sacct (last ``days`` days), at once."""
    fmt = shlex.quote(FIELD_SEPARATOR.join(_SQUEUE_FIELDS))
    user = shlex.quote(login)
    squeue = f"squeue --noheader --states=all --user={user} --format={fmt}"
    sacct = (
        f"sacct --noheader --parsable2 --allocations --user={user} "
        f"--starttime=now-{int(days)}days --format=JobID,State,JobName"
    )
    mark = _FIND_MARK
    return (
        f"{squeue}; printf '\\n{mark} squeue %s\\n' \"$?\"; "
        f"{sacct} 2>/dev/null; printf '\\n{mark} sacct %s\\n' \"$?\""
    )


def parse_find_jobs(exit_code: int, stdout: str, stderr: str, *, execution_id: str) -> FoundJobs:
    """The jobs of ``execution_id``: by comment (slurm steps) or by job name (pycompss steps).

    SchedulerUnavailable when squeue did not answer: then nobody can tell whether a job exists.
    """
    sections = _sections(stdout)
    squeue = sections.get("squeue")
    if squeue is None or squeue[0] != 0 or _squeue_error(stderr):
        status = "no answer" if squeue is None else f"exit code {squeue[0]}"
        raise SchedulerUnavailable(f"squeue failed ({status}): {excerpt(stderr)}")
    comment_prefix = f"{COMMENT_PREFIX}:{execution_id}:"
    name_prefix = job_name(execution_id, "")
    found: dict[str, FoundJob] = {}
    sacct_exit, sacct_lines = sections.get("sacct", (1, []))
    if sacct_exit == 0:
        for line in sacct_lines:
            parts = line.split("|")
            if len(parts) == 3 and _JOB_ID.fullmatch(parts[0]) and parts[2].startswith(name_prefix):
                found[parts[0]] = FoundJob(parts[0], parts[2], "", JobState.parse(parts[1]))
    # squeue after sacct: its state is the fresher one, and it knows the comment.
    for job_id, entry in parse_squeue(0, "\n".join(squeue[1]), "").items():
        if entry.comment.startswith(comment_prefix) or (
            not entry.comment and entry.name.startswith(name_prefix)
        ):
            found[job_id] = FoundJob(job_id, entry.name, entry.comment, entry.state)
        else:
            found.pop(job_id, None)  # another execution's job whose name starts alike
    jobs = sorted(found.values(), key=lambda job: [int(p) for p in job.job_id.split("_")])
    return FoundJobs(execution_id, tuple(jobs), complete=sacct_exit == 0)


def _sections(stdout: str) -> dict[str, tuple[int, list[str]]]:
    """Lines of each part of ``find_jobs_command``'s output, with that part's exit code."""
    sections: dict[str, tuple[int, list[str]]] = {}
    lines: list[str] = []
    for line in stdout.splitlines():
        if line.startswith(_FIND_MARK + " "):
            parts = line.split()
            if len(parts) == 3 and parts[2].isdigit():
                sections[parts[1]] = (int(parts[2]), lines)
            lines = []
        elif line.strip():
            lines.append(line.strip())
    return sections
