"""The ``pycompss`` step kind: a PyCOMPSs application submitted with ``enqueue_compss``.

``prepare_pycompss_step`` is pure: it renders the application path and its arguments and
returns the one command that submits the job. enqueue_compss writes its own batch script, so
there is nothing to upload and no exit file: the job's end comes from Slurm (squeue, sacct,
scontrol). Its output goes to ``.hpcwaas-<step>.out`` / ``.err`` in the execution's directory,
like a ``slurm`` step's.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.model import PycompssStep
from hpcwaas.catalog.render import render_command, render_text
from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.pycompss import (
    check_compss_word,
    enqueue_compss_command,
    parse_enqueue_compss,
)
from hpcwaas.schedulers.slurm_options import SlurmDefaults, time_to_minutes
from hpcwaas.steps.shell import step_context, step_env
from hpcwaas.steps.slurm import step_file

__all__ = ["PycompssSubmission", "prepare_pycompss_step"]


@dataclass(frozen=True)
class PycompssSubmission:
    """A rendered ``pycompss`` step: one command to run from the login directory."""

    submit_command: str
    job_name: str
    stdout_path: str
    stderr_path: str
    timeout: float | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # nothing to upload
    exit_path: str | None = None  # enqueue_compss writes the batch script: no exit file

    @property
    def command(self) -> str:
        """The submit command (``cd <dir> && module load ... && enqueue_compss ...``)."""
        return self.submit_command

    def parse(self, exit_code: int, stdout: str, stderr: str) -> str:
        """The job ID from ``Submitted batch job N``; SubmitError if there is none."""
        return parse_enqueue_compss(exit_code, stdout, stderr)


def prepare_pycompss_step(
    spec: PycompssStep,
    *,
    execution_id: str,
    step_name: str,
    inputs: Mapping[str, Any],
    modules: Sequence[str],
    defaults: SlurmDefaults,
    remote_dir: str,
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
    outputs_path: str | None = None,
) -> PycompssSubmission:
    """Render the application and its arguments; RenderError if one cannot be passed safely.

    ``modules`` are the environment's PyCOMPSs modules, loaded before the step's own.
    Each argument renders to one word that must need no shell quoting: enqueue_compss hands
    the words, unquoted, to the shell of the job it generates.
    """
    context = step_context(execution_id, inputs, step_outputs)
    app = render_command(spec.app, context)
    arguments = [render_command(template, context) for template in spec.arguments]
    for what, word in [("app", app), *((f"argument {i + 1}", a) for i, a in enumerate(arguments))]:
        problem = check_compss_word(word)
        if problem is not None:
            raise RenderError(f"{what} {problem}")
    num_nodes, qos, extra_options = _render_options(spec, context)
    # No secrets here: enqueue_compss takes the environment on its command line (load-time check).
    env = step_env(
        spec.env,
        context,
        execution_id=execution_id,
        step_name=step_name,
        outputs_path=outputs_path,
    )
    exec_time = spec.exec_time
    if exec_time is None and defaults.time is not None:
        exec_time = time_to_minutes(str(defaults.time))
    name = slurm.job_name(execution_id, step_name)
    stdout_name, stderr_name = step_file(step_name, "out"), step_file(step_name, "err")
    try:
        command = enqueue_compss_command(
            app,
            arguments,
            workdir=remote_dir,
            job_name=name,
            stdout_name=stdout_name,
            stderr_name=stderr_name,
            modules=list(dict.fromkeys([*modules, *spec.modules])),
            num_nodes=num_nodes,
            qos=qos or defaults.qos,
            exec_time=exec_time,
            partition=defaults.partition,
            account=defaults.account,
            python_interpreter=spec.python_interpreter,
            container_image=spec.container_image,
            container_compss_path=spec.container_compss_path,
            container_opts=spec.container_opts,
            extra_options=extra_options,
            env=env,
        )
    except ValueError as exc:
        raise RenderError(str(exc)) from None
    return PycompssSubmission(
        submit_command=command,
        job_name=name,
        stdout_path=posixpath.join(remote_dir, stdout_name),
        stderr_path=posixpath.join(remote_dir, stderr_name),
        timeout=spec.timeout,
    )


def _render_options(
    spec: PycompssStep, context: dict[str, Any]
) -> tuple[int | None, str | None, list[str]]:
    """num_nodes, qos and extra options, rendered when given as templates.

    A template that renders empty leaves the option out (qos, num_nodes) or adds nothing
    (an extra option); an extra option may render to several, separated by spaces.
    """
    num_nodes: int | None = None
    if isinstance(spec.num_nodes, int):
        num_nodes = spec.num_nodes
    elif spec.num_nodes is not None:
        text = render_text(spec.num_nodes, context).strip()
        if text:
            if not text.isdigit() or int(text) < 1:
                raise RenderError(f"num_nodes must be a positive integer, got {text[:40]!r}")
            num_nodes = int(text)
    qos = render_text(spec.qos, context).strip() or None if spec.qos is not None else None
    extra: list[str] = []
    for option in spec.extra_options:
        extra.extend(render_text(option, context).split())
    return num_nodes, qos, extra
