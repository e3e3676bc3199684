"""Request and response bodies of the REST API.

The first models are the original API's shapes, kept field for field; fields
marked additive are ours and old clients ignore them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hpcwaas.api.states import ExecutionStatus, StepState


class WireModel(BaseModel):
    """The base of every body: its validator is built on first use, not at import.

    A `waas` command uses one or two of these models; building all of them at import
    took most of its start-up time.
    """

    model_config = ConfigDict(defer_build=True)


class WorkflowPublic(WireModel):
    id: str
    name: str
    application_id: str
    environment_id: str
    environment_name: str
    description: str | None = None  # additive


class WorkflowList(WireModel):
    workflows: list[WorkflowPublic]
    next_cursor: str | None = None  # additive: set when `limit` cut the list


class InputSpecPublic(WireModel):
    """One declared input of a workflow, as `GET /workflows/{id}` shows it."""

    name: str
    type: str
    required: bool
    default: Any = None
    description: str | None = None
    values: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    items: str | None = None


class WorkflowDetail(WorkflowPublic):
    """Additive: one workflow with its input schema and steps."""

    inputs: list[InputSpecPublic]
    steps: list[str]
    outputs: list[str]


class TriggerRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    # null, as the original client sends without -i, means no inputs
    inputs: dict[str, Any] | None = None


class DryRunStep(WireModel):
    """Additive: one step of a dry run's plan, rendered as it would run."""

    name: str
    kind: str
    needs: list[str]
    # shell: the command line; slurm: the submit command; pycompss: the enqueue_compss command
    command: str | None = None
    script: str | None = None  # slurm: the step's rendered script
    batch_script: str | None = None  # slurm: the sbatch wrapper that runs the script
    env: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = None
    error: str | None = None  # why the step could not be rendered (the run would fail there)
    # slurm: submitted as soon as the jobs of its needs are, with --dependency=afterok on them
    submitted_ahead: bool = False
    # the environment it runs on, when not the workflow's (its `environment:`)
    environment_id: str | None = None


class DryRunPlan(WireModel):
    """Additive: what `POST /workflows/{id}?dry_run=true` returns; nothing was run or recorded."""

    dry_run: Literal[True] = True
    workflow_id: str
    environment_id: str
    execution_id: str  # a placeholder: a trigger gets a new ID
    work_dir: str
    cluster_login: str | None = None
    inputs: dict[str, Any]  # validated, defaults filled in; secrets as "[secret]"
    steps: list[DryRunStep]  # in an order where each comes after its needs
    outputs: list[str]


class SlurmAccounting(WireModel):
    """Additive: what Slurm's accounting (sacct) kept of a step's ended job."""

    state: str  # Slurm's: COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY...
    exit_code: int | None = None
    elapsed_seconds: int | None = None
    cpu_seconds: float | None = None  # TotalCPU: user and system time of all its tasks
    max_rss_bytes: int | None = None  # the largest resident set size of its steps

    def summary(self) -> str:
        """`COMPLETED, exit code 0, elapsed 3 s, CPU time 1.2 s, max RSS 64.0 MiB`."""
        parts = [self.state]
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        if self.elapsed_seconds is not None:
            parts.append(f"elapsed {self.elapsed_seconds} s")
        if self.cpu_seconds is not None:
            parts.append(f"CPU time {self.cpu_seconds:.1f} s")
        if self.max_rss_bytes is not None:
            parts.append(f"max RSS {self.max_rss_bytes / 2**20:.1f} MiB")
        return ", ".join(parts)


class StepPublic(WireModel):
    name: str
    state: StepState
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    job_id: str | None = None  # the Slurm job, for steps that are batch jobs
    # additive: the steps this one waits for (the edges of the DAG); null if the workflow is gone
    needs: list[str] | None = None
    # additive: attempts started (1 + retries used); the values the step wrote as its outputs
    attempts: int | None = None
    outputs: dict[str, str] | None = None
    # additive: when its Slurm job was first seen running (queued from started_at until then);
    # null for steps that are not jobs, and for jobs that ended before a poll saw them run
    running_at: datetime | None = None
    # additive: Slurm's accounting of its job, once sacct has it (clusters with slurmdbd)
    accounting: SlurmAccounting | None = None
    # additive: the environment it runs on, when not the workflow's (its `environment:`);
    # null if the workflow is gone
    environment_id: str | None = None


class DataRemovalPublic(WireModel):
    """When one kind of an execution's data was removed, and by whom."""

    at: datetime
    # "retention" for the retention sweep, else the user who asked for it
    by: str


class ExecutionPublic(WireModel):
    id: str
    status: ExecutionStatus
    outputs: dict[str, Any] | None = None
    # additive
    workflow_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    steps: list[StepPublic] | None = None
    # additive: sha256 of the workflow file the execution was triggered with
    definition_digest: str | None = None
    # additive: the kinds of data removed so far (work_dir, cluster_work_dir, logs, outputs)
    data_removed: dict[str, DataRemovalPublic] | None = None
    # additive: the inputs it was triggered with, defaults filled in; secrets as "[secret]"
    inputs: dict[str, Any] | None = None


