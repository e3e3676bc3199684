"""PyCOMPSs applications submitted with ``enqueue_compss``: the command, and its answer.

enqueue_compss writes its options and the application's arguments, unquoted, into the batch
script it generates, and the job's shell reads them again on the compute node. Shell quoting on
our side cannot survive that second reading, so every word given to enqueue_compss must be
one that needs no quoting at all (``check_compss_word``): a value with a space, a quote or ``$``
is refused instead of being passed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from hpcwaas.schedulers.errors import SubmitError, excerpt, is_transient

# Exactly the characters shlex.quote leaves alone (ASCII only): safe through any shell.
_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_OPTION = re.compile(r"--([a-z][a-z0-9_]*)(?:=([A-Za-z0-9_@%+=:,./-]+))?")
_MODULE = re.compile(r"[A-Za-z0-9_.+@/-]+")
_SUBMITTED = re.compile(r"Submitted batch job (\d+)")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Options hpcwaas sets from the step's own keys (or must set itself).
RESERVED_OPTIONS: dict[str, str] = {
    "num_nodes": "use the num_nodes key",
    "qos": "use the qos key",
    "exec_time": "use the exec_time key",
    "job_name": "the engine names the job",
    "python_interpreter": "use the python_interpreter key",
    "container_image": "use the container_image key",
    "container_compss_path": "use the container_compss_path key",
    "container_opts": "use the container_opts key",
    "lang": "a pycompss step is a Python application",
}


def check_compss_word(value: str) -> str | None:
    """Problem of a value that enqueue_compss would pass through a shell, or None."""
    if _WORD.fullmatch(value):
        return None
    if not value:
        return "is empty, which enqueue_compss would drop"
    return (
        f"{value[:100]!r} holds characters enqueue_compss cannot pass safely "
        "(only letters, digits and _ @ % + = : , . / - are allowed)"
    )


def check_compss_option(option: str) -> str | None:
    """Problem of an extra enqueue_compss option such as ``--tracing=true``, or None."""
    match = _OPTION.fullmatch(option)
    if match is None:
        return (
            f"{option!r} is not an enqueue_compss option: write --name or --name=value "
            "with letters, digits and _ @ % + = : , . / - only"
        )
    reason = RESERVED_OPTIONS.get(match.group(1))
    return f"{option!r} is not allowed ({reason})" if reason else None


def check_module_name(name: str) -> str | None:
    """Problem of an environment module name such as ``COMPSs/3.3``, or None."""
    return None if _MODULE.fullmatch(name) else f"{name!r} is not a module name"


def enqueue_compss_command(
    app: str,
    arguments: Sequence[str],
    *,
    workdir: str,
    job_name: str,
    stdout_name: str,
    stderr_name: str,
    modules: Sequence[str] = (),
    num_nodes: int | None = None,
    qos: str | None = None,
    exec_time: int | None = None,
    partition: str | None = None,
    account: str | None = None,
    python_interpreter: str = "python3",
    container_image: str | None = None,
    extra_options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    container_compss_path: str | None = None,
    container_opts: str | None = None,
) -> str:
    """``cd <workdir> && module load ... && <variables> enqueue_compss <options> <app> <args>``.

    ValueError when a word cannot reach the application intact (``check_compss_word``).
    Job name, output files, partition and account go through sbatch's input environment
    variables (``SBATCH_JOB_NAME``...), which override the directives of the script
    enqueue_compss generates, whatever its version and the site's configuration; the output
    files are ``stdout_name`` and ``stderr_name`` in ``workdir``. ``env`` reaches the job
    the same way (sbatch exports the submitting environment).
    """
    problems = [p for m in modules if (p := check_module_name(m))]
    problems += [p for o in extra_options if (p := check_compss_option(o))]
    words: dict[str, str | None] = {
        "application": app,
        "job name": job_name,
        "stdout file": stdout_name,
        "stderr file": stderr_name,
        "python interpreter": python_interpreter,
        "container image": container_image,
        "container COMPSs path": container_compss_path,
        "container options": container_opts,
        "qos": qos,
        "partition": partition,
        "account": account,
    }
    words |= {f"argument {i + 1}": argument for i, argument in enumerate(arguments)}
    for what, word in words.items():
        if word is not None and (problem := check_compss_word(word)):
            problems.append(f"{what} {problem}")
    if app.startswith("-"):
        problems.append(f"application {app!r} would be read as an option")
    if "%" in workdir or "\n" in workdir:
        problems.append(f"work directory {workdir!r} would be misread in sbatch's file names")
    for name, number in (("num_nodes", num_nodes), ("exec_time", exec_time)):
        if number is not None and (isinstance(number, bool) or number < 1):
            problems.append(f"{name} must be a positive integer, got {number!r}")
    problems += [f"{n!r} is not a variable name" for n in env or {} if not _ENV.fullmatch(n)]
    if problems:
        raise ValueError("; ".join(problems))
    options = ["--lang=python"]
    for name, value in (
        ("num_nodes", num_nodes),
        ("exec_time", exec_time),
        ("qos", qos),
        ("python_interpreter", python_interpreter),
        ("container_image", container_image),
        ("container_compss_path", container_compss_path),
        ("container_opts", container_opts),
    ):
        if value is not None:
            options.append(f"--{name}={value}")
    options.extend(extra_options)
    given = {option.split("=", 1)[0] for option in extra_options}
    variables = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    variables += [
        f"SBATCH_JOB_NAME={shlex.quote(job_name)}",
        f'SBATCH_OUTPUT="$PWD"/{shlex.quote(stdout_name)}',
        f'SBATCH_ERROR="$PWD"/{shlex.quote(stderr_name)}',
    ]
    if partition and "--queue" not in given:  # the step's own choice wins
        variables.append(f"SBATCH_PARTITION={shlex.quote(partition)}")
    if account and "--project_name" not in given:
        variables.append(f"SBATCH_ACCOUNT={shlex.quote(account)}")
    enqueue = " ".join(shlex.quote(word) for word in ["enqueue_compss", *options, app, *arguments])
    command = [f"cd {shlex.quote(workdir)}"]
    if modules:
        command.append("module load " + " ".join(shlex.quote(m) for m in modules))
    command.append(" ".join([*variables, enqueue]))
    return " && ".join(command)


def parse_enqueue_compss(exit_code: int, stdout: str, stderr: str) -> str:
    """The job ID from sbatch's ``Submitted batch job N`` line; SubmitError otherwise."""
    match = _SUBMITTED.search(stdout) or _SUBMITTED.search(stderr)
    if exit_code == 0 and match:
        return match.group(1)
    if exit_code == 0:
        # A job may exist all the same: the engine looks for it by name before resubmitting.
        raise SubmitError("enqueue_compss printed no job ID", retryable=True)
    line = _error_line(stderr) or _error_line(stdout) or excerpt(stderr) or _last_line(stdout)
    message = f"enqueue_compss failed (exit code {exit_code})" + (f": {line}" if line else "")
    raise SubmitError(message, retryable=is_transient(stderr + stdout))


def _error_line(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower() or "invalid" in line.lower():
            return excerpt(line.replace("sbatch: error: ", ""))
    return ""


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return excerpt(lines[-1]) if lines else ""
