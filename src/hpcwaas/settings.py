"""Server settings: one typed model, from a YAML file (the original's keys plus ours) and env vars.

Precedence: command-line options > ``HPCWAAS_*`` env vars (nested with ``__``) > YAML file
> defaults.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

log = logging.getLogger(__name__)

AuthType = Literal["local", "basic", "sso"]
PACKAGED_CATALOG = Path(__file__).parent / "examples"


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to change."""


class BasicAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    # A plain password, or an argon2 hash (``$argon2id$...``) made by ``hpcwaas-api users hash``.
    password: SecretStr


class BasicAuthConfig(BaseModel):
    accounts: list[BasicAccount] = Field(default_factory=list)


DAY = 86400.0


class CredentialLimits(BaseModel):
    """Budgets of failed credential checks, and how much password hashing runs at once.

    The policy is in docs/security.md ("Guessing passwords and tokens").
    """

    model_config = ConfigDict(extra="forbid")

    window_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Length of the window the failure budgets count in; a throttled client "
        "waits at most this long (shared by the replicas through the database).",
    )
    max_failures_per_address: int = Field(
        default=30,
        ge=1,
        description="Failed credential checks (unknown tokens, wrong passwords, refused "
        "device codes) a client address (an IPv6 /64) may make per window; past it 429.",
    )
    max_failures_per_account: int = Field(
        default=10,
        ge=1,
        description="Failed password checks of one account per window, from addresses it "
        "has not logged in from within known_address_seconds; past it 429 for those.",
    )
    known_address_seconds: float = Field(
        default=30 * DAY,
        ge=0,
        description="How long a successful password login keeps its address exempt from "
        "its account's budget. 0: never exempt.",
    )
    max_password_checks: int = Field(
        default=2,
        ge=1,
        description="argon2 verifications running at once in each server process; more wait "
        "(each already runs on 4 threads).",
    )
    max_password_checks_per_address: int = Field(
        default=1,
        ge=1,
        description="Password checks of one client address running at once in each server "
        "process; its others wait behind them, so that a flood from one address holds few "
        "of the max_password_checks.",
    )
    max_queued_password_checks: int = Field(
        default=64,
        ge=0,
        description="Password checks waiting for a slot in each server process (beyond those "
        "queued behind their own address's); one more is a 503, unless it comes from an "
        "address its account logged in from.",
    )


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth_type: str = "local"
    basic_auth: BasicAuthConfig = Field(default_factory=BasicAuthConfig)
    auth_url: str | None = None
    token_url: str | None = None
    user_info_url: str | None = None
    redirect_url: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    session_duration: int = Field(default=86400, gt=0, description="Seconds a login token lives.")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # ours, for sso
    issuer: str | None = Field(
        default=None,
        description="The provider's issuer URL: enables OIDC discovery and ID token checks.",
    )
    client_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    groups_claim: str | None = Field(
        default="groups", description="User-info or token claim that lists the user's groups."
    )
    accept_provider_tokens: bool = Field(
        default=False, description="Also accept the provider's own access tokens as bearer."
    )
    provider_token_audience: str | None = Field(
        default=None, description="Audience required in provider JWT access tokens."
    )
    provider_token_cache_seconds: float = Field(default=60.0, ge=0)
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a checked token of this server is trusted without the database; "
        "a revocation made elsewhere (CLI, another replica) takes effect within it. 0: none.",
    )
    introspection_url: str | None = None
    device_authorization_url: str | None = None
    jwks_url: str | None = None
    login_timeout_seconds: int = Field(default=600, gt=0)
    credential_limits: CredentialLimits = Field(
        default_factory=CredentialLimits,
        description="Throttling of failed credential checks and of password hashing.",
    )

    @model_validator(mode="after")
    def _sso_complete(self) -> AuthConfig:
        if self.auth_type != "sso":
            return self
        missing = [
            k for k in ("client_id", "client_secret", "redirect_url") if not getattr(self, k)
        ]
        if not self.issuer:
            missing += [
                k for k in ("auth_url", "token_url", "user_info_url") if not getattr(self, k)
            ]
        if missing:
            raise ValueError(
                f"auth_type sso needs {', '.join(missing)} (or an issuer for discovery "
                "instead of auth_url, token_url and user_info_url)"
            )
        return self

    @field_validator("auth_type")
    @classmethod
    def _known_auth_type(cls, value: str) -> str:
        if value not in ("local", "basic", "sso"):
            raise ValueError(
                f"unknown auth_type {value!r}: use 'local' (accounts and tokens managed by "
                "hpcwaas-api), 'basic' (accounts listed in basic_auth.accounts) or 'sso'"
            )
        return value


