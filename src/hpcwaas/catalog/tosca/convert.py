"""A TOSCA topology turned into a plain document of our workflow format.

The result goes through the normal validation (``ApplicationSpec`` and the checks), so the
importer relies only on the documented format. ``lines`` maps the key paths of the result
to lines of the topology file, so that every problem points into the file the developer
wrote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcwaas.catalog.tosca.deployment import DeploymentPhase, NodeProperty, deployment_phase
from hpcwaas.catalog.tosca.dls import STAGE_OUT_TYPE
from hpcwaas.catalog.tosca.fates import (
    IMAGE_REQUIREMENT,
    image_source,
    node_fates,
    pending_reasons,
    unused_inputs,
)
from hpcwaas.catalog.tosca.functions import FunctionError, Resolver
from hpcwaas.catalog.tosca.images import IMAGE_TRANSFER_TYPE, moved_image
from hpcwaas.catalog.tosca.nodes import (
    NO_DATA_CATALOGUE,
    OLD_PYCOMPSS_TYPE,
    RUNNABLE_TYPES,
    NodeConverter,
    unknown_properties,
)
from hpcwaas.catalog.tosca.problems import ToscaImportError, ToscaProblem
from hpcwaas.catalog.tosca.sites import endpoint_of, place_topology, topology_workflow_loc
from hpcwaas.catalog.tosca.tags import INPUTS_TAG, PROPERTIES_TAG, read_tags
from hpcwaas.catalog.tosca.topology import NodeTemplate, Topology, ToscaInput, parse_topology
from hpcwaas.catalog.tosca.workflows import NodeAction, node_actions
from hpcwaas.catalog.yamlfile import Location, line_of

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("alien_dsl_3_0_0",)
_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean", "float": "number"}


@dataclass
class ConvertedTopology:
    """Our document, where its keys come from in the topology, and the hosts to match."""

    document: dict[str, Any]
    lines: dict[Location, int]
    environment_hosts: list[str] = field(default_factory=list)
    # workflow -> {"login_inputs": (...), "default_login": ...} (see DeployedWorkflow)
    logins: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[ToscaProblem] = field(default_factory=list)
    # why no environment is decided (reported when the catalog loads it with a config)
    undecided: str | None = None
    # our step keys -> the TOSCA terms for them ("node 'Job' property application.command")
    terms: dict[Location, str] = field(default_factory=dict)
    # workflows not offered, and why (a node this release cannot run)
    unavailable: dict[str, str] = field(default_factory=dict)


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
    topology.inputs += _tag_inputs(topology, tags.inputs, problems)
    _tag_properties(topology, tags.properties, problems)
    lines: dict[Location, int] = {}

    def place(ours: Location, theirs: Location) -> None:
        line = line_of(tosca_lines, theirs)
        if line is not None:
            lines[ours] = line

    name = topology.metadata.get("template_name") or path.stem
    place(("application",), ("metadata", "template_name"))
    # Alien4Cloud's own workflows (install, start...) delegate to its orchestrator: only the
    # exposed ones are imported (all of them when none is exposed, to report their problems).
    chosen = [w for w in topology.workflows if w in tags.workflows] or list(topology.workflows)
    workflows: dict[str, Any] = {}
    logins: dict[str, dict[str, Any]] = {}
    nodes_of: dict[str, list[str]] = {}
    warnings: list[ToscaProblem] = []
    terms: dict[Location, str] = {}
    unavailable: dict[str, str] = {}
    # The deployment phase is what the workflows do not call; its images reach their jobs.
    actions = {w: _actions(topology, w, problems) for w in chosen}
    called = {action.node for found in actions.values() for action in found}
    phase = deployment_phase(topology, called, tags, _node_property(topology), problems, warnings)
    for workflow_name in chosen:
        imported = _workflow(
            topology, workflow_name, actions[workflow_name], phase, problems, place, terms
        )
        if imported is None:
            continue
        converted, nodes, reasons, gaps = imported
        nodes_of[workflow_name] = nodes
        warnings += _endpoint_inputs(topology, nodes, converted["inputs"])
        # each gap where it is in the file; the other reasons where the workflow is
        warnings += [
            ToscaProblem(
                gap.loc,
                f"warning: workflow {workflow_name!r} is not offered: {gap.message}",
                gap.hint,
            )
            for gap in gaps
        ]
        if reasons:
            warnings.append(
                ToscaProblem(
                    topology_workflow_loc(workflow_name),
                    f"warning: workflow {workflow_name!r} is not offered: {'; '.join(reasons)}",
                    "see docs/tosca-import.md#what-each-node-becomes",
                )
            )
        if reasons or gaps:
            unavailable[workflow_name] = "; ".join([*reasons, *(gap.message for gap in gaps)])
            continue
        workflows[workflow_name] = converted
        logins[workflow_name] = _login(topology, converted)
    deployed_nodes = [node.name for node in phase.nodes] if phase.section is not None else []
    placement = place_topology(topology, tags, nodes_of, problems, deployed_nodes)
    deployment = phase.section
    for section in [*workflows.values(), *([deployment] if deployment is not None else [])]:
        for step_name, step in section["steps"].items():
            if step_name in placement.node_environments:
                step["environment"] = placement.node_environments[step_name]
    if deployment is not None:
        called |= {node.name for node in phase.nodes}  # run by the deployment
        for node in phase.nodes:
            _place_step(("deployment", "steps"), node, deployment["steps"], place, terms)
    warnings += node_fates(topology, called, RUNNABLE_TYPES)
    workflow_inputs = {i.name for w in nodes_of for i in topology.workflows[w].inputs}
    warnings += unused_inputs(topology, called, workflow_inputs)
    for node in topology.nodes.values():
        if node.name not in called:  # the called ones were checked with their workflow
            problems.extend(unknown_properties(node))
    if problems:  # a deployment-phase node may have been checked twice: say it once
        raise ToscaImportError(list(dict.fromkeys(problems)))
    result: dict[str, Any] = {
        "application": str(name),
        "environments": placement.environments,
        "expose": [w for w in tags.workflows if w in workflows or w not in nodes_of],
        "access": {"users": tags.users},
        "workflows": workflows,
    }
    if deployment is not None:
        result["deployment"] = deployment
    description = document.get("description")
    if isinstance(description, str) and description.strip():
        result["description"] = description
    lines[()] = 1
    return ConvertedTopology(
        result, lines, placement.hosts, logins, warnings, placement.undecided, terms, unavailable
    )


def _tag_inputs(
    topology: Topology, definitions: dict[str, dict[str, Any]], problems: list[ToscaProblem]
) -> list[ToscaInput]:
    """The inputs the operator declares for the topology (``hpcwaas-inputs``), as if it did."""
    declared = {i.name for i in topology.inputs} | {
        i.name for w in topology.workflows.values() for i in w.inputs
    }
    added: list[ToscaInput] = []
    for name, definition in definitions.items():
        if name in declared:
            problems.append(
                ToscaProblem(
                    (),
                    f"{INPUTS_TAG}: the topology declares the input {name!r} itself",
                    f"remove {name!r} from {INPUTS_TAG}",
                )
            )
            continue
        added.append(ToscaInput(name, definition, ("metadata", INPUTS_TAG, name)))
    return added


def _tag_properties(
    topology: Topology, given: dict[str, dict[str, Any]], problems: list[ToscaProblem]
) -> None:
    """The property values the operator gives (``hpcwaas-properties``), as if the file did.

    Each value replaces the property's whole value; it is then checked as the file's own.
    """
    for name, properties in given.items():
        node = topology.nodes.get(name)
        if node is None:
            problems.append(
                ToscaProblem(
                    (),
                    f"{PROPERTIES_TAG}: the topology has no node {name!r}",
                    f"name one of its nodes: {', '.join(sorted(topology.nodes)) or '(none)'}",
                )
            )
            continue
        node.properties.update(properties)


def _endpoint_inputs(
    topology: Topology, nodes: list[str], inputs: dict[str, Any]
) -> list[ToscaProblem]:
    """Inputs that give a job's endpoint: here the workflow ID decides, so none is required."""
    warnings: list[ToscaProblem] = []
    for name in nodes:
        found = endpoint_of(topology.nodes[name])
        value = found[0] if found is not None else None
        names = [f"{name}_endpoint", "endpoint"]
        if isinstance(value, dict) and isinstance(value.get("get_input"), str):
            names.append(value["get_input"])
        for input_name in names:
            spec = inputs.get(input_name)
            if spec is None or not spec["required"]:
                continue
            spec["required"] = False
            warnings.append(
                ToscaProblem(
                    ("topology_template", "node_templates", name),
                    f"warning: input {input_name!r} gives the endpoint of node {name!r}, "
                    "which the workflow ID's environment decides here: it is not required, "
                    "and a value given does not change where the job runs",
                    "trigger the workflow ID of the environment to run on",
                )
            )
    return warnings


