"""The data logistics node types (``dls.ansible.nodes.*``) as ``dag_run`` steps.

Each type triggers one DAG of the Data Logistics Service with a ``conf`` built from its
properties, as the DLS TOSCA components did: the type's table below gives, for each property,
the conf key (the DAG's param) it becomes. ``input_name_for_<property>`` names a workflow
input that gives the value instead, when the workflow declares it; a property with neither is
left out (the DAG's default applies). The cluster account (host, port, login, vault_id) comes
from the execution (``cluster_access``); ``target_host``, when given, becomes ``host``.

The tables were written from each DAG's ``params`` (eflows4hpc/dls-dags) and the components'
properties (eflows4hpc/documentation); docs/tosca-import.md carries them for readers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hpcwaas.catalog.tosca.functions import Resolver, Template, literal_text
from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.tags import INPUTS_TAG
from hpcwaas.catalog.tosca.topology import NodeTemplate

_PREFIX = "dls.ansible.nodes."
DAG_RUN_TYPE = _PREFIX + "DLSDAGRun"
HTTP2SSH_TYPE = _PREFIX + "HTTP2SSH"
STAGE_OUT_TYPE = _PREFIX + "DLSDAGStageOutData"
_COMMON = frozenset({"target_host"})


@dataclass(frozen=True)
class DagType:
    """How one node type runs: its default DAG and its properties' conf keys."""

    dag: str | None  # None: the node's dag_id is required
    conf: tuple[tuple[str, str], ...] = ()  # (property, conf key)
    cluster_access: tuple[str, ...] = ("",)
    extra_conf: bool = False  # the node's extra_conf map is added to conf as written

    @property
    def properties(self) -> frozenset[str]:
        """The properties the type reads."""
        own = {prop for prop, _ in self.conf} | ({"extra_conf"} if self.extra_conf else set())
        return frozenset(own) | _COMMON


DAG_TYPES: dict[str, DagType] = {
    DAG_RUN_TYPE: DagType(None, extra_conf=True),
    HTTP2SSH_TYPE: DagType(
        "plainhttp2ssh", (("url", "url"), ("target_path", "target"), ("force", "force"))
    ),
    _PREFIX + "DLSDAGStageInData": DagType(
        "taskflow_example", (("oid", "oid"), ("target_path", "target"))
    ),
    _PREFIX + "DLSDAGWebdavStageInData": DagType(
        "webdav_stagein", (("oid", "oid"), ("target_path", "target"), ("force", "force"))
    ),
    STAGE_OUT_TYPE: DagType(
        "upload_example", (("source_path", "source"), ("mid", "mid"), ("register", "register"))
    ),
    _PREFIX + "DLSDAGWebdavStageOutData": DagType(
        "webdav_stageout", (("source_path", "path"), ("oid", "oid"))
    ),
    _PREFIX + "SSH2SSH": DagType(
        "ssh2ssh",
        (("source_path", "source_path"), ("target_path", "target_path")),
        cluster_access=("source_", "target_"),
    ),
    _PREFIX + "DLSDAGModelUpload": DagType(
        "mlflow_upload_model", (("location", "location"), ("subfolder", "subfolder"))
    ),
    _PREFIX + "DLSDAGModelSearchUpload": DagType(
        "model_search_upload",
        (("location", "location"), ("experiment", "experiment_name"), ("subfolder", "subfolder")),
    ),
}


def dag_run_step(
    node: NodeTemplate,
    resolver: Resolver,
    get: Callable[[NodeTemplate, str], Any],
    problems: list[ToscaProblem],
    gaps: list[ToscaProblem],
) -> dict[str, Any]:
    """The ``dag_run`` step of a data logistics node (``get``: a property, resolved); a conf
    value from an input no declaration gives is added to ``gaps`` (``nodes.NodeConverter``)."""
    dag_type = DAG_TYPES[node.type]
    dag_id = get(node, "dag_id")
    if dag_id in (None, ""):
        dag_id = dag_type.dag
    if not isinstance(dag_id, str) or not dag_id:
        problems.append(
            ToscaProblem(
                node.property_loc("dag_id"),
                f"node {node.name!r} ({node.type}) has no dag_id",
                "set dag_id to the DAG of the Data Logistics Service to run",
            )
        )
        dag_id = "?"
    conf: dict[str, Any] = {}
    for prop, key in (*dag_type.conf, ("target_host", "host")):
        value = _value(node, prop, resolver)
        if value is not None:
            conf[key] = value
        elif (gap := undeclared_input(node, prop, resolver.input_names)) is not None:
            gaps.append(gap)
    if dag_type.extra_conf:
        extra = node.properties.get("extra_conf")
        if isinstance(extra, dict):
            loc = node.property_loc("extra_conf")
            conf.update(_data(resolver.resolve_secret_capable(extra, loc, node.name)))
        elif extra is not None:
            problems.append(
                ToscaProblem(
                    node.property_loc("extra_conf"),
                    f"node {node.name!r}: extra_conf must be a map of conf keys to values",
                    "write extra_conf: {key: value, ...}",
                )
            )
    step: dict[str, Any] = {"kind": "dag_run", "dag_id": dag_id, "conf": conf}
    if dag_type.cluster_access != ("",):
        step["cluster_access"] = list(dag_type.cluster_access)
    return step


def undeclared_input(node: NodeTemplate, prop: str, declared: set[str]) -> ToscaProblem | None:
    """When ``input_name_for_<prop>`` names an input no declaration gives (and ``prop`` has
    no value of its own): the original took it from the inputs given at launch."""
    input_name = node.properties.get(f"input_name_for_{prop}")
    if not isinstance(input_name, str) or not input_name or input_name in declared:
        return None
    return ToscaProblem(
        node.property_loc(f"input_name_for_{prop}"),
        f"node {node.name!r} ({node.type}) has no {prop}: it names the input "
        f"{input_name!r} (input_name_for_{prop}), which no input declaration gives",
        f"declare it in the tags file ({INPUTS_TAG}: {{{input_name}: string}}), or set the "
        f"property {prop}",
    )


def _value(node: NodeTemplate, prop: str, resolver: Resolver) -> Any:
    """The conf value of one property: the input it names, else its own value, else None."""
    input_name = node.properties.get(f"input_name_for_{prop}")
    if isinstance(input_name, str) and input_name in resolver.input_names:
        return Template("{{ inputs." + input_name + " }}")
    raw = node.properties.get(prop)
    if raw in (None, ""):
        return None
    value = resolver.resolve_secret_capable(raw, node.property_loc(prop), node.name)
    return _data(value)


def _data(value: Any) -> Any:
    """A resolved value as conf: strings become template text (literal braces escaped),
    numbers and booleans stay JSON values."""
    if isinstance(value, Template):
        return str(value)
    if isinstance(value, str):
        return literal_text(value)
    if isinstance(value, dict):
        return {str(k): _data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_data(v) for v in value]
    return value
