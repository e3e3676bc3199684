"""The ``pycompss`` step kind: a PyCOMPSs application submitted with ``enqueue_compss``.

``PycompssKind`` declares it; ``prepare_pycompss_step`` is pure: it renders the application
path and its arguments and returns the one command that submits the job. enqueue_compss
writes its own batch script, so there is nothing to upload and no exit file: the job's end
comes from Slurm (squeue, sacct, scontrol). Its output goes to ``.hpcwaas-<step>.out`` /
``.err`` in the execution's directory, like a ``slurm`` step's.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from pydantic import Field

from hpcwaas.catalog.errors import RenderError
from hpcwaas.catalog.kinds.base import (
    ClusterDefaults,
    PlannedStep,
    Preparation,
    R,
    StepChecks,
    StepKind,
    StepRuntime,
    StepSettings,
    is_template,
    step_env,
    step_file,
)
from hpcwaas.catalog.kinds.slurm import SLURM_NAME_HINT, dotted
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_command, render_text
from hpcwaas.schedulers import slurm
from hpcwaas.schedulers.pycompss import (
    check_compss_option,
    check_compss_word,
    check_module_name,
    enqueue_compss_command,
    parse_enqueue_compss,
)
from hpcwaas.schedulers.slurm_options import check_slurm_name, time_to_minutes

__all__ = ["PycompssKind", "PycompssStep", "PycompssSubmission", "prepare_pycompss_step"]

_WORD_HINT = (
    "enqueue_compss passes values through a shell unquoted, so only plain words are allowed; "
    "constrain inputs used here with a pattern"
)

# Options given as one word each; any may be a template.
_WORD_OPTIONS = ("python_interpreter", "container_image", "container_compss_path", "container_opts")


class PycompssStep(StepSettings):
    """A PyCOMPSs application submitted with enqueue_compss."""

    kind: Literal["pycompss"]
    app: str
    arguments: list[str] = Field(default_factory=list)
    # a number, or a template rendering to one ("{{ inputs.nodes }}")
    num_nodes: Annotated[int, Field(ge=1)] | str | None = None
    qos: str | None = None  # may be a template
    # minutes: a number, or a template rendering to one
    exec_time: Annotated[int, Field(ge=1)] | str | None = None
    # these four may be templates; each renders to one word
    python_interpreter: str = "python3"
    container_image: str | None = None
    container_compss_path: str | None = None  # where COMPSs lies inside the image
    container_opts: str | None = None  # options of the container engine, e.g. "-e"
    # ["--tracing=true"]; an item renders to the words of its text, each value one word
    # (a value marked | raw is read as several options)
    extra_options: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)  # loaded after the environment's


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
    spec: PycompssStep, request: Preparation, cluster: ClusterDefaults
) -> PycompssSubmission:
    """Render the application and its arguments; RenderError if one cannot be passed safely.

    ``cluster.pycompss_modules`` are the environment's PyCOMPSs modules, loaded before the
    step's own. Each argument renders to one word that must need no shell quoting:
    enqueue_compss hands the words, unquoted, to the shell of the job it generates.
    """
    execution_id, step_name, remote_dir = request.execution_id, request.step_name, request.work_dir
    modules, defaults = cluster.pycompss_modules, cluster.defaults
    context = request.template_context()
    app = render_command(spec.app, context)
    arguments = [render_command(template, context) for template in spec.arguments]
    for what, word in [("app", app), *((f"argument {i + 1}", a) for i, a in enumerate(arguments))]:
        problem = check_compss_word(word)
        if problem is not None:
            raise RenderError(f"{what} {problem}")
    num_nodes, exec_time, qos, extra_options = _render_options(spec, context)
    words: dict[str, str | None] = {}
    for key in _WORD_OPTIONS:
        value = getattr(spec, key)
        words[key] = render_command(value, context) if value and is_template(value) else value
    # No secrets here: enqueue_compss takes the environment on its command line (load-time check).
    env = step_env(spec.env, context, replace(request, secrets=None, workflow_secrets=None))
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
            python_interpreter=words["python_interpreter"] or "python3",
            container_image=words["container_image"] or None,
            container_compss_path=words["container_compss_path"] or None,
            container_opts=words["container_opts"] or None,
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
) -> tuple[int | None, int | None, str | None, list[str]]:
    """num_nodes, exec_time, qos and extra options, rendered when given as templates.

    A template that renders empty leaves the option out (qos, num_nodes, exec_time) or adds
    nothing (an extra option). An extra option's text is rendered with its values quoted,
    then split into words as a shell would: a value stays within its word, never split into
    more options; only a value marked ``| raw`` gives several.
    """
    numbers: list[int | None] = []
    for name, value in (("num_nodes", spec.num_nodes), ("exec_time", spec.exec_time)):
        number: int | None = value if isinstance(value, int) else None
        if isinstance(value, str):
            text = render_text(value, context).strip()
            if text:
                if not text.isdigit() or int(text) < 1:
                    raise RenderError(f"{name} must be a positive integer, got {text[:40]!r}")
                number = int(text)
        numbers.append(number)
    qos = render_text(spec.qos, context).strip() or None if spec.qos is not None else None
    extra: list[str] = []
    for option in spec.extra_options:
        try:
            words = shlex.split(render_command(option, context))
        except ValueError as exc:
            raise RenderError(f"extra option {option[:60]!r} cannot be split: {exc}") from None
        extra.extend(word for word in words if word)
    return numbers[0], numbers[1], qos, extra


class PycompssKind(StepKind[PycompssStep, PycompssSubmission]):
    """Steps that are PyCOMPSs applications, on a Slurm environment only."""

    name = "pycompss"
    settings = PycompssStep
    needs_cluster = True
    # enqueue_compss takes the environment on its command line: no secrets there
    secrets_in_env = False
    reattaches = True

    def check(self, step: PycompssStep, checks: StepChecks) -> list[Problem]:
        """Values enqueue_compss passes through a shell unquoted must be plain words."""
        templates: list[tuple[tuple[str | int, ...], str]] = [(("app",), step.app)]
        templates += [(("arguments", i), a) for i, a in enumerate(step.arguments)]
        problems = checks.templates(templates)
        problems += checks.templates(_option_templates(step))
        return problems + _options_problems(step, checks, templates)

    def prepare(self, step: PycompssStep, request: Preparation) -> PycompssSubmission:
        """The enqueue_compss command, with the environment's defaults and modules."""
        assert request.cluster is not None  # a kind that needs_cluster is prepared on one only
        return prepare_pycompss_step(step, request, request.cluster)

    def plan(self, step: PycompssStep, request: Preparation) -> PlannedStep:
        """The enqueue_compss command (it writes the batch script itself)."""
        return PlannedStep(command=self.prepare(step, request).submit_command)

    def run(self, runtime: StepRuntime[R], name: str, step: PycompssStep, *, resumed: bool) -> R:
        """A batch job; after a restart, the job submitted before is followed again."""
        return runtime.batch_job(self, name, step, resumed=resumed)