class VaultConfig(BaseModel):
    address: str = "http://127.0.0.1:8200"
    role_id: SecretStr | None = None
    secret_id: SecretStr | None = None
    is_secret_wrapped: bool = False


class LocalEnvironment(BaseModel):
    """This host: steps run as subprocesses of the server (the embedded default)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local"] = "local"
    name: str | None = Field(default=None, description="Human-readable name.")
    max_parallel_steps: int = Field(default=8, ge=1)
    deployment_user: str = Field(
        default="hpcwaas-deployment",
        min_length=1,
        max_length=255,
        description="The service identity applications' deployments run as on this environment "
        "(a user ID; on Slurm, its registered cluster login and SSH key are used).",
    )

    def services(self) -> frozenset[str]:
        """The remote services steps may use here: none on this host."""
        return frozenset()


class SlurmDefaultsConfig(BaseModel):
    """sbatch options a step gets unless it sets its own."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    qos: str | None = None
    account: str | None = None
    time: str | None = None


# A mount or role of a Vault secrets engine: path segments without empty or dot ones.
_VAULT_PATH = r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*$"


class SshCertificatesConfig(BaseModel):
    """Short-lived SSH certificates signed by the site's CA (the SSH secrets engine of Vault or
    OpenBao) for each new connection, instead of public keys in authorized_keys."""

    model_config = ConfigDict(extra="forbid")

    vault: VaultConfig = Field(
        description="The Vault (or OpenBao) that signs, and its own AppRole (role_id, "
        "secret_id, is_secret_wrapped): it may differ from vault_config, the key store."
    )
    mount: str = Field(
        default="ssh", pattern=_VAULT_PATH, description="Where the SSH secrets engine is mounted."
    )
    role: str = Field(
        pattern=_VAULT_PATH,
        description="The engine's signing role (key_type=ca, allow_user_certificates=true, "
        "allow_user_key_ids=true, allowed_users covering the logins below).",
    )
    ttl_seconds: int = Field(
        default=600,
        ge=10,
        description="Seconds a certificate is valid; at most the role's max_ttl.",
    )
    renew_before_seconds: int = Field(
        default=60,
        ge=1,
        description="A new connection signs a new certificate when the last one has less than "
        "this many seconds left; below ttl_seconds.",
    )
    logins: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The cluster logins each user (by user ID) may be signed for.",
    )
    login_is_user_id: bool = Field(
        default=False,
        description="Also let each user be signed for the login equal to their user ID (where "
        "the identity provider's names are the cluster's accounts).",
    )

    @model_validator(mode="after")
    def _usable(self) -> SshCertificatesConfig:
        if self.vault.role_id is None or self.vault.secret_id is None:
            raise ValueError(
                "vault.role_id and vault.secret_id are required: hpcwaas logs in to the "
                "signing Vault with an AppRole"
            )
        if self.renew_before_seconds >= self.ttl_seconds:
            raise ValueError(
                f"renew_before_seconds ({self.renew_before_seconds}) must be below "
                f"ttl_seconds ({self.ttl_seconds})"
            )
        return self

    def may_sign(self, user_id: str, login: str) -> bool:
        """Whether the user may get a certificate for the cluster login ``login``."""
        return login in self.logins.get(user_id, ()) or (self.login_is_user_id and login == user_id)


