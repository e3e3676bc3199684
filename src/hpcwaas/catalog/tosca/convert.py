"""A TOSCA topology turned into a plain document of our workflow format.

The result goes through the normal validation (``ApplicationSpec`` and the checks), so the
importer relies only on the documented format. ``lines`` maps the key paths of the result
to lines of the topology file, so that every problem points into the file the developer
wrote.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcwaas.catalog.tosca.functions import FunctionError, Resolver
from hpcwaas.catalog.tosca.nodes import NO_DATA_CATALOGUE, STAGE_OUT_TYPE, NodeConverter
from hpcwaas.catalog.tosca.problems import ToscaImportError, ToscaProblem
from hpcwaas.catalog.tosca.tags import read_tags
from hpcwaas.catalog.tosca.topology import ENVIRONMENT_TYPE, Topology, ToscaInput, parse_topology
from hpcwaas.catalog.tosca.workflows import node_actions
from hpcwaas.catalog.yamlfile import Location, line_of

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("alien_dsl_3_0_0",)
_PLACEHOLDER = re.compile(r"[^A-Za-z0-9_.-]+")
_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean", "float": "number"}


@dataclass
class ConvertedTopology:
    """Our document, where its keys come from in the topology, and the hosts to match."""

    document: dict[str, Any]
    lines: dict[Location, int]
    environment_hosts: list[str] = field(default_factory=list)
    # workflow -> {"login_inputs": (...), "default_login": ...} (see DeployedWorkflow)
    logins: dict[str, dict[str, Any]] = field(default_factory=dict)


def is_topology(document: Any) -> bool:
    """Whether a YAML document is a TOSCA topology rather than our format."""
    return isinstance(document, dict) and "tosca_definitions_version" in document


def convert_topology(
    document: dict[str, Any], tosca_lines: dict[Location, int], path: Path
) -> ConvertedTopology:
    """Our document for ``document``; ToscaImportError listing every problem if not possible."""
    problems: list[ToscaProblem] = []
    version = document.get("tosca_definitions_version")
    if version not in SUPPORTED_VERSIONS:
        problems.append(
            ToscaProblem(
                ("tosca_definitions_version",),
                f"unsupported tosca_definitions_version {version!r}",
                f"export the topology from Alien4Cloud as {', '.join(SUPPORTED_VERSIONS)}",
            )
        )
    topology = parse_topology(document, problems)
    tags = read_tags(topology.metadata, path, problems)
    lines: dict[Location, int] = {}

    def place(ours: Location, theirs: Location) -> None:
        line = line_of(tosca_lines, theirs)
        if line is not None:
            lines[ours] = line

    name = topology.metadata.get("template_name") or path.stem
    place(("application",), ("metadata", "template_name"))
    hosts = _environment_hosts(topology)
    # Until deployment matches the hosts, they stand in for the environments' IDs.
    environments = tags.environments or [
        _PLACEHOLDER.sub("-", h).strip("-.") or "host" for h in hosts
    ]
    if not environments:
        problems.append(
            ToscaProblem(
                ("topology_template", "node_templates"),
                "no environment: the topology has no AbstractEnvironment with a "
                "cluster_login_host, and no hpcwaas-environments tag",
                "add an eflows4hpc.env.nodes.AbstractEnvironment node with cluster_login_host, "
                "or the tag hpcwaas-environments: <environment>[,<environment>]",
            )
        )
    # Alien4Cloud's own workflows (install, start...) delegate to its orchestrator: only the
    # exposed ones are imported (all of them when none is exposed, to report their problems).
    chosen = [w for w in topology.workflows if w in tags.workflows] or list(topology.workflows)
    workflows: dict[str, Any] = {}
    logins: dict[str, dict[str, Any]] = {}
    for workflow_name in chosen:
        converted = _workflow(topology, workflow_name, problems, place)
        if converted is not None:
            workflows[workflow_name] = converted
            logins[workflow_name] = _login(topology, converted)
    if problems:
        raise ToscaImportError(problems)
    result: dict[str, Any] = {
        "application": str(name),
        "environments": environments,
        "expose": tags.workflows,
        "access": {"users": tags.users},
        "workflows": workflows,
    }
    description = document.get("description")
    if isinstance(description, str) and description.strip():
        result["description"] = description
    lines[()] = 1
    return ConvertedTopology(result, lines, [] if tags.environments else hosts, logins)


def _login(topology: Topology, workflow: dict[str, Any]) -> dict[str, Any]:
    """Where the cluster login comes from, by the PyCOMPSs plugin's rule.

    Input ``<Node>_user``, then ``user``, then ``<Node>_user_id``, then ``user_id``, then the
    node's ``environment.user_name``; one execution runs under one account, so the first
    PyCOMPSs node of the workflow decides.
    """
    declared = set(workflow["inputs"])
    for name, step in workflow["steps"].items():
        if step["kind"] != "pycompss":
            continue
        chain = [n for n in (f"{name}_user", "user", f"{name}_user_id") if n in declared]
        environment = topology.nodes[name].properties.get("environment")
        user_name = environment.get("user_name") if isinstance(environment, dict) else None
        return {
            "login_inputs": (*chain, "user_id"),
            "default_login": user_name if isinstance(user_name, str) and user_name else None,
        }
    return {}


def _environment_hosts(topology: Topology) -> list[str]:
    hosts: list[str] = []
    for node in topology.nodes.values():
        if node.type == ENVIRONMENT_TYPE:
            host = node.properties.get("cluster_login_host")
        elif isinstance(node.properties.get("environment"), dict):
            host = node.properties["environment"].get("endpoint")
        else:
            continue
        if isinstance(host, str) and host and host not in hosts:
            hosts.append(host)
    return hosts


def _inputs(
    topology: Topology, workflow_inputs: list[ToscaInput], problems: list[ToscaProblem]
) -> dict[str, tuple[dict[str, Any], Location]]:
    """Topology inputs, then the workflow's own (which win)."""
    found: dict[str, tuple[dict[str, Any], Location]] = {}
    for declared in [*topology.inputs, *workflow_inputs]:
        definition = declared.definition
        tosca_type = definition.get("type", "string")
        ours = _TYPES.get(tosca_type) if isinstance(tosca_type, str) else None
        if ours is None:
            problems.append(
                ToscaProblem(
                    (*declared.loc, "type"),
                    f"input {declared.name!r}: unsupported type {tosca_type!r}",
                    f"use one of the supported input types: {', '.join(_TYPES)}",
                )
            )
            continue
        spec: dict[str, Any] = {"type": ours}
        if "default" in definition:
            spec["default"] = definition["default"]
        # TOSCA's `required` defaults to true; with a default the input may be left out.
        spec["required"] = bool(definition.get("required", True)) and "default" not in definition
        if isinstance(definition.get("description"), str):
            spec["description"] = definition["description"]
        found[declared.name] = (spec, declared.loc)
    return found


