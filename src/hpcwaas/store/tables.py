"""The database schema. Changing it needs a new Alembic revision in migrations/versions/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        when: datetime = value
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("display_name", String(255)),
    Column("email", String(320)),
    # argon2 hash for local password accounts; NULL for users known by other means
    Column("password_hash", String(255)),
    Column("groups", JSON),  # from the identity provider at the last login
    Column("created_at", UTCDateTime(), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),  # public handle, shown by `tokens list`
    Column("user_id", String(255), ForeignKey("users.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 hex of the secret
    Column("description", String(255)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)

ssh_keys = Table(
    "ssh_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(255), ForeignKey("users.id"), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("key_type", String(32), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_ssh_keys_owner_created", "owner", "created_at"),
)

# A user's default cluster account and SSH key on an environment reached over SSH.
cluster_identities = Table(
    "cluster_identities",
    metadata,
    Column("user_id", String(255), ForeignKey("users.id"), primary_key=True),
    Column("environment", String(255), primary_key=True),
    Column("login", String(64), nullable=False),
    Column("key_id", String(36), ForeignKey("ssh_keys.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Single sign-on attempts between /auth/login and /auth/authorize. The row holds no secret:
# the PKCE verifier and the nonce are derived from the state (which only the browser has)
# and the salt, so reading the table alone does not help to redeem a code.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("salt", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("consumed_at", UTCDateTime()),
)

# The embedded key store: secrets sealed with AES-GCM under the master key file.
sealed_secrets = Table(
    "sealed_secrets",
    metadata,
    Column("path", String(512), primary_key=True),
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(255), ForeignKey("users.id"), nullable=False),
    Column("workflow_id", String(512), nullable=False),
    Column("application", String(255), nullable=False),
    Column("environment", String(255), nullable=False),
    Column("workflow", String(255), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("outputs", JSON),
    Column("definition_digest", String(64), nullable=False),
    Column("work_dir", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    # the cluster account and SSH key the steps run with (environments reached over SSH)
    Column("cluster_login", String(64)),
    Column("key_id", String(36)),
    # the environments its steps run on besides its own, each with the cluster account used
    # there: {"<environment>": {"login": ..., "key_id": ...}} (None on a local one)
    Column("places", JSON(none_as_null=True)),
    # the replica driving the execution, until when (see engine/leasing.py)
    Column("lease_owner", String(64), index=True),
    Column("lease_expires_at", UTCDateTime()),
    # when each kind of the execution's data was removed (by retention or on request), and
    # by whom: {"logs": "retention", "outputs": "<user id>", ...} (see engine/retention.py)
    Column("work_dir_removed_at", UTCDateTime()),
    Column("cluster_work_dir_removed_at", UTCDateTime()),
    Column("logs_removed_at", UTCDateTime()),
    Column("outputs_removed_at", UTCDateTime()),
    Column("data_removed_by", JSON),
    Index("ix_executions_owner_created", "owner", "created_at", "id"),
    Index("ix_executions_status", "status"),
    Index("ix_executions_ended_at", "ended_at"),
)

steps = Table(
    "steps",
    metadata,
    Column("execution_id", String(36), ForeignKey("executions.id"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("position", Integer, nullable=False),  # order in the workflow file
    Column("state", String(16), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("exit_code", Integer),
    Column("job_id", String(64)),  # the scheduler's job ID, for steps that are jobs
    Column("attempts", Integer),  # attempts started so far (retries count)
    Column("outputs", JSON),  # the step's declared outputs, once it succeeded
    Column("running_at", UTCDateTime()),  # when its Slurm job was first seen running
    Column("accounting", JSON),  # what sacct kept of its ended job (schedulers/slurm_accounting)
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("execution_id", String(36), ForeignKey("executions.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),  # dense, from 0, per execution
    Column("level", Integer, nullable=False),  # LogLevel bit
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("step", String(255)),
    Column("content", Text, nullable=False),
)

# Who did what, when, from where: append-only, never updated or deleted by the server.
# ``id`` only grows (AUTOINCREMENT on SQLite, an identity column elsewhere), so it orders
# events and serves as the pagination key. ``details`` is a small JSON object without secrets.
audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(512)),
    Column("source", String(64), nullable=False),
    Column("request_id", String(128)),
    Column("outcome", String(16), nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_audit_events_actor_id", "actor", "id"),
    Index("ix_audit_events_action_id", "action", "id"),
    sqlite_autoincrement=True,
)

# Files that stage_out steps copied into the result store; ``path`` is relative to the store.
execution_outputs = Table(
    "execution_outputs",
    metadata,
    Column("execution_id", String(36), ForeignKey("executions.id"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("path", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Named leases: work that one replica at a time does (the retention sweep, ...).
leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# How far each output file of a step's Slurm job has been read into the logs: written in the
# same transaction as the entries read, so a replica taking the job over goes on from there.
# Valid for ``job_id`` only (a retry's job writes the same files anew).
job_log_offsets = Table(
    "job_log_offsets",
    metadata,
    Column("execution_id", String(36), ForeignKey("executions.id"), primary_key=True),
    Column("step", String(255), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("offset", BigInteger, nullable=False),
)

# Failed credential checks counted against a key (a client address or an account, as a
# SHA-256 of it) in the window that started at ``started_at`` (auth/throttle.py).
credential_failures = Table(
    "credential_failures",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False, index=True),
    Column("failures", Integer, nullable=False),
)

# When an account last logged in with its password from an address (the SHA-256 of both):
# such an address is exempt from the account's failure budget for a while.
known_logins = Table(
    "known_logins",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("last_login_at", UTCDateTime(), nullable=False, index=True),
)

# The deployment of each application on each environment (engine/deployments.py): the
# execution that runs (or ran) its steps, and the digest of the file it was started from.
deployments = Table(
    "deployments",
    metadata,
    Column("application", String(255), primary_key=True),
    Column("environment", String(255), primary_key=True),
    Column("execution_id", String(36), ForeignKey("executions.id"), nullable=False),
    Column("definition_digest", String(64), nullable=False),
    Column("requested_by", String(255), nullable=False),  # "trigger" or an operator's ID
    Column("requested_at", UTCDateTime(), nullable=False),
)