def _options_problems(
    step: PycompssStep, checks: StepChecks, templates: Sequence[tuple[tuple[str | int, ...], str]]
) -> list[Problem]:
    found: list[tuple[tuple[str | int, ...], str | None, str]] = []
    for key, template in templates:
        if "{" not in template:  # a literal: its value is known now
            found.append((key, check_compss_word(template), _WORD_HINT))
    if step.qos is not None and not is_template(step.qos):
        found.append((("qos",), check_slurm_name(step.qos), SLURM_NAME_HINT))
    for name in ("num_nodes", "exec_time"):
        number = getattr(step, name)
        if isinstance(number, str) and not is_template(number):
            found.append(((name,), "must be a number or a template", f"e.g. {name}: 2"))
    for option in _WORD_OPTIONS:
        value = getattr(step, option)
        if value is not None and not is_template(value):
            found.append(((option,), check_compss_word(value), _WORD_HINT))
    for index, option in enumerate(step.extra_options):
        if is_template(option):  # checked once rendered, at submission
            continue
        option_hint = "e.g. extra_options: [--tracing=true, --log_level=debug]"
        found.append((("extra_options", index), check_compss_option(option), option_hint))
    for index, module in enumerate(step.modules):
        found.append((("modules", index), check_module_name(module), "e.g. modules: [COMPSs/3.3]"))
    return [
        checks.problem(key, f"{dotted(key)}: {message}", hint)
        for key, message, hint in found
        if message is not None
    ]


def _option_templates(step: PycompssStep) -> list[tuple[tuple[str | int, ...], str]]:
    """The enqueue_compss options given as templates (rendered at submission)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for name in ("num_nodes", "exec_time"):
        if isinstance(getattr(step, name), str):
            found.append(((name,), getattr(step, name)))
    for name in ("qos", *_WORD_OPTIONS):
        value = getattr(step, name)
        if value is not None and is_template(value):
            found.append(((name,), value))
    found += [
        (("extra_options", i), option)
        for i, option in enumerate(step.extra_options)
        if is_template(option)
    ]
    return found