class ExecutionSummary(WireModel):
    id: str
    workflow_id: str
    status: ExecutionStatus
    created_at: datetime
    ended_at: datetime | None = None
    owner: str | None = None  # additive: the user who triggered it
    started_at: datetime | None = None  # additive


class ExecutionList(WireModel):
    executions: list[ExecutionSummary]
    next_cursor: str | None = None


class LogEntry(WireModel):
    level: str
    timestamp: datetime
    content: str
    step: str | None = None  # additive


class ExecutionLogs(WireModel):
    logs: list[LogEntry]
    total_results: int
    # the original names this field `from`, a Python keyword
    from_: int = Field(alias="from")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


SSHKeyType = Literal["rsa", "rsa4096", "ed25519"]


class SSHKeyCreate(WireModel):
    model_config = ConfigDict(extra="forbid")

    # null means none, as absent
    metadata: dict[str, Any] | None = None
    # additive: rsa is RSA 2048 as the original; ed25519's private half is in OpenSSH format;
    # null means the default
    type: SSHKeyType | None = None


class SSHKeyCreated(WireModel):
    id: str
    public_key: str


class SSHKeyPublic(WireModel):
    """Additive: a key as `GET /ssh_keys` lists it. Never the private half."""

    id: str
    public_key: str
    fingerprint: str
    key_type: str
    metadata: dict[str, Any]
    created_at: datetime


class SSHKeyList(WireModel):
    ssh_keys: list[SSHKeyPublic]
    next_cursor: str | None = None


class AuthInfo(WireModel):
    """Additive, public: how to log in to this server (`GET /auth/config`)."""

    auth_type: str
    login_url: str
    device_flow: bool


class DeviceAuthorization(WireModel):
    """Additive, public: a device login started through the server (`POST /auth/device`)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int
    interval: int


class DeviceTokenRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    device_code: str = Field(min_length=1, max_length=2048)


class DevicePending(WireModel):
    """202 from `POST /auth/device/token` while the user has not approved yet."""

    status: str  # "authorization_pending" or "slow_down"
    interval: int


class TokenIssued(WireModel):
    """200 from `POST /auth/device/token`: one of this server's bearer tokens."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_at: datetime
    user_id: str
    display_name: str | None = None


class UserPublic(WireModel):
    """Additive: `GET /users/me`."""

    user_id: str
    display_name: str | None = None
    email: str | None = None
    groups: list[str]
    token_expires_at: datetime | None = None
    operator: bool = False  # additive: listed under the server's `operators`


class ClusterIdentityPublic(WireModel):
    """Additive: the cluster account and SSH key a user's steps run with on an environment."""

    login: str
    key_id: str


class EnvironmentPublic(WireModel):
    """Additive: a configured environment, with the caller's registered cluster identity."""

    id: str
    name: str
    kind: str
    host: str | None = None  # the login node of a slurm environment; null for local ones
    identity: ClusterIdentityPublic | None = None


class EnvironmentList(WireModel):
    """Additive: `GET /environments`, sorted by ID."""

    environments: list[EnvironmentPublic]


class ClusterIdentityUpdate(WireModel):
    """Additive: `PUT /environments/{name}/identity`."""

    model_config = ConfigDict(extra="forbid")

    login: str = Field(
        description="Your login on the cluster: must match ^[a-z_][a-z0-9_.-]{0,31}$."
    )
    key_id: str = Field(
        max_length=255, description="The ID of one of your SSH keys (`waas ssh_keys key-gen`)."
    )


class AuditEventPublic(WireModel):
    """One audit event: who did what to which object, when, from where, and how it ended."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None = None
    source: str
    request_id: str | None = None
    outcome: str
    details: dict[str, Any] = Field(default_factory=dict)


class AuditEventList(WireModel):
    events: list[AuditEventPublic]
    next_cursor: str | None = None


class ExecutionOutputPublic(WireModel):
    """A file a stage_out step stored for an execution."""

    name: str
    size: int
    sha256: str
    media_type: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    file_name: str  # the name the download suggests (Content-Disposition)


class ExecutionOutputList(WireModel):
    outputs: list[ExecutionOutputPublic]


class DeploymentPublic(WireModel):
    """The current deployment of one application on one environment (operators only).

    Its steps and logs are those of execution `execution_id` (`GET /executions/{id}`, `.../logs`).
    """

    application_id: str
    environment_id: str
    execution_id: str
    status: str
    error: str | None = None
    definition_digest: str
    requested_by: str
    requested_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None


class DeploymentList(WireModel):
    deployments: list[DeploymentPublic]
