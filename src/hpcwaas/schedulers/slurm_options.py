"""Slurm resource options of a job: checked values, environment defaults, ``#SBATCH`` directives.

The values end up in ``#SBATCH`` lines, which sbatch parses itself (no shell): a value with
whitespace or quotes would be split or mangled there, so each value must match a strict
pattern instead of being quoted. The ``check_*`` functions return a problem message or None,
for the catalog to report at load time; the dataclasses raise ValueError on the same problems.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

# A partition, QOS or account name; partitions may be a comma-separated list.
_SLURM_NAME = re.compile(r"[A-Za-z0-9_.-]+(?:,[A-Za-z0-9_.-]+)*")
_MEM = re.compile(r"[1-9][0-9]*[KMGT]?")
# minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]]
_TIME = re.compile(r"(?:(\d+)-(\d+)(?::(\d+))?(?::(\d+))?|(\d+)(?::(\d+))?(?::(\d+))?)")
_SBATCH_FLAG = re.compile(r"--([a-z][a-z0-9-]*)(?:=([^\s'\"\\]+))?")

# Flags the wrapper sets itself, or that have their own option: an extra flag may not be
# any of these, nor a prefix of one (sbatch accepts unambiguous abbreviations).
RESERVED_FLAGS: dict[str, str] = {
    "job-name": "the engine names the job",
    "comment": "the engine uses the comment to find the job again",
    "chdir": "the job runs in the execution's directory",
    "output": "the engine reads the job's output from its own file",
    "error": "the engine reads the job's errors from its own file",
    "parsable": "the engine submits with --parsable",
    "wrap": "the step's script is the job",
    "array": "one step is one job",
    "nodes": "use options.nodes",
    "ntasks": "use options.ntasks",
    "cpus-per-task": "use options.cpus_per_task",
    "mem": "use options.mem",
    "time": "use options.time",
    "partition": "use options.partition",
    "qos": "use options.qos",
    "account": "use options.account",
}


def check_slurm_name(value: str) -> str | None:
    """Problem of a partition, QOS or account name, or None."""
    if _SLURM_NAME.fullmatch(value):
        return None
    return f"{value!r} is not a Slurm name (letters, digits, '_', '.', '-'; partitions: a,b)"


def check_mem(value: str) -> str | None:
    """Problem of a memory size such as ``4G`` or ``4000`` (megabytes), or None."""
    if _MEM.fullmatch(value):
        return None
    return f"{value!r} is not a memory size: write a number with an optional unit K, M, G or T"


def check_time(value: str) -> str | None:
    """Problem of a Slurm time limit (``MM``, ``HH:MM:SS``, ``D-HH:MM``...), or None."""
    if _TIME.fullmatch(value) and time_to_minutes(value) > 0:
        return None
    return f"{value!r} is not a time limit: write minutes, HH:MM:SS or D-HH:MM:SS"


def check_sbatch_flag(flag: str) -> str | None:
    """Problem of an extra sbatch flag such as ``--exclusive`` or ``--gres=gpu:2``, or None."""
    match = _SBATCH_FLAG.fullmatch(flag)
    if match is None:
        return (
            f"{flag!r} is not a long sbatch flag: write --name or --name=value, "
            "without spaces, quotes or backslashes"
        )
    name = match.group(1)
    for reserved, reason in RESERVED_FLAGS.items():
        if reserved.startswith(name):
            return f"{flag!r} is not allowed ({reason})"
    return None


def time_to_minutes(value: str) -> int:
    """A Slurm time limit in whole minutes, rounded up; ValueError if it is not one."""
    match = _TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a Slurm time limit")
    days, d_hours, d_minutes, d_seconds, first, second, third = match.groups()
    if days is not None:
        seconds = int(days) * 86400 + int(d_hours) * 3600
        seconds += int(d_minutes or 0) * 60 + int(d_seconds or 0)
    elif third is not None:  # hours:minutes:seconds
        seconds = int(first) * 3600 + int(second) * 60 + int(third)
    elif second is not None:  # minutes:seconds
        seconds = int(first) * 60 + int(second)
    else:  # minutes
        seconds = int(first) * 60
    return math.ceil(seconds / 60)


def _time_text(value: str | int | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)  # an integer is a number of minutes, as sbatch reads it


@dataclass(frozen=True)
class SlurmDefaults:
    """An environment's defaults for what a step leaves out (set by the operator)."""

    partition: str | None = None
    qos: str | None = None
    account: str | None = None
    time: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", _time_text(self.time))
        problems = _name_problems(self.partition, self.qos, self.account)
        if self.time is not None and (problem := check_time(self.time)):
            problems.append(problem)
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class SlurmOptions:
    """The resources of one job, checked; None leaves the choice to Slurm."""

    nodes: int | None = None
    ntasks: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    time: str | None = None
    partition: str | None = None
    qos: str | None = None
    account: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", _time_text(self.time))
        object.__setattr__(self, "extra", tuple(self.extra))
        problems = _name_problems(self.partition, self.qos, self.account)
        for name in ("nodes", "ntasks", "cpus_per_task"):
            number = getattr(self, name)
            if number is not None and (isinstance(number, bool) or number < 1):
                problems.append(f"{name} must be a positive integer, got {number!r}")
        if self.mem is not None and (problem := check_mem(self.mem)):
            problems.append(problem)
        if self.time is not None and (problem := check_time(self.time)):
            problems.append(problem)
        problems.extend(p for flag in self.extra if (p := check_sbatch_flag(flag)))
        if problems:
            raise ValueError("; ".join(problems))

    def with_defaults(self, defaults: SlurmDefaults) -> SlurmOptions:
        """These options, with the environment's defaults where a value is missing."""
        return replace(
            self,
            partition=self.partition or defaults.partition,
            qos=self.qos or defaults.qos,
            account=self.account or defaults.account,
            time=self.time or defaults.time,
        )

    def directives(self) -> list[str]:
        """The sbatch flags these options stand for, in a stable order."""
        flags: list[str] = []
        for name, value in (
            ("nodes", self.nodes),
            ("ntasks", self.ntasks),
            ("cpus-per-task", self.cpus_per_task),
            ("mem", self.mem),
            ("time", self.time),
            ("partition", self.partition),
            ("qos", self.qos),
            ("account", self.account),
        ):
            if value is not None:
                flags.append(f"--{name}={value}")
        flags.extend(self.extra)
        return flags


def _name_problems(partition: str | None, qos: str | None, account: str | None) -> list[str]:
    problems: list[str] = []
    for key, value in (("partition", partition), ("qos", qos), ("account", account)):
        if value is not None and (problem := check_slurm_name(value)):
            problems.append(f"{key}: {problem}")
    return problems
