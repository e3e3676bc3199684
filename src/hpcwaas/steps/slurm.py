"""The ``slurm`` step kind: a batch script rendered from the step's template, submitted by sbatch.

``prepare_slurm_step`` is pure: it returns the files the engine uploads to the execution's
remote directory (the step's script and the wrapper of ``schedulers.slurm_script``), the
command that submits the job and the paths where the job leaves its output and exit code.
Every file of a step is named ``.hpcwaas-<step>.<ext>`` in that directory, next to what the
steps write there.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.model import SlurmStep
from hpcwaas.catalog.render import render_command
from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.slurm_options import SlurmDefaults, SlurmOptions
from hpcwaas.schedulers.slurm_script import batch_script
from hpcwaas.steps.shell import step_context, step_env

__all__ = ["SlurmDefaults", "SlurmSubmission", "prepare_slurm_step", "step_file"]


def step_file(step_name: str, extension: str) -> str:
    """The name of one of a step's files in the execution's directory (``.hpcwaas-<step>.out``)."""
    return f".hpcwaas-{step_name}.{extension}"


@dataclass(frozen=True)
class SlurmSubmission:
    """A rendered ``slurm`` step: files to upload, then one command to run (from the login dir).

    The paths are ``remote_dir`` joined with the file names, as the engine reads them.
    """

    files: dict[str, bytes]
    submit_command: str
    job_name: str
    comment: str
    stdout_path: str
    stderr_path: str
    exit_path: str
    timeout: float | None = None

    def parse(self, exit_code: int, stdout: str, stderr: str) -> str:
        """The job ID from the submit command's result; SubmitError if there is none."""
        return slurm.parse_sbatch(exit_code, stdout, stderr)


def prepare_slurm_step(
    spec: SlurmStep,
    *,
    execution_id: str,
    step_name: str,
    inputs: Mapping[str, Any],
    defaults: SlurmDefaults,
    remote_dir: str,
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
    secrets: Mapping[str, str] | None = None,
    key_store_secrets: Mapping[str, str] | None = None,
    outputs_path: str | None = None,
) -> SlurmSubmission:
    """Render the script and the wrapper; RenderError if a template cannot be rendered.

    ``remote_dir`` is the execution's directory on the cluster: absolute, or relative to the
    directory the submit command runs in (the login directory). The job runs there.
    """
    context = step_context(execution_id, inputs, step_outputs)
    script = render_command(spec.script, context)
    env = step_env(
        spec.env,
        context,
        execution_id=execution_id,
        step_name=step_name,
        secrets=secrets,
        key_store_secrets=key_store_secrets,
        outputs_path=outputs_path,
    )
    given = spec.options
    options = SlurmOptions(
        nodes=given.nodes,
        ntasks=given.ntasks,
        cpus_per_task=given.cpus_per_task,
        mem=None if given.mem is None else str(given.mem),
        time=None if given.time is None else str(given.time),
        partition=given.partition,
        qos=given.qos,
        account=given.account,
        extra=tuple(given.extra),
    ).with_defaults(defaults)
    names = {ext: step_file(step_name, ext) for ext in ("sh", "sbatch", "out", "err", "exit")}
    paths = {ext: posixpath.join(remote_dir, name) for ext, name in names.items()}
    name = slurm.job_name(execution_id, step_name)
    comment = slurm.job_comment(execution_id, step_name)
    wrapper = batch_script(
        names["sh"],  # relative to the job's directory, like the other files
        job_name=name,
        comment=comment,
        options=options,
        workdir=remote_dir,
        stdout_path=names["out"],
        stderr_path=names["err"],
        exit_path=names["exit"],
        env=env,
    )
    # A resubmitted step must not be judged by the exit file of its previous attempt.
    submit = f"rm -f -- {shlex.quote(paths['exit'])} && {slurm.sbatch_command(paths['sbatch'])}"
    if secrets or key_store_secrets:
        # The wrapper exports the secrets: Slurm keeps its own copy of a submitted script, so
        # ours is removed at once, whatever sbatch said (its answer is kept for the parser).
        wrapper_path = shlex.quote(paths["sbatch"])
        submit = f"{submit}; status=$?; rm -f -- {wrapper_path}; exit $status"
    return SlurmSubmission(
        files={paths["sh"]: _utf8(script), paths["sbatch"]: _utf8(wrapper)},
        submit_command=submit,
        job_name=name,
        comment=comment,
        stdout_path=paths["out"],
        stderr_path=paths["err"],
        exit_path=paths["exit"],
        timeout=spec.timeout,
    )


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON "\\ud800" escape
        raise RenderError(
            f"the script holds text that is not valid Unicode: {exc.reason}"
        ) from None
