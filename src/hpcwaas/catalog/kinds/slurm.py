"""The ``slurm`` step kind: a batch script rendered from the step's template, submitted by sbatch.

``SlurmKind`` declares it; ``prepare_slurm_step`` is pure: it returns the files the engine
uploads to the execution's remote directory (the step's script and the wrapper of
``schedulers.slurm_script``), the command that submits the job and the paths where the job
leaves its output and exit code.
Every file of a step is named ``.hpcwaas-<step>.<ext>`` in that directory, next to what the
steps write there.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import (
    PlannedStep,
    Preparation,
    R,
    StepChecks,
    StepKind,
    StepRuntime,
    StepSettings,
    step_env,
    step_file,
)
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_command
from hpcwaas.catalog.spec import Spec
from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.slurm_options import (
    SlurmDefaults,
    SlurmOptions,
    check_mem,
    check_sbatch_flag,
    check_slurm_name,
    check_time,
)
from hpcwaas.schedulers.slurm_script import batch_script

__all__ = ["SlurmDefaults", "SlurmKind", "SlurmStep", "SlurmSubmission", "prepare_slurm_step"]

SLURM_NAME_HINT = "write the name as Slurm knows it, e.g. partition: batch"


class SlurmOptionsSpec(Spec):
    """Resources of a Slurm job; what is left out comes from the environment, then Slurm."""

    nodes: int | None = Field(default=None, ge=1)
    ntasks: int | None = Field(default=None, ge=1)
    cpus_per_task: int | None = Field(default=None, ge=1)
    mem: str | int | None = None  # "4G"; a bare number is megabytes
    time: str | int | None = None  # "HH:MM:SS", "D-HH:MM:SS"...; a bare number is minutes
    partition: str | None = None
    qos: str | None = None
    account: str | None = None
    extra: list[str] = Field(default_factory=list)  # more sbatch flags: ["--exclusive"]


class SlurmStep(StepSettings):
    """A batch job: ``script`` rendered from a template, submitted with ``options``."""

    kind: Literal["slurm"]
    script: str
    options: SlurmOptionsSpec = Field(default_factory=SlurmOptionsSpec)


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


class SlurmKind(StepKind[SlurmStep, SlurmSubmission]):
    """Steps that are batch scripts submitted with sbatch, on a Slurm environment only."""

    name = "slurm"
    settings = SlurmStep
    needs_cluster = True
    reattaches = True

    def check(self, step: SlurmStep, checks: StepChecks) -> list[Problem]:
        """The script is read by a shell; the options must be what sbatch accepts."""
        problems = checks.templates([(("script",), step.script)], in_shell=True)
        return problems + _options_problems(step.options, checks)

    def prepare(self, step: SlurmStep, request: Preparation) -> SlurmSubmission:
        """The script and its wrapper, with the environment's defaults."""
        assert request.cluster is not None  # a kind that needs_cluster is prepared on one only
        return prepare_slurm_step(step, request, request.cluster.defaults)

    def plan(self, step: SlurmStep, request: Preparation) -> PlannedStep:
        """The submit command, the step's script and the sbatch wrapper that runs it."""
        submission = self.prepare(step, request)
        files = {path.rsplit("/", 1)[-1]: data for path, data in submission.files.items()}
        return PlannedStep(
            command=submission.submit_command,
            script=files[step_file(request.step_name, "sh")].decode("utf-8"),
            batch_script=files[step_file(request.step_name, "sbatch")].decode("utf-8"),
        )

    def run(self, runtime: StepRuntime[R], name: str, step: SlurmStep, *, resumed: bool) -> R:
        """A batch job; after a restart, the job submitted before is followed again."""
        return runtime.batch_job(self, name, step, resumed=resumed)


def _options_problems(options: SlurmOptionsSpec, checks: StepChecks) -> list[Problem]:
    found: list[tuple[tuple[str | int, ...], str | None, str]] = []
    for key in ("partition", "qos", "account"):
        value = getattr(options, key)
        if value is not None:
            found.append(((key,), check_slurm_name(value), SLURM_NAME_HINT))
    if options.mem is not None:
        found.append((("mem",), check_mem(str(options.mem)), "e.g. mem: 4G"))
    if options.time is not None:
        time_hint = "e.g. time: 01:30:00, or time: 90 (minutes)"
        found.append((("time",), check_time(str(options.time)), time_hint))
    for index, flag in enumerate(options.extra):
        flag_hint = "e.g. extra: [--exclusive, --gres=gpu:2]"
        found.append((("extra", index), check_sbatch_flag(flag), flag_hint))
    return [
        checks.problem(("options", *key), f"options.{dotted(key)}: {message}", hint)
        for key, message, hint in found
        if message is not None
    ]


def dotted(key: tuple[str | int, ...]) -> str:
    """A key path as written in messages: ``extra[0]``, ``options.mem``."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def prepare_slurm_step(
    spec: SlurmStep, request: Preparation, defaults: SlurmDefaults
) -> SlurmSubmission:
    """Render the script and the wrapper; RenderError if a template cannot be rendered.

    ``request.work_dir`` is the execution's directory on the cluster: absolute, or relative
    to the directory the submit command runs in (the login directory). The job runs there.
    """
    execution_id, step_name, remote_dir = request.execution_id, request.step_name, request.work_dir
    context = request.template_context()
    script = render_command(spec.script, context)
    env = step_env(spec.env, context, request)
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
    sbatch = slurm.sbatch_command(
        paths["sbatch"], after=request.after_jobs, kill_on_fail=request.cancel_on_failed_need
    )
    submit = f"rm -f -- {shlex.quote(paths['exit'])} && {sbatch}"
    if request.secrets or request.workflow_secrets:
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
