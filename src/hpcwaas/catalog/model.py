"""The workflow file format: one application, its workflows, their inputs, steps and outputs.

These models check the structure only (keys, types); ``checks.py`` checks what spans several
keys (needs, cycles, defaults against constraints, names). Unknown keys are errors, so a typo
never goes unnoticed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

from hpcwaas.api.models import InputSpecPublic

InputType = Literal[
    "string", "integer", "number", "boolean", "enum", "list", "path", "ssh_key", "secret"
]
ItemType = Literal["string", "integer", "number", "boolean"]

# Letters, digits, '_', '.', '-'; never '@', which separates the parts of a workflow ID.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Inputs the cluster identity uses (docs/compatibility.md, "Routes"): accepted by every workflow.
RESERVED_INPUTS: frozenset[str] = frozenset({"user_id", "vault_id"})
# What an execution's stored inputs hold in place of a secret's value (kept in the key store).
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - the text shown instead of a secret
# A key store path: relative segments of safe characters ('.' and '..' are refused by checks.py).
KEY_STORE_PATH_PATTERN = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"
# Key store paths the service writes itself: a workflow may not read them.
RESERVED_KEY_STORE_PREFIXES: tuple[str, ...] = ("ssh-credentials/", "execution-secrets/")
# The names of a step's outputs: they become ``y`` in ``{{ steps.s.outputs.y }}``.
OUTPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _number(value: Any) -> int | float:
    # One plain check instead of an int|float union, whose errors come in pairs.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Number = Annotated[int | float, PlainValidator(_number)]


class _Spec(BaseModel):
    # Attribute docstrings become the descriptions of /schemas/workflow.json.
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class InputSpec(_Spec):
    """One typed input of a workflow."""

    type: InputType
    """string, integer, number, boolean, enum, list, path, ssh_key (one of the caller's SSH key
    IDs) or secret (reaches steps only through `env:`, never stored or shown in clear)."""
    required: bool = True  # when not given: True without a default, False with one
    """Whether the trigger must give a value; by default true without a default, false with one."""
    default: Any = None
    """The value used when the trigger gives none (not allowed on secret inputs)."""
    description: str | None = None
    """What the value is for, shown to users."""
    values: list[Any] | None = None
    """enum: the allowed values."""
    minimum: Number | None = None
    """integer, number, list of numbers: the smallest value allowed."""
    maximum: Number | None = None
    """integer, number, list of numbers: the largest value allowed."""
    pattern: str | None = None
    """string, path, secret, list of strings: a Python regular expression the value matches."""
    min_length: int | None = Field(default=None, ge=0)
    """string, path, secret: the fewest characters; list: the fewest items."""
    max_length: int | None = Field(default=None, ge=0)
    """string, path, secret: the most characters; list: the most items."""
    items: ItemType = "string"
    """list: the type of its items."""

    @model_validator(mode="after")
    def _required_unless_default(self) -> InputSpec:
        if "required" not in self.model_fields_set:
            self.required = "default" not in self.model_fields_set
        return self

    @property
    def has_default(self) -> bool:
        """Whether the file gives a default (``default: null`` counts: the value is then None)."""
        return "default" in self.model_fields_set

    def to_public(self, name: str) -> InputSpecPublic:
        """This input as ``GET /workflows/{id}`` shows it."""
        return InputSpecPublic(
            name=name,
            type=self.type,
            required=self.required,
            default=self.default,
            description=self.description,
            values=self.values,
            minimum=self.minimum,
            maximum=self.maximum,
            pattern=self.pattern,
            min_length=self.min_length,
            max_length=self.max_length,
            items=self.items if self.type == "list" else None,
        )


class _StepBase(_Spec):
    """What every step has, whatever its kind."""

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
    outputs: list[str] = Field(default_factory=list)
    """Names of values the step writes as `name=value` lines to the file `$HPCWAAS_OUTPUTS`;
    later steps read them as `{{ steps.<step>.outputs.<name> }}`."""


class ShellStep(_StepBase):
    """A shell command rendered from a template, run in the execution's directory."""

    kind: Literal["shell"]
    run: str
    """The command line (a template; values are shell-quoted)."""


class SlurmOptionsSpec(_Spec):
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


class SlurmStep(_StepBase):
    """A batch job: ``script`` rendered from a template, submitted with ``options``."""

    kind: Literal["slurm"]
    script: str
    options: SlurmOptionsSpec = Field(default_factory=SlurmOptionsSpec)