def _workflow(
    topology: Topology,
    workflow_name: str,
    problems: list[ToscaProblem],
    place: Any,
) -> dict[str, Any] | None:
    workflow = topology.workflows[workflow_name]
    problems.extend(workflow.problems)
    base: Location = ("workflows", workflow_name)
    place(base, workflow.loc)
    inputs = _inputs(topology, workflow.inputs, problems)
    for input_name, (_, loc) in inputs.items():
        place((*base, "inputs", input_name), loc)

    def node_property(target: str, keys: list[str], loc: Location) -> tuple[Any, Location]:
        node = topology.nodes.get(target)
        if node is None:
            raise FunctionError(
                ToscaProblem(loc, f"no node template {target!r}", "name a node, or SELF")
            )
        value: Any = node.properties
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                raise FunctionError(
                    ToscaProblem(
                        loc,
                        f"node {target!r} has no property {'.'.join(keys)!r}",
                        "name a property the node sets",
                    )
                )
            value = value[key]
        return value, node.property_loc(*keys)

    before = len(problems)
    resolver = Resolver(set(inputs), node_property)
    converter = NodeConverter(topology, resolver, problems)
    steps: dict[str, Any] = {}
    for action in node_actions(workflow, topology, problems):
        node = topology.nodes[action.node]
        step = converter.step(node)
        if step is None:
            continue
        if action.needs:
            step["needs"] = action.needs
        steps[action.node] = step
        place((*base, "steps", action.node), node.loc)
        for key in step:
            prop = _PROPERTY_OF.get(key, key)
            place((*base, "steps", action.node, key), node.property_loc(*prop.split(".")))
        place((*base, "steps", action.node, "needs"), workflow.steps[action.first_step].loc)
        if node.type == STAGE_OUT_TYPE and (
            "mid" in node.properties or "register" in node.properties
        ):
            log.info("topology node %s: %s", node.name, NO_DATA_CATALOGUE)
    if not steps and len(problems) == before:
        problems.append(
            ToscaProblem(
                workflow.loc,
                f"workflow {workflow_name!r} runs no node (no call_operation step)",
                "call tosca.interfaces.node.lifecycle.Runnable.submit/run on a node",
            )
        )
        return None
    converted: dict[str, Any] = {
        "inputs": {name: spec for name, (spec, _) in inputs.items()},
        "steps": steps,
    }
    if resolver.secrets:
        converted["secrets"] = resolver.secrets
    return converted


# Which property of a node a key of our step comes from (for lines in errors).
_PROPERTY_OF = {
    "app": "application.command",
    "arguments": "application.arguments",
    "num_nodes": "submission_params.num_nodes",
    "qos": "submission_params.qos",
    "extra_options": "submission_params.extra_compss_opts",
    "modules": "submission_params.compss_modules",
    "python_interpreter": "submission_params.python_interpreter",
    "container_image": "application.container_opts.container_image",
}
