"""The workflow file format: one application, its workflows, their inputs, steps and outputs.

These models check the structure only (keys, types); ``checks.py`` checks what spans several
keys (needs, cycles, defaults against constraints, names). Unknown keys are errors, so a typo
never goes unnoticed. Each step kind's model is its kind's (``catalog.kinds``).
"""

from __future__ import annotations

from types import GenericAlias
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, PlainValidator, model_validator

from hpcwaas.api.models import InputSpecPublic
from hpcwaas.catalog.kinds import KINDS
from hpcwaas.catalog.spec import Spec

if TYPE_CHECKING:
    from hpcwaas.catalog.kinds.base import StepSettings

InputType = Literal[
    "string", "integer", "number", "boolean", "enum", "list", "path", "ssh_key", "secret"
]
ItemType = Literal["string", "integer", "number", "boolean"]

# What an execution's stored inputs hold in place of a secret's value (kept in the key store).
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - the text shown instead of a secret
# A key store path: relative segments of safe characters ('.' and '..' are refused by checks.py).
KEY_STORE_PATH_PATTERN = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"
# Key store paths the service writes itself: a workflow may not read them.
RESERVED_KEY_STORE_PREFIXES: tuple[str, ...] = ("ssh-credentials/", "execution-secrets/")


def _number(value: Any) -> int | float:
    # One plain check instead of an int|float union, whose errors come in pairs.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Number = Annotated[int | float, PlainValidator(_number)]


class InputSpec(Spec):
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


def _step_union() -> Any:
    """One node of a workflow's DAG: the model of one of the registered kinds, by ``kind``."""
    models = tuple(kind.settings for kind in KINDS.values())
    return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007 - built at run time


if TYPE_CHECKING:
    StepSpec = StepSettings
else:
    StepSpec = _step_union()


class OutputSpec(Spec):
    """A file a step leaves in the execution's working directory, reported as an output."""

    step: str
    path: str
    description: str | None = None


class KeyStoreSecretSpec(Spec):
    """A value of the service's key store, read when an execution starts."""

    path: str = Field(pattern=KEY_STORE_PATH_PATTERN)
    """The key store path of the entry, e.g. `apps/demo/db` (Vault: `secret/data/apps/demo/db`)."""
    key: str = Field(min_length=1)
    """The field of that entry whose value is used, e.g. `password`."""


class WorkflowSpec(Spec):
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


class AccessSpec(Spec):
    """Who may see and trigger an application's workflows; both empty means everyone."""

    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)

    def allows(self, user_id: str, groups: frozenset[str] = frozenset()) -> bool:
        """Whether this user (with these groups) is authorized."""
        if not self.users and not self.groups:
            return True
        return user_id in self.users or not groups.isdisjoint(self.groups)


class ApplicationSpec(Spec):
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
    deployment: WorkflowSpec | None = None
    """Steps run once per environment before any execution of the workflows, again when the
    file changes or an operator asks; their step outputs are read as
    `{{ deployment.outputs.<step>.<name> }}`. No inputs; runs as the environment's
    `deployment_user` (a step naming another environment: as that environment's)."""


def rebuild_step_union() -> None:
    """Make the format take the kinds registered now (``catalog.kinds.register``)."""
    steps: Any = GenericAlias(dict, (str, _step_union()))
    for name in ("steps", "on_failure"):
        WorkflowSpec.model_fields[name].annotation = steps
    WorkflowSpec.model_rebuild(force=True)
    ApplicationSpec.model_rebuild(force=True)
