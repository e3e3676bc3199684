"""The catalog: applications loaded from workflow files, deployed on the configured environments.

One workflow ID per (application, environment, exposed workflow):
``<application>@<environment>@<workflow>`` (docs/compatibility.md, "Routes").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from hpcwaas.api.models import WorkflowDetail, WorkflowPublic
from hpcwaas.catalog.dag import topological_order
from hpcwaas.catalog.errors import (
    CatalogFileError,
    MalformedWorkflowId,
    WorkflowForbidden,
    WorkflowNotFound,
)
from hpcwaas.catalog.fit import LOCAL_KIND, Traits, fit
from hpcwaas.catalog.loader import (
    FileProblem,
    LoadedFile,
    not_placed,
    placed_by_hosts,
    read_application,
)
from hpcwaas.catalog.model import ApplicationSpec, WorkflowSpec

log = logging.getLogger(__name__)

WORKFLOW_ID_FORM = "<application>@<environment>@<workflow>"
_SUFFIXES = (".yaml", ".yml")
MAX_WORKFLOW_ID_LENGTH = 512
# The workflow name of an application's deployment: a name no workflow can take (checks.py
# refuses '.'), so its workflow ID, <application>@<environment>@.deployment, names nothing else.
DEPLOYMENT_NAME = ".deployment"


@dataclass(frozen=True)
class DeployedWorkflow:
    """One exposed workflow of an application on one environment: what a workflow ID names."""

    id: str
    application: ApplicationSpec = field(compare=False, repr=False)
    environment: str
    environment_name: str
    name: str
    spec: WorkflowSpec = field(compare=False, repr=False)
    digest: str
    source: Path
    # Trigger inputs that give the cluster login, first given wins (a TOSCA topology's
    # PyCOMPSs rule: <Node>_user, user, <Node>_user_id, user_id); then the user's registered
    # login; then ``default_login`` (a PyCOMPSJob's environment.user_name).
    login_inputs: tuple[str, ...] = ("user_id",)
    default_login: str | None = None

    def to_public(self) -> WorkflowPublic:
        """The workflow as ``GET /workflows`` lists it."""
        return WorkflowPublic(
            id=self.id,
            name=self.name,
            application_id=self.application.application,
            environment_id=self.environment,
            environment_name=self.environment_name,
            description=self.spec.description,
        )

    def to_detail(self) -> WorkflowDetail:
        """The workflow with its input schema, steps (in run order) and output names."""
        return WorkflowDetail(
            **self.to_public().model_dump(),
            inputs=[spec.to_public(name) for name, spec in self.spec.inputs.items()],
            steps=self.step_order(),
            outputs=list(self.spec.outputs),
        )

    @property
    def is_deployment(self) -> bool:
        """Whether this is an application's deployment, not a workflow users trigger."""
        return self.name == DEPLOYMENT_NAME

    def other_environments(self) -> list[str]:
        """The environments its steps name besides its own (``environment:``), in file order."""
        named = [s.environment for s in (*self.spec.steps.values(), *self.spec.on_failure.values())]
        return list(dict.fromkeys(e for e in named if e is not None and e != self.environment))

    def step_order(self) -> list[str]:
        """The steps in an order where each comes after its needs; ties in file order."""
        return topological_order({name: step.needs for name, step in self.spec.steps.items()})


def parse_workflow_id(workflow_id: str) -> tuple[str, str, str]:
    """Split a workflow ID into (application, environment, workflow); MalformedWorkflowId if not."""
    parts = workflow_id.split("@")
    if len(parts) != 3 or not all(parts) or len(workflow_id) > MAX_WORKFLOW_ID_LENGTH:
        raise MalformedWorkflowId(
            f"malformed workflow ID {workflow_id[:200]!r}: expected {WORKFLOW_ID_FORM}, "
            "e.g. demo@local@hello"
        )
    return parts[0], parts[1], parts[2]


