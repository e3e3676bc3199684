"""What a step kind declares: its settings, checks, pure preparation, dry-run view and run.

A kind is one module defining a ``StepKind`` and its settings model (a ``StepSettings`` with
``kind: Literal["<name>"]``), listed once in ``catalog.kinds.KINDS``. The workflow format, its
JSON Schema, the load-time checks and the dry run follow from that declaration. The engine runs
a kind through the ``StepRuntime`` it implements, so nothing here does I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import Field

from hpcwaas.catalog.problem import TEMPLATE_HINT, Problem
from hpcwaas.catalog.render import check_template, render_env
from hpcwaas.catalog.shell_quoting import misplaced_expressions
from hpcwaas.catalog.spec import NAME_PATTERN, Spec
from hpcwaas.schedulers.slurm_options import SlurmDefaults

if TYPE_CHECKING:
    from hpcwaas.catalog.kinds.transfers import StageInPlan, StageOutPlan
    from hpcwaas.catalog.model import WorkflowSpec
    from hpcwaas.catalog.yamlfile import Location


class StepSettings(Spec):
    """What every step has, whatever its kind."""

    if TYPE_CHECKING:  # each kind's model declares it as a Literal: the union's discriminator
        kind: str
    needs: list[str] = Field(default_factory=list)
    """Steps that must succeed before this one starts."""
    description: str | None = None
    """What the step does."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables of the step's process (templates, not shell-quoted); the only
    place where secret inputs may be used."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds one attempt may run before it is killed (a job: scancelled) and fails."""
    retries: int = Field(default=0, ge=0, le=100)
    """Extra attempts after a failure (0: none)."""
    retry_delay: float = Field(default=10, ge=0)
    """Seconds between a failed attempt and the next."""
    environment: str | None = Field(default=None, pattern=NAME_PATTERN)
    """The environment (configured ID) the step runs on, under the execution's account there;
    default: the environment of the workflow ID."""
    outputs: list[str] = Field(default_factory=list)
    """Names of values the step writes as `name=value` lines to the file `$HPCWAAS_OUTPUTS`;
    later steps read them as `{{ steps.<step>.outputs.<name> }}`."""


S = TypeVar("S", bound=StepSettings)
P_co = TypeVar("P_co", covariant=True)
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

# The variable that names the file where a step writes its outputs (``name=value`` lines).
OUTPUTS_VARIABLE = "HPCWAAS_OUTPUTS"


def step_file(step_name: str, extension: str) -> str:
    """The name of one of a step's files in the execution's directory (``.hpcwaas-<step>.out``)."""
    return f".hpcwaas-{step_name}.{extension}"


def outputs_file(step_name: str) -> str:
    """The name of the file where a step writes its outputs, in the execution's directory."""
    return step_file(step_name, "outputs")


@dataclass(frozen=True)
class ClusterDefaults:
    """What a Slurm environment adds to the steps that run on it."""

    defaults: SlurmDefaults
    pycompss_modules: tuple[str, ...] = ()  # loaded before a pycompss step's own


@dataclass(frozen=True)
class ClusterAccess:
    """The execution's cluster account, for a remote service that reaches it by itself."""

    host: str
    port: int
    login: str  # the cluster login
    key_id: str  # the SSH key ID: the key store holds its private half (``vault_id``)


@dataclass(frozen=True)
class Preparation:
    """What preparing one step needs besides its settings: the run's values and its place."""

    execution_id: str
    step_name: str
    inputs: Mapping[str, Any]
    step_outputs: Mapping[str, Mapping[str, str]] | None = None  # of the steps that succeeded
    secrets: Mapping[str, str] | None = None  # the secret inputs' values
    workflow_secrets: Mapping[str, str] | None = None  # the workflow's secrets: by name
    outputs_path: str | None = None  # where the step writes its outputs, when it declares some
    work_dir: str = ""  # the execution's directory, as the step's host sees it
    cluster: ClusterDefaults | None = None  # None on a local environment
    limits: Mapping[str, Any] = field(default_factory=dict)  # the service's ``limits:``
    # A job submitted ahead: the jobs of its needs it waits for (Slurm ``afterok``), and
    # whether Slurm cancels it when one of them fails (no: a need may be tried again).
    after_jobs: tuple[str, ...] = ()
    cancel_on_failed_need: bool = True
    access: ClusterAccess | None = None  # on a cluster environment, for remote services
    # the step outputs of the application's deployment, by deployment step (if it has one)
    deployment_outputs: Mapping[str, Mapping[str, str]] | None = None

    def template_context(self) -> dict[str, Any]:
        """The values the step's templates may use now (``step_context``, and the deployment's)."""
        context = step_context(self.execution_id, self.inputs, self.step_outputs)
        if self.deployment_outputs is not None:
            outputs = {name: dict(values) for name, values in self.deployment_outputs.items()}
            context["deployment"] = {"outputs": outputs}
        return context