def _login(topology: Topology, workflow: dict[str, Any]) -> dict[str, Any]:
    """Where the cluster login comes from, by the PyCOMPSs plugin's rule.

    Input ``<Node>_user``, then ``user``, then ``<Node>_user_id``, then ``user_id``, then the
    node's ``environment.user_name``; one rule per execution (for every environment it runs
    on), so the first PyCOMPSs node of the workflow decides.
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


def _actions(
    topology: Topology, workflow_name: str, problems: list[ToscaProblem]
) -> list[NodeAction]:
    """The nodes a workflow calls (a problem if none, unless it has others)."""
    workflow = topology.workflows[workflow_name]
    problems.extend(workflow.problems)
    before = len(problems)
    actions = node_actions(workflow, topology, problems)
    if not actions and len(problems) == before:
        problems.append(
            ToscaProblem(
                workflow.loc,
                f"workflow {workflow_name!r} runs no node (no call_operation step)",
                "call tosca.interfaces.node.lifecycle.Runnable.submit/run on a node",
            )
        )
    return actions


def _workflow(
    topology: Topology,
    workflow_name: str,
    actions: list[NodeAction],
    phase: DeploymentPhase,
    problems: list[ToscaProblem],
    place: Any,
    terms: dict[Location, str],
) -> tuple[dict[str, Any], list[str], list[str], list[ToscaProblem]] | None:
    """Our workflow, the nodes it calls, why it cannot run here yet, and what the topology
    leaves out for it (``NodeConverter.gaps``); it can run when both are empty.

    Its PyCOMPSs jobs run in the image their ``img_transfer`` requirement names: moved by the
    deployment phase, or by a step of this workflow.
    """
    workflow = topology.workflows[workflow_name]
    base: Location = ("workflows", workflow_name)
    place(base, workflow.loc)
    inputs = _inputs(topology, workflow.inputs, problems)
    for input_name, (_, loc) in inputs.items():
        place((*base, "inputs", input_name), loc)
    if not actions:
        return None

    images = phase.images() | {
        action.node: moved_image(action.node, by_deployment=False)
        for action in actions
        if topology.nodes[action.node].type == IMAGE_TRANSFER_TYPE
    }
    resolver = Resolver(set(inputs), _node_property(topology))
    converter = NodeConverter(topology, resolver, problems, images)
    steps: dict[str, Any] = {}
    nodes: list[str] = []
    reasons: list[str] = []
    for action in actions:
        node = topology.nodes[action.node]
        nodes.append(node.name)
        reasons += pending_reasons(topology, node, images, phase.missing)
        step = converter.step(node)
        if step is None:
            continue
        if action.needs:
            step["needs"] = action.needs
        steps[action.node] = step
        _place_step((*base, "steps"), node, steps, place, terms)
        place((*base, "steps", action.node, "needs"), workflow.steps[action.first_step].loc)
        if node.type == STAGE_OUT_TYPE and (
            "mid" in node.properties or "register" in node.properties
        ):
            log.info("topology node %s: %s", node.name, NO_DATA_CATALOGUE)
    converted: dict[str, Any] = {
        "inputs": {name: spec for name, (spec, _) in inputs.items()},
        "steps": steps,
    }
    if resolver.secrets:
        converted["secrets"] = resolver.secrets
    # a data node's step and its counterpart without an Airflow may find the same gap
    return converted, nodes, reasons, list(dict.fromkeys(converter.gaps))


def _place_step(
    base: Location,
    node: NodeTemplate,
    steps: dict[str, Any],
    place: Any,
    terms: dict[Location, str],
) -> None:
    """Where the keys of ``node``'s step come from, for lines and TOSCA terms in errors."""
    if node.name not in steps:
        return
    place((*base, node.name), node.loc)
    for key in steps[node.name]:
        prop = property_of(node.type, key)
        where, term = node.property_loc(*prop.split(".")), f"property {prop}"
        source = image_source(node)
        if key == "kind":  # what the node's type becomes
            where = (*node.loc, "type")
        elif key == "container_image" and source is not None:  # images.required_image
            where, term = (*node.loc, "requirements"), f"requirement {IMAGE_REQUIREMENT} {source!r}"
        place((*base, node.name, key), where)
        if key not in ("kind", "needs", "env"):
            terms[(*base, node.name, key)] = f"node {node.name!r} {term}"


