"""The batch script hpcwaas submits for a ``slurm`` step: a wrapper around the step's own script.

The engine uploads two files to the execution's directory on the cluster: the step's script, as
rendered from its template, and this wrapper. The wrapper carries the ``#SBATCH`` directives,
runs the step's script as a child (``bash <script>``), and writes the child's exit code to an
exit file, atomically (a temporary file, then ``mv``), before exiting with it. The exit file
tells how the job ended on clusters where ``sacct`` is unavailable and after ``scontrol``
has forgotten the job. It is absent when the job was killed (cancelled, timed out): Slurm's
own state says so then.

Relative paths are relative to ``workdir`` (``--chdir``), in the directives and the body alike.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from hpcwaas.schedulers.slurm_options import SlurmOptions

# What a directive value may hold: sbatch splits #SBATCH lines on whitespace and strips quotes
# itself, and expands %j and friends in file names; none of these may appear.
_DIRECTIVE_VALUE = re.compile(r"[A-Za-z0-9_.,:+@=/~-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def batch_script(
    user_script_path: str,
    *,
    job_name: str,
    comment: str,
    options: SlurmOptions,
    workdir: str,
    stdout_path: str,
    stderr_path: str,
    exit_path: str,
    env: Mapping[str, str] | None = None,
) -> str:
    """The wrapper's text; ValueError when a name or path cannot be written in a directive."""
    values = {
        "job name": job_name,
        "comment": comment,
        "work directory": workdir,
        "stdout path": stdout_path,
        "stderr path": stderr_path,
    }
    for what, value in values.items():
        if not _DIRECTIVE_VALUE.fullmatch(value):
            raise ValueError(f"{what} {value!r} cannot be written in an #SBATCH line")
    for name in env or {}:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
    directives = [
        f"--job-name={job_name}",
        f"--comment={comment}",
        f"--chdir={workdir}",
        f"--output={stdout_path}",
        f"--error={stderr_path}",
        *options.directives(),
    ]
    exit_tmp = shlex.quote(exit_path + ".tmp.") + '"${SLURM_JOB_ID:-$$}"'
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {directive}" for directive in directives),
        "",
        "# Written by hpcwaas: runs the step's script, then records its exit code for the engine.",
        *(f"export {name}={shlex.quote(value)}" for name, value in (env or {}).items()),
        f"bash {shlex.quote(user_script_path)}",
        "rc=$?",
        f"printf '%s\\n' \"$rc\" > {exit_tmp} && mv -f -- {exit_tmp} {shlex.quote(exit_path)}",
        'exit "$rc"',
        "",
    ]
    return "\n".join(lines)