def step_context(
    execution_id: str,
    inputs: Mapping[str, Any],
    step_outputs: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The values a step template may use; ``step_outputs``: what finished steps wrote."""
    steps = {name: {"outputs": dict(values)} for name, values in (step_outputs or {}).items()}
    return {"inputs": dict(inputs), "execution": {"id": execution_id}, "steps": steps}


def step_env(
    templates: Mapping[str, str], context: dict[str, Any], request: Preparation
) -> dict[str, str]:
    """A step's environment: its ``env:`` rendered (secrets in clear here only), then ours.

    The secret inputs' values read as ``{{ inputs.<name> }}``, the workflow secrets as
    ``{{ secrets.<name> }}``.
    """
    if request.secrets:
        context = {**context, "inputs": {**context["inputs"], **request.secrets}}
    context = {**context, "secrets": dict(request.workflow_secrets or {})}
    env = render_env(dict(templates), context)
    # Set last, so that a step's env cannot pass itself off as another execution or step.
    env["HPCWAAS_EXECUTION_ID"] = request.execution_id
    env["HPCWAAS_STEP"] = request.step_name
    if request.outputs_path is not None:
        env[OUTPUTS_VARIABLE] = request.outputs_path
    return env


@dataclass(frozen=True)
class CommandInvocation:
    """A command line with its environment, ready for the place's transport."""

    command: str
    env: dict[str, str]
    timeout: float | None


class JobSubmission(Protocol):
    """A rendered batch job: files to upload, then one command that submits it."""

    @property
    def files(self) -> dict[str, bytes]: ...

    @property
    def submit_command(self) -> str: ...

    @property
    def stdout_path(self) -> str: ...

    @property
    def stderr_path(self) -> str: ...

    @property
    def exit_path(self) -> str | None: ...

    def parse(self, exit_code: int, stdout: str, stderr: str) -> str:
        """The job ID from the submit command's result; SubmitError if there is none."""
        ...


class RemoteRequest(Protocol):
    """Work a remote service does (a DAG run, an image build), rendered for the engine.

    ``service`` names the setting of the execution's environment that says where the service
    is and how to reach it (``airflow``); the engine's driver for that service reads the rest.
    The engine never logs a request: it may hold secrets.
    """

    @property
    def service(self) -> str: ...

    @property
    def outputs(self) -> dict[str, str] | None:
        """The step's outputs once the run succeeded, when known beforehand (None: the
        service gives them, or the step declares none)."""
        ...


@dataclass(frozen=True)
class PlannedStep:
    """What a dry run shows of a step besides its name, kind and needs."""

    command: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    script: str | None = None
    batch_script: str | None = None


class StepRuntime(Protocol[R_co]):
    """What the engine offers a kind to run one attempt of a step; ``R_co``: how it ends.

    Each means owns the attempt's cancel (a kill, an scancel, a stopped transfer) and what
    happens when the server stops under it; the kind's ``prepare`` builds what it runs.
    """

    def command(
        self, kind: StepKind[Any, CommandInvocation], name: str, step: StepSettings
    ) -> R_co:
        """Run a command in the execution's directory through the place's transport."""
        ...

    def batch_job(
        self, kind: StepKind[Any, JobSubmission], name: str, step: StepSettings, *, resumed: bool
    ) -> R_co:
        """Submit a batch job (or find the one submitted before a restart) and follow it."""
        ...

    def download(self, kind: StepKind[Any, StageInPlan], name: str, step: StepSettings) -> R_co:
        """Stream an HTTP(S) download into the execution's place."""
        ...

    def store_result(
        self, kind: StepKind[Any, StageOutPlan], name: str, step: StepSettings
    ) -> R_co:
        """Copy a file or directory of the execution's place into the result store."""
        ...

    def offers(self, service: str, step: StepSettings) -> bool:
        """Whether ``step``'s environment has the remote service ``service`` (its
        ``airflow:``), for a kind that does its work otherwise without one."""
        ...

    def remote_run(
        self, kind: StepKind[Any, RemoteRequest], name: str, step: StepSettings, *, resumed: bool
    ) -> R_co:
        """Have a remote service do the work: start it (or re-attach to the run started
        before a restart, by an ID derived from the execution, step and attempt), follow it to
        its end with its logs, stop it on a cancel or a timeout."""
        ...


@dataclass(frozen=True)
class StepChecks:
    """The load-time checks a kind runs on its step's templates and values."""

    loc: Location
    name: str  # the step's
    workflow: WorkflowSpec
    upstream: dict[str, list[str]] | None  # outputs of the step's ancestors
    declared: dict[str, list[str]]  # outputs of every step, for hints
    # outputs of the application's deployment steps; None where no deployment can be read
    deployment: dict[str, list[str]] | None = None

    def before_step_outputs(self) -> StepChecks:
        """These checks for templates the service renders before any step output reaches it."""
        return replace(self, upstream=None, deployment=None)

    def templates(
        self,
        templates: Sequence[tuple[Location, str]],
        label: str | None = None,
        in_shell: bool = False,
        in_env: bool = False,
        workflow_secrets: bool = False,
    ) -> list[Problem]:
        """Problems of templates; those read by a shell (``in_shell``) must place values right.

        ``in_env``: secret inputs and ``secrets.<name>`` may be used; ``workflow_secrets``:
        ``secrets.<name>`` only (a stage_in url, rendered by the service itself).
        """
        problems: list[Problem] = []
        workflow = self.workflow
        lists = [n for n, spec in workflow.inputs.items() if spec.type == "list"]
        secrets = [n for n, spec in workflow.inputs.items() if spec.type == "secret"]
        for key, template in templates:
            what = label or " ".join(str(part) for part in key)
            messages = check_template(
                template,
                workflow.inputs,
                secrets=() if in_env else secrets,
                workflow_secrets=list(workflow.secrets) if in_env or workflow_secrets else None,
                upstream=self.upstream,
                declared_outputs=self.declared,
                deployment=self.deployment,
            )
            for message in messages:
                problems.append(self.problem(key, f"{what}: {message}", _hint(message)))
            if in_shell and not messages:
                for misplaced in misplaced_expressions(template, lists):
                    problems.append(
                        self.problem(
                            key, f"{what}: {misplaced.message}", misplaced.hint, misplaced.line
                        )
                    )
        return problems

    def problem(self, key: Location, message: str, hint: str, line: int | None = None) -> Problem:
        """A problem at ``key`` of the step, its message prefixed with the step's name."""
        return Problem((*self.loc, *key), f"step {self.name!r} {message}", hint, line)


def _hint(message: str) -> str:
    """The fix for one template problem."""
    if "uses deployment" in message:
        return (
            "deployment.outputs.<step>.<name> reads a value a step of the application's "
            "deployment: section wrote, which lists <name> in its outputs"
        )
    if "steps." in message:
        return (
            "steps.<step>.outputs.<name> reads a value written by a step this one needs, "
            "which lists <name> in its outputs"
        )
    if "secret input" in message or "secrets may only" in message:
        return "pass secrets through env:, then use the variable in double quotes"
    if "undefined secret" in message:
        return "declare it under the workflow's secrets: {<name>: {path: ..., key: ...}}"
    return TEMPLATE_HINT


def is_template(text: str) -> bool:
    """Whether ``text`` holds a template expression or statement."""
    return "{{" in text or "{%" in text


class StepKind(ABC, Generic[S, P_co]):
    """One kind of step: its settings model, checks, preparation (``P_co``) and run."""

    name: str  # the value of ``kind:`` in a workflow file
    settings: type[S]  # its model: the workflow format and its JSON Schema
    # A batch job: an application with such a step is not deployed on a local environment.
    needs_cluster: bool = False
    # The remote service the environment must have (the name of its setting, e.g. airflow):
    # an application with such a step is not deployed where it is missing.
    service: str | None = None
    # Whether env: may use secrets (not where the environment goes on a command line).
    secrets_in_env: bool = True
    # Re-attach: after a restart, an attempt left running is taken up where it is (a job
    # followed again, a transfer run again), so its outputs file is kept; else it starts over.
    reattaches: bool = False

    def check(self, step: S, checks: StepChecks) -> list[Problem]:
        """Problems of the settings of this kind (names, needs and env are checked for all)."""
        return []

    def without_service(self, step: S) -> StepSettings | None:
        """The step to run instead where the environment lacks ``service`` (None: none, the
        application is not deployed there)."""
        return None

    @abstractmethod
    def prepare(self, step: S, request: Preparation) -> P_co:
        """What an attempt runs, rendered without I/O; RenderError if a template cannot be."""

    def plan(self, step: S, request: Preparation) -> PlannedStep:
        """What a dry run shows; by default nothing more than the step's name, kind and needs."""
        return PlannedStep()

    @abstractmethod
    def run(self, runtime: StepRuntime[R], name: str, step: S, *, resumed: bool) -> R:
        """One attempt, through the means of ``runtime`` this kind runs on."""