class HttpServiceConfig(BaseModel):
    """What every HTTP service the steps call has: how its TLS is checked, request timeouts."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = Field(
        default=None, description="PEM file of the CAs to trust for https (default: the system's)."
    )
    verify_tls: bool = Field(
        default=True, description="Check the server's certificate (false only for tests)."
    )
    request_timeout: float = Field(default=30.0, gt=0, description="Seconds one request may take.")


class AirflowConfig(HttpServiceConfig):
    """An Apache Airflow (such as eFlows4HPC's Data Logistics Service) for dag_run steps."""

    url: str = Field(
        description="Base URL of the Airflow webserver, e.g. https://dls.example.org; its "
        "stable REST API (Airflow 2) is under /api/v1.",
        pattern=r"^https?://",
    )
    credentials: str = Field(
        description="Key store path of the Airflow account dag_run steps use (basic auth), "
        "with the keys username and password: hpcwaas-api secrets put PATH username (then "
        "password)."
    )
    poll_interval: float = Field(
        default=5.0, gt=0, description="Seconds between two polls of the runs followed."
    )
    unreachable_deadline: float = Field(
        default=600.0,
        gt=0,
        description="Seconds a step's run is followed while the Airflow cannot be reached "
        "before the step fails (the run is then left to the Airflow).",
    )


class ImageCreationConfig(HttpServiceConfig):
    """The eFlows4HPC Container Image Creation service that image_build steps use."""

    url: str | None = Field(
        default=None,
        description="Base URL of the service, with its prefix, e.g. "
        "https://images.example.org/image_creation; overrides the service_url of the steps "
        "(none: the steps' own service_url).",
        pattern=r"^https?://",
    )
    credentials: str = Field(
        description="Key store path of the service account image_build steps use (basic "
        "auth), with the keys username and password: hpcwaas-api secrets put PATH username "
        "(then password)."
    )
    poll_interval: float = Field(
        default=10.0, gt=0, description="Seconds between two polls of a build's status."
    )
    unreachable_deadline: float = Field(
        default=600.0,
        gt=0,
        description="Seconds a build is followed while the service cannot be reached before "
        "the step fails.",
    )


class SlurmEnvironment(BaseModel):
    """An HPC cluster reached over SSH, as each user's own cluster account; jobs go to Slurm."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["slurm"]
    name: str | None = Field(default=None, description="Human-readable name.")
    host: str = Field(description="The login node.")
    port: int = Field(default=22, gt=0, lt=65536)
    host_keys: list[str] = Field(
        min_length=1,
        description="known_hosts lines of the login node; any other host key is refused.",
    )
    defaults: SlurmDefaultsConfig = Field(default_factory=SlurmDefaultsConfig)
    pycompss_modules: list[str] = Field(default_factory=list)
    max_sessions: int = Field(default=8, ge=1, description="Concurrent SSH sessions per account.")
    poll_interval: float = Field(default=5.0, gt=0, description="Seconds between squeue calls.")
    work_root: str = Field(
        default=".hpcwaas", description="Executions' directories, relative to the account's home."
    )
    max_parallel_steps: int = Field(default=32, ge=1)
    unreachable_deadline: float = Field(
        default=600.0, gt=0, description="Seconds a step retries an unreachable cluster."
    )
    ssh_certificates: SshCertificatesConfig | None = Field(
        default=None,
        description="Connect with certificates signed by the site's SSH CA for each execution "
        "(the login nodes' sshd trusts the CA); default: the user's key in authorized_keys.",
    )
    airflow: AirflowConfig | None = Field(
        default=None,
        description="The Airflow (Data Logistics Service) that dag_run steps on this cluster "
        "trigger DAG runs on; none: an application with a dag_run step is not deployed here, "
        "unless the step has a without_airflow step.",
    )
    image_creation: ImageCreationConfig | None = Field(
        default=None,
        description="The Container Image Creation service of image_build steps on this "
        "cluster; none: image_build steps fail at once here.",
    )
    deployment_user: str = Field(
        default="hpcwaas-deployment",
        min_length=1,
        max_length=255,
        description="The service identity applications' deployments run as on this environment "
        "(a user ID; on Slurm, its registered cluster login and SSH key are used).",
    )

    def services(self) -> frozenset[str]:
        """The remote services configured for this cluster (``airflow``, ``image_creation``)."""
        configured = {"airflow": self.airflow, "image_creation": self.image_creation}
        return frozenset(name for name, config in configured.items() if config is not None)


EnvironmentConfig = Annotated[LocalEnvironment | SlurmEnvironment, Field(discriminator="kind")]


def _default_local() -> EnvironmentConfig:
    return LocalEnvironment(name="Local host")


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_inputs: int = Field(default=100, ge=1)
    max_input_bytes: int = Field(default=64 * 1024, ge=1)
    max_metadata_bytes: int = Field(default=16 * 1024, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    max_logs_timeout_seconds: float = Field(default=300.0, gt=0)
    max_output_bytes: int = Field(default=64 * 1024, ge=1)
    max_running_executions_per_user: int = Field(
        default=20,
        ge=1,
        description="Executions a user may have PENDING, RUNNING or CANCELLING at once; "
        "one more trigger is a 429.",
    )
    max_triggers_per_minute: int = Field(
        default=60,
        ge=1,
        description="Triggers per user and minute (a token bucket in each server process); "
        "more is a 429.",
    )
    max_ssh_keys_per_user: int = Field(
        default=20, ge=1, description="SSH keys a user may hold; one more key-gen is a 409."
    )
    max_stage_in_bytes: int = Field(
        default=10 * 1024**3,
        ge=1,
        description="Bytes a stage_in step may download: its default max_bytes and the most "
        "it may set.",
    )
    max_stage_out_bytes: int = Field(
        default=1024**3,
        ge=1,
        description="Bytes a stage_out step may store in the result store: its default "
        "max_bytes and the most it may set.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        description="Bytes of a request's line and headers together; more is a 431, "
        "refused before it is read.",
    )
    header_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a connection has to send a request's line and headers, from "
        "its opening or the end of its previous response; then it is closed (408 if part "
        "of them came).",
    )
    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a request's body has to arrive in full after its headers; "
        "then it is a 408.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open client connections per server process; at the cap a new one "
        "replaces the one idle longest, or gets a 503 if every one is serving a request. "
        "Lowered to what the process's file limit (ulimit -n) allows, with a warning.",
    )


class OperatorsConfig(BaseModel):
    """Who may see and cancel every user's executions and revoke anyone's tokens."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(default_factory=list, description="User IDs of operators.")
    groups: list[str] = Field(
        default_factory=list, description="Groups whose members are operators."
    )


class TlsConfig(BaseModel):
    """HTTPS served by the server itself (instead of, or behind, a TLS-terminating proxy)."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path = Field(
        description="PEM certificate the server presents, followed by its intermediate CAs."
    )
    key_file: Path = Field(description="PEM private key of that certificate.")
    key_password: SecretStr | None = Field(
        default=None, description="Passphrase of key_file, when the key is encrypted."
    )
    client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA certificates: when set, clients must present a certificate "
        "signed by one of them (mutual TLS).",
    )
    minimum_version: Literal["1.2", "1.3"] = Field(
        default="1.2", description="Oldest TLS version accepted."
    )


def _retention_duration(value: Any) -> Any:
    """Seconds as a number, or a duration string such as ``7d``, ``12h`` or ``1h30m``."""
    if isinstance(value, str):
        from hpcwaas.api.durations import parse_duration

        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(
                f"{exc}; or give seconds as a number, or null to keep forever"
            ) from None
    return value


# Seconds after an execution ended (null: keep forever).
RetentionDuration = Annotated[
    Annotated[float, Field(ge=0)] | None, BeforeValidator(_retention_duration)
]


class RetentionConfig(BaseModel):
    """How long the data of finished executions is kept; the execution's record stays."""

    model_config = ConfigDict(extra="forbid")

    work_dirs: RetentionDuration = Field(
        default=7 * DAY,
        description="Working directories of `local` executions on the server (seconds, or "
        "7d, 12h...; null keeps them).",
    )
    cluster_work_dirs: RetentionDuration = Field(
        default=7 * DAY,
        description="Executions' directories on clusters, removed over SSH as the execution's "
        "cluster account (seconds, or 7d, 12h...; null keeps them).",
    )
    logs: RetentionDuration = Field(
        default=90 * DAY,
        description="Log entries of executions (seconds, or 90d...; null keeps them).",
    )
    outputs: RetentionDuration = Field(
        default=30 * DAY,
        description="Files in the result store and their records (seconds, or 30d...; null "
        "keeps them).",
    )
    sweep_interval_seconds: float = Field(
        default=3600.0, gt=0, description="Seconds between two retention sweeps."
    )
    batch_size: int = Field(
        default=100, ge=1, description="Executions one sweep handles per kind and round."
    )


def _default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("hpcwaas"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HPCWAAS_", env_nested_delimiter="__", extra="allow"
    )

    listen_address: str = "0.0.0.0:9090"
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL: postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE "
        "for PostgreSQL (production, several replicas); default: SQLite file in data_dir.",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="PostgreSQL: connections each server process keeps open to the database "
        "(a few more are opened under load); the server's max_connections must exceed the "
        "sum over all replicas and admin commands.",
    )
    database_connect_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="PostgreSQL: seconds to wait for a new connection before answering 503 "
        "(the database is unreachable).",
    )
    results_dir: Path | None = Field(
        default=None,
        description="The result store (stage_out files, one directory per execution); "
        "default: data_dir/results.",
    )
    catalog_dirs: list[Path] = Field(default_factory=lambda: [PACKAGED_CATALOG])
    catalog_watch_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Seconds between checks of catalog_dirs for changed files; 0: no watching.",
    )
    auth: AuthConfig = Field(default_factory=AuthConfig)
    vault_config: VaultConfig | None = None
    environments: dict[str, EnvironmentConfig] = Field(
        default_factory=lambda: {"local": _default_local()}
    )
    limits: Limits = Field(default_factory=Limits)
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)
    tls: TlsConfig | None = Field(
        default=None, description="Serve HTTPS with this certificate; default plain HTTP."
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,
        description="How long finished executions' data is kept.",
    )
    step_grace_seconds: float = Field(
        default=5.0, ge=0, description="Seconds between SIGTERM and SIGKILL when cancelling a step."
    )
    shutdown_drain_seconds: int = Field(
        default=30,
        gt=0,
        description=(
            "Seconds a stopping server waits for the requests in flight to finish before it "
            "closes their connections. Meanwhile it accepts no connection and starts no "
            "execution: those triggered meanwhile wait, PENDING, for another replica or the "
            "next start."
        ),
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=3,
        description=(
            "Seconds a replica's hold on an execution lasts without renewal: after a replica "
            "dies, others take its executions over this long after its last heartbeat. A "
            "replica cut off from the database keeps running what it holds, and gives up "
            "only what another replica took over meanwhile."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics needs Authorization: Bearer <token>."
    )
    log_format: Literal["text", "json"] = "text"
    embedded_default: bool = Field(default=False, exclude=True)

    @field_validator("environments", mode="before")
    @classmethod
    def _local_by_default(cls, value: Any) -> Any:
        """An environment without a `kind` is `local`, as before kinds existed."""
        if isinstance(value, dict):
            return {
                k: ({**v, "kind": "local"} if isinstance(v, dict) and "kind" not in v else v)
                for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        extra = set(self.model_extra or {})
        if "alien_config" in extra:
            log.warning(
                "config: the alien_config section is ignored (hpcwaas runs workflows itself)"
            )
            extra.discard("alien_config")
        if extra:
            raise ValueError(f"unknown config keys: {', '.join(sorted(extra))}")
        return self

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "hpcwaas.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def results_root(self) -> Path:
        """Where stage_out steps store files: ``results_dir``, else ``data_dir/results``."""
        return self.results_dir or self.data_dir / "results"

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls, _file_values.get()))


class _FileSource(PydanticBaseSettingsSource):
    """The YAML file's values, below env vars in precedence."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


_file_values: ContextVar[dict[str, Any]] = ContextVar("_file_values", default={})  # noqa: B039


def load_settings(config_file: Path | None, **overrides: Any) -> Settings:
    """Build the settings from an optional YAML file and command-line overrides.

    Raise ConfigError with a message that names the file and the bad key.
    """
    from pydantic import ValidationError

    file_values: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {config_file} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file} must hold a mapping of keys")
        file_values = loaded
    else:
        file_values = {"listen_address": "127.0.0.1:9090"}
        values["embedded_default"] = True
    values.update({k: v for k, v in overrides.items() if v is not None})
    token = _file_values.set(file_values)
    try:
        return Settings(**values)
    except ValidationError as exc:
        where = f"config file {config_file}" if config_file else "settings"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc
    finally:
        _file_values.reset(token)


def parse_listen_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:9090`` for IPv6); raise ConfigError if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen address {address!r} must look like 127.0.0.1:9090")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - only when the operator asks