class Catalog:
    """Every deployed, exposed workflow, with the problems met while loading the files.

    ``refused`` maps each file that was not loaded to its problems; ``file_problems`` holds
    every problem (refusals and warnings) with its place; ``problems`` the same as text.
    """

    def __init__(
        self,
        applications: dict[str, ApplicationSpec],
        deployed: Iterable[DeployedWorkflow],
        environments: dict[str, str],
        problems: list[str] | None = None,
        *,
        file_problems: list[FileProblem] | None = None,
        refused: dict[Path, list[FileProblem]] | None = None,
        sources: dict[str, Path] | None = None,
        files: list[Path] | None = None,
        unavailable: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.applications = applications
        self.environments = environments
        self.file_problems: list[FileProblem] = list(file_problems or [])
        self.problems: list[str] = list(problems or [str(p) for p in self.file_problems])
        self.refused: dict[Path, list[FileProblem]] = dict(refused or {})
        self.sources: dict[str, Path] = dict(sources or {})
        self.files: list[Path] = list(files or [])  # every file read, in load order
        # per application, the workflows not offered and why (TOSCA nodes not runnable here)
        self.unavailable: dict[str, dict[str, str]] = dict(unavailable or {})
        self._workflows = {w.id: w for w in deployed if not w.is_deployment}
        # the applications' deployments, by (application, environment); never exposed
        self.deployments: dict[tuple[str, str], DeployedWorkflow] = {
            (w.application.application, w.environment): w for w in deployed if w.is_deployment
        }
        self._deployed_on = {
            app: {env for env in spec.environments if env in environments}
            for app, spec in applications.items()
        }

    @classmethod
    def load(
        cls,
        dirs: list[Path],
        environments: dict[str, str] | None,
        environment_kinds: Mapping[str, str] | None = None,
        environment_hosts: Mapping[str, str] | None = None,
        environment_services: Mapping[str, frozenset[str]] | None = None,
    ) -> Catalog:
        """Load every *.yaml / *.yml file of ``dirs`` (a file path loads that file alone).

        ``environments`` maps environment IDs to display names; ``environment_kinds`` maps
        them to their kind (``local``, ``slurm``), ``local`` when not given. An application
        with ``slurm`` or ``pycompss`` steps is not deployed on a ``local`` environment.
        ``environments=None`` takes each file's environments as given, of unknown kind
        (how ``hpcwaas-api workflows validate`` checks files without a server config).
        ``environment_hosts`` maps them to their login host: a TOSCA topology's
        AbstractEnvironment is deployed on the environments whose host is its
        ``cluster_login_host`` (with ``environments=None``, the hosts stand for them).
        ``environment_services`` maps them to the remote services they have (``airflow``...),
        none when not given (see ``fit``).
        """
        kinds = dict(environment_kinds or {})
        found: list[FileProblem] = []
        refused: dict[Path, list[FileProblem]] = {}
        applications: dict[str, ApplicationSpec] = {}
        sources: dict[str, Path] = {}
        deployed: list[DeployedWorkflow] = []
        unavailable: dict[str, dict[str, str]] = {}
        all_environments: dict[str, str] = dict(environments or {})
        files = workflow_files(dirs, found)
        for path in files:
            try:
                loaded = read_application(path)
            except CatalogFileError as exc:
                details = exc.details or [FileProblem(path, None, text) for text in exc.problems]
                for problem in details:
                    log.error("workflow file not loaded: %s", problem)
                found.extend(details)
                refused[path] = details
                continue
            for warning in loaded.warnings:
                log.warning("%s", warning)
            found.extend(loaded.warnings)
            if environments is not None and loaded.undecided is not None:
                loaded = not_placed(loaded, found)
            if loaded.environment_hosts and environments is not None:
                loaded = placed_by_hosts(loaded, environment_hosts or {}, found)
            app = loaded.application
            if app.application in applications:
                problem = FileProblem(
                    path,
                    loaded.line(("application",)),
                    f"application {app.application!r} is already defined by "
                    f"{sources[app.application]}; this file is not loaded",
                    "give each application its own id, or remove one of the files",
                )
                log.error("workflow file not loaded: %s", problem)
                found.append(problem)
                refused[path] = [problem]
                continue
            applications[app.application] = app
            sources[app.application] = path
            unavailable[app.application] = loaded.unavailable
            if environments is None:
                given = {env: env for env in app.environments}
                all_environments.update(given)
                deployed.extend(_deploy(loaded, given, None, None, found))
            else:
                services = dict(environment_services or {})
                deployed.extend(_deploy(loaded, environments, kinds, services, found))
        return cls(
            applications,
            deployed,
            all_environments,
            file_problems=found,
            refused=refused,
            sources=sources,
            files=files,
            unavailable=unavailable,
        )

    @property
    def workflows(self) -> Mapping[str, DeployedWorkflow]:
        """Every deployed, exposed workflow by ID, whoever may use it (read-only)."""
        return MappingProxyType(self._workflows)

    def visible(self, user_id: str, groups: frozenset[str] = frozenset()) -> list[DeployedWorkflow]:
        """The exposed workflows this user may see and trigger, sorted by ID."""
        return [
            self._workflows[key]
            for key in sorted(self._workflows)
            if self._workflows[key].application.access.allows(user_id, groups)
        ]

    def by_id(self, workflow_id: str) -> DeployedWorkflow | None:
        """The deployed, exposed workflow with this ID, without any authorization check."""
        return self._workflows.get(workflow_id)

    def runnable(self, workflow_id: str) -> DeployedWorkflow | None:
        """What an execution of this workflow ID runs: an exposed workflow or a deployment."""
        workflow = self._workflows.get(workflow_id)
        if workflow is None:
            application, _, rest = workflow_id.partition("@")
            environment, _, name = rest.partition("@")
            if name == DEPLOYMENT_NAME:
                workflow = self.deployments.get((application, environment))
        return workflow

    def deployment(self, application: str, environment: str) -> DeployedWorkflow | None:
        """The deployment of ``application`` on ``environment``, if the application has one."""
        return self.deployments.get((application, environment))

    def get(
        self, workflow_id: str, user_id: str, groups: frozenset[str] = frozenset()
    ) -> DeployedWorkflow:
        """The workflow this user may trigger; raise the matching CatalogError if none."""
        application_id, environment, name = parse_workflow_id(workflow_id)
        app = self.applications.get(application_id)
        if app is None:
            raise WorkflowNotFound(
                f"no application {application_id!r} (workflow ID {workflow_id!r})"
            )
        if environment not in self._deployed_on.get(application_id, set()):
            if environment not in self.environments:
                raise WorkflowNotFound(
                    f"no environment {environment!r} (workflow ID {workflow_id!r})"
                )
            raise WorkflowNotFound(
                f"application {application_id!r} is not deployed on environment {environment!r}"
            )
        workflow = self._workflows.get(workflow_id)
        reason = self.unavailable.get(application_id, {}).get(name)
        if workflow is None and reason is not None and app.access.allows(user_id, groups):
            raise WorkflowNotFound(f"workflow {name!r} is not offered by this server: {reason}")
        if workflow is None:
            # Unexposed and undefined look the same, so an ID reveals nothing hidden.
            raise WorkflowNotFound(
                f"application {application_id!r} has no exposed workflow {name!r} "
                f"on environment {environment!r}"
            )
        if not app.access.allows(user_id, groups):
            raise WorkflowForbidden(
                f"you are not authorized to use the workflows of application {application_id!r}"
            )
        return workflow


def workflow_files(dirs: list[Path], problems: list[FileProblem]) -> list[Path]:
    """The workflow files of ``dirs`` in load order; a missing directory is a problem."""
    files: list[Path] = []
    for directory in dirs:
        if directory.is_file():
            files.append(directory)
            continue
        if not directory.is_dir():
            problem = FileProblem(
                directory,
                None,
                "does not exist (no such file or directory)",
                "check the path (for a server: catalog_dirs in its config)",
            )
            log.error("%s", problem)
            problems.append(problem)
            continue
        files.extend(
            sorted(
                p
                for p in directory.iterdir()
                if p.suffix in _SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
        )
    return files


def _deploy(
    loaded: LoadedFile,
    environments: dict[str, str],
    kinds: Mapping[str, str] | None,
    services: Mapping[str, frozenset[str]] | None,
    problems: list[FileProblem],
) -> list[DeployedWorkflow]:
    app = loaded.application
    deployed: list[DeployedWorkflow] = []
    if not app.expose:
        problem = FileProblem(
            loaded.path,
            loaded.line(("application",)),
            f"warning: application {app.application!r} exposes no workflow, so nobody can use it",
            f"list the workflows to offer under expose (defined: {', '.join(app.workflows)})",
            warning=True,
        )
        log.warning("%s", problem)
        problems.append(problem)
    # Unknown kinds and services (files checked without a config) may run any step.
    traits = None
    if kinds is not None:
        traits = {
            env: Traits(kinds.get(env, LOCAL_KIND), (services or {}).get(env, frozenset()))
            for env in environments
        }
    seen: set[str] = set()
    for index, environment in enumerate(app.environments):
        if environment in seen:
            continue
        seen.add(environment)
        if environment not in environments:
            configured = ", ".join(environments) or "none"
            problem = FileProblem(
                loaded.path,
                loaded.line(("environments", index)),
                f"warning: application {app.application!r} names environment {environment!r}, "
                "which is not configured; it is deployed on the others only",
                f"configure it, or remove it from the list (configured: {configured})",
                warning=True,
            )
            log.warning("%s", problem)
            problems.append(problem)
            continue
        fitted = fit(loaded, environment, traits)
        if fitted.problems:
            for problem in fitted.problems:
                log.error("%s", problem)
            problems.extend(fitted.problems)
            continue
        for choice in fitted.choices:
            log.info("%s: %s", loaded.path, choice)
        for name in dict.fromkeys(app.expose):
            deployed.append(
                DeployedWorkflow(
                    id=f"{app.application}@{environment}@{name}",
                    application=app,
                    environment=environment,
                    environment_name=environments[environment],
                    name=name,
                    spec=fitted.workflows[name],
                    digest=loaded.digest,
                    source=loaded.path,
                    **loaded.logins.get(name, {}),
                )
            )
        if fitted.deployment is not None:
            deployed.append(
                DeployedWorkflow(
                    id=f"{app.application}@{environment}@{DEPLOYMENT_NAME}",
                    application=app,
                    environment=environment,
                    environment_name=environments[environment],
                    name=DEPLOYMENT_NAME,
                    spec=fitted.deployment,
                    digest=loaded.digest,
                    source=loaded.path,
                )
            )
    return deployed
