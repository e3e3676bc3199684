"""The ``dag_run`` step kind: a run of an Apache Airflow DAG (a Data Logistics Service pipeline).

The step triggers a run of ``dag_id`` on the Airflow of the execution's environment
(``airflow:`` in its configuration), with a ``conf`` built from its settings and the run's
inputs, and follows it to its end (``remote_run``). The execution's cluster account goes into
``conf`` as the DLS pipelines expect it (``host``, ``port``, ``login``, ``vault_id``), under
the prefixes ``cluster_access`` names. Every value reaches the DAG as JSON data, never as code.

``without_airflow`` is the step that does the same work where the environment has no Airflow
(a ``stage_in`` for plainhttp2ssh, a ``stage_out``): the catalog deploys the one or the other
on each environment (``instead``), and says which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import Field

from hpcwaas.catalog.kinds.base import (
    PlannedStep,
    Preparation,
    R,
    StepChecks,
    StepKind,
    StepRuntime,
    StepSettings,
)
from hpcwaas.catalog.kinds.stage_in import StageInKind, StageInStep
from hpcwaas.catalog.kinds.stage_out import StageOutKind, StageOutStep
from hpcwaas.catalog.problem import Problem
from hpcwaas.catalog.render import render_text

DAG_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"  # Airflow's
PREFIX_PATTERN = r"^[A-Za-z0-9_]*$"
# A value that is one input and nothing else: the input's value with its type (number, list).
WHOLE_INPUT = re.compile(r"^\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
ACCESS_KEYS = ("host", "port", "login", "vault_id")
SECRET_SHOWN = "[secret]"  # noqa: S105 (what a dry run shows instead)
# The service an environment needs for this kind (``airflow:`` in its settings).
SERVICE = "airflow"
_COMMON_KEYS = frozenset(StepSettings.model_fields)


class DagRunStep(StepSettings):
    """A run of a DAG on the Airflow (Data Logistics Service) of the environment."""

    kind: Literal["dag_run"]
    dag_id: str = Field(pattern=DAG_ID_PATTERN)
    """The DAG to run, e.g. plainhttp2ssh."""
    conf: dict[str, Any] = Field(default_factory=dict)
    """The run's configuration (the DAG's params). Strings are templates; a string that is
    exactly one input ('{{ inputs.n }}') gives the input's value with its type; other values
    go as written. Secrets ({{ secrets.<name> }}, secret inputs) may be used: such a conf is
    never logged."""
    cluster_access: list[str] = Field(default_factory=lambda: [""])
    """Prefixes under which the execution's cluster account goes into conf as host, port,
    login and vault_id (the SSH key ID): [''] gives them bare (plainhttp2ssh and most DLS
    pipelines), ['source_', 'target_'] as ssh2ssh expects, [] none. A key conf sets is kept."""
    without_airflow: Annotated[StageInStep | StageOutStep, Field(discriminator="kind")] | None = (
        None
    )
    """The step run instead on environments without an Airflow: a stage_in or stage_out doing
    the same work (plainhttp2ssh is a stage_in). It sets its kind's own keys only; needs, env,
    retries, outputs... are this step's."""

    def instead(self) -> StageInStep | StageOutStep | None:
        """The step to run where there is no Airflow (``without_airflow`` with this step's
        needs, env, retries...), or None when the step cannot run there."""
        if self.without_airflow is None:
            return None
        common = {key: getattr(self, key) for key in _COMMON_KEYS if key != "kind"}
        return self.without_airflow.model_copy(update=common)


@dataclass(frozen=True)
class DagRunRequest:
    """A rendered DAG run: what the engine's Airflow driver triggers."""

    dag_id: str
    conf: dict[str, Any]
    secret: bool  # the conf holds a secret: never logged
    service: str = "airflow"
    outputs: dict[str, str] | None = None  # the step's, known beforehand (image_transfer's)