class PycompssStep(_StepBase):
    """A PyCOMPSs application submitted with enqueue_compss."""

    kind: Literal["pycompss"]
    app: str
    arguments: list[str] = Field(default_factory=list)
    # a number, or a template rendering to one ("{{ inputs.nodes }}")
    num_nodes: Annotated[int, Field(ge=1)] | str | None = None
    qos: str | None = None  # may be a template
    exec_time: int | None = Field(default=None, ge=1)  # minutes
    python_interpreter: str = "python3"
    container_image: str | None = None
    container_compss_path: str | None = None  # where COMPSs lies inside the image
    container_opts: str | None = None  # options of the container engine, e.g. "-e"
    # ["--tracing=true"]; an item may be a template rendering to several options
    extra_options: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)  # loaded after the environment's


SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"


class StageInStep(_StepBase):
    """An HTTP(S) download, streamed by the service into the execution's place (the cluster)."""

    kind: Literal["stage_in"]
    url: str  # template
    target_path: str  # template; relative: under the execution's working directory
    force: bool = False  # download again even if the target exists
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    max_bytes: int | None = Field(default=None, ge=1)  # default: limits.max_stage_in_bytes


class StageOutStep(_StepBase):
    """A file or directory of the execution's place, copied into the service's result store."""

    kind: Literal["stage_out"]
    source_path: str  # template; relative: under the execution's working directory
    output: str | None = Field(default=None, pattern=NAME_PATTERN)  # default: the step's name
    max_bytes: int | None = Field(default=None, ge=1)  # default: limits.max_stage_out_bytes
    metadata: dict[str, Any] = Field(default_factory=dict)


# One node of a workflow's DAG; ``kind`` says which.
StepSpec = Annotated[
    ShellStep | SlurmStep | PycompssStep | StageInStep | StageOutStep,
    Field(discriminator="kind"),
]
STEP_KINDS: dict[str, type[_StepBase]] = {
    "shell": ShellStep,
    "slurm": SlurmStep,
    "pycompss": PycompssStep,
    "stage_in": StageInStep,
    "stage_out": StageOutStep,
}
# Kinds the service runs itself (data transfers), on any environment.
TRANSFER_KINDS: frozenset[str] = frozenset({"stage_in", "stage_out"})
# Kinds that need a batch scheduler: they cannot run on a ``local`` environment.
CLUSTER_KINDS: frozenset[str] = frozenset({"slurm", "pycompss"})


class OutputSpec(_Spec):
    """A file a step leaves in the execution's working directory, reported as an output."""

    step: str
    path: str
    description: str | None = None


class KeyStoreSecretSpec(_Spec):
    """A value of the service's key store, read when an execution starts."""

    path: str = Field(pattern=KEY_STORE_PATH_PATTERN)
    """The key store path of the entry, e.g. `apps/demo/db` (Vault: `secret/data/apps/demo/db`)."""
    key: str = Field(min_length=1)
    """The field of that entry whose value is used, e.g. `password`."""


class WorkflowSpec(_Spec):
    """A DAG of steps with typed inputs; steps keep the file's order."""

    description: str | None = None
    """What the workflow does, shown to users."""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    """Typed values given at trigger, by name."""
    steps: dict[str, StepSpec]
    """The steps, by name; they run as soon as their needs succeeded."""
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    """Files reported as the execution's outputs when it succeeds."""
    secrets: dict[str, KeyStoreSecretSpec] = Field(default_factory=dict)
    """Values of the key store, by name, used as `{{ secrets.<name> }}` in `env:` values and
    stage_in URLs only; read when an execution starts, never stored or shown in clear."""
    on_failure: dict[str, StepSpec] = Field(default_factory=dict)
    """Cleanup steps run, in their own DAG, when the execution fails (not when cancelled)."""


class AccessSpec(_Spec):
    """Who may see and trigger an application's workflows; both empty means everyone."""

    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)

    def allows(self, user_id: str, groups: frozenset[str] = frozenset()) -> bool:
        """Whether this user (with these groups) is authorized."""
        if not self.users and not self.groups:
            return True
        return user_id in self.users or not groups.isdisjoint(self.groups)


class ApplicationSpec(_Spec):
    """One workflow file: an application deployed on environments, exposing some workflows."""

    application: str
    """The application ID, the first part of workflow IDs."""
    description: str | None = None
    """What the application is."""
    environments: list[str]
    """The environments (clusters) the workflows are deployed on."""
    expose: list[str] = Field(default_factory=list)
    """The workflows users may list and trigger."""
    access: AccessSpec = Field(default_factory=AccessSpec)
    """Who may see and trigger the workflows; empty: every authenticated user."""
    workflows: dict[str, WorkflowSpec]
    """The workflows, by name."""