def _node_property(topology: Topology) -> NodeProperty:
    """What resolves ``get_property``/``get_attribute``: a property of a node of ``topology``."""

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

    return node_property


# Which property of a node a key of our step comes from (for lines and terms in errors).
_PROPERTY_OF = {
    "app": "application.command",
    "arguments": "application.arguments",
    "num_nodes": "submission_params.num_nodes",
    "qos": "submission_params.qos",
    "exec_time": "submission_params.extra_compss_opts",
    "extra_options": "submission_params.extra_compss_opts",
    "modules": "submission_params.compss_modules",
    "python_interpreter": "submission_params.python_interpreter",
    "container_image": "application.container_opts.container_image",
    "container_compss_path": "application.container_opts.container_compss_path",
    "container_opts": "application.container_opts.container_opts",
}
# The older PyCOMPSJob has its properties at the top level.
_OLD_PROPERTY_OF = {
    "app": "command",
    "exec_time": "extra_compss_opts",
    "extra_options": "extra_compss_opts",
    "modules": "compss_module_version",
}


def property_of(node_type: str, key: str) -> str:
    """The TOSCA property (dotted) that a key of our step comes from."""
    if node_type == OLD_PYCOMPSS_TYPE:
        return _OLD_PROPERTY_OF.get(key, key)
    return _PROPERTY_OF.get(key, key)