class DagRunKind(StepKind[DagRunStep, DagRunRequest]):
    """Steps whose work an Airflow DAG run does."""

    name = "dag_run"
    settings = DagRunStep
    service = SERVICE
    # The DLS pipelines copy to and from the cluster account: only on cluster environments.
    needs_cluster = True
    # After a restart the step re-attaches to its run (same run ID); nothing starts over.
    reattaches = True

    def check(self, step: DagRunStep, checks: StepChecks) -> list[Problem]:
        """Conf templates may use inputs, step outputs and secrets; prefixes are plain."""
        templates = [(("conf", *path), text) for path, text in _strings(step.conf, ())]
        problems = checks.templates(templates, in_env=True)
        for index, prefix in enumerate(step.cluster_access):
            if not re.fullmatch(PREFIX_PATTERN, prefix):
                problems.append(
                    checks.problem(
                        ("cluster_access", index),
                        f"cluster_access: {prefix!r} is not a conf key prefix",
                        "use letters, digits and _, e.g. cluster_access: ['source_', 'target_']",
                    )
                )
        return problems + _without_airflow_problems(step, checks)

    def without_service(self, step: DagRunStep) -> StepSettings | None:
        """Its ``without_airflow`` step, where the environment has no Airflow."""
        return step.instead()

    def prepare(self, step: DagRunStep, request: Preparation) -> DagRunRequest:
        """The conf rendered, the cluster account added; RenderError for a bad template."""
        secrets = {**(request.secrets or {})}
        inputs = {**request.inputs, **secrets}
        context = request.template_context()
        context["inputs"] = dict(inputs)
        context["secrets"] = dict(request.workflow_secrets or {})
        conf: dict[str, Any] = {}
        access = request.access
        if access is not None:
            values = (access.host, access.port, access.login, access.key_id)
            for prefix in step.cluster_access:
                conf.update(
                    {prefix + key: value for key, value in zip(ACCESS_KEYS, values, strict=True)}
                )
        conf.update(_render(step.conf, context, inputs))
        hidden = [v for v in (*secrets.values(), *context["secrets"].values()) if v]
        text = json.dumps(conf)
        return DagRunRequest(step.dag_id, conf, secret=any(value in text for value in hidden))

    def plan(self, step: DagRunStep, request: Preparation) -> PlannedStep:
        """The DAG and its conf (shown only when it holds no secret)."""
        prepared = self.prepare(step, request)
        shown = SECRET_SHOWN if prepared.secret else json.dumps(prepared.conf, indent=2)
        return PlannedStep(command=f"trigger a run of DAG {step.dag_id}", script=shown)

    def run(self, runtime: StepRuntime[R], name: str, step: DagRunStep, *, resumed: bool) -> R:
        """The environment's Airflow runs it."""
        return runtime.remote_run(self, name, step, resumed=resumed)


def _without_airflow_problems(step: DagRunStep, checks: StepChecks) -> list[Problem]:
    """The step run where there is no Airflow: its own keys only, checked as of its kind."""
    fallback, instead = step.without_airflow, step.instead()
    if fallback is None or instead is None:
        return []
    problems = [
        checks.problem(
            ("without_airflow", key),
            f"without_airflow: {key} is the dag_run step's own",
            f"move {key} up to the dag_run step, which gives it to both",
        )
        for key in sorted(fallback.model_fields_set & _COMMON_KEYS - {"kind"})
    ]
    nested = replace(checks, loc=(*checks.loc, "without_airflow"))
    if isinstance(instead, StageInStep):
        found = StageInKind().check(instead, nested)
    else:
        found = StageOutKind().check(instead, nested)
    named = f"step {checks.name!r} "
    return problems + [
        replace(p, message=p.message.replace(named, named + "without_airflow: ", 1)) for p in found
    ]


def _strings(value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string of a conf value, with where it is."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [found for k, v in value.items() for found in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _strings(v, (*path, i))]
    return []


def _render(value: Any, context: dict[str, Any], inputs: Mapping[str, Any]) -> Any:
    """A conf value with its templates rendered: JSON data, whatever the inputs hold."""
    if isinstance(value, str):
        whole = WHOLE_INPUT.match(value)
        if whole is not None and whole.group(1) in inputs:
            return inputs[whole.group(1)]
        return render_text(value, context)
    if isinstance(value, Mapping):
        return {k: _render(v, context, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context, inputs) for v in value]
    return value
