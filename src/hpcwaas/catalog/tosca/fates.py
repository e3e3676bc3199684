"""Nothing dropped in silence: how each node template of a topology ends.

Every node ends one of four ways:

- a step of a workflow (a node type we run, called by an imported workflow);
- part of the deployment phase (``run_in_standard_mode: true`` and called by no workflow):
  Alien4Cloud ran those when the application was deployed on a location;
- configuration of another node (an ``AbstractEnvironment``), whose properties then take
  effect;
- reported by name: a workflow that calls a node we cannot run is not offered (the file
  stays valid: it is the server that lacks the capability), nor one whose PyCOMPSs job needs
  the image of a transfer node (``img_transfer``) that neither it nor the deployment phase
  runs; any other node is a warning.
"""

from __future__ import annotations

from collections.abc import Collection

from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.topology import ENVIRONMENT_TYPE, NodeTemplate, Topology

IMAGE_REQUIREMENT = "img_transfer"


def standard_mode(node: NodeTemplate) -> bool:
    """Whether Alien4Cloud ran the node at deployment (``run_in_standard_mode: true``)."""
    return node.properties.get("run_in_standard_mode") is True


def image_source(node: NodeTemplate) -> str | None:
    """The node an ``img_transfer`` requirement names (where a job's image comes from)."""
    for requirement in node.requirements:
        if not isinstance(requirement, dict):
            continue
        for value in requirement.values():
            if isinstance(value, dict) and value.get("type_requirement") == IMAGE_REQUIREMENT:
                target = value.get("node")
                return target if isinstance(target, str) else None
    return None


def pending_reasons(
    topology: Topology, node: NodeTemplate, images: Collection[str], undeployed: str | None
) -> list[str]:
    """Why a called node cannot run here yet (empty: it can).

    ``images``: the transfer nodes whose image the workflow's jobs can run in (the
    deployment's, the workflow's own); ``undeployed``: why the deployment phase is not made.
    """
    reasons: list[str] = []
    source = image_source(node)
    if source is not None and source in topology.nodes and source not in images:
        if standard_mode(topology.nodes[source]) and undeployed is not None:
            why = f"which the deployment phase moves, and it is not made: {undeployed}"
        else:
            why = (
                "which neither the deployment phase runs (run_in_standard_mode: true, called "
                "by no workflow) nor this workflow"
            )
        reasons.append(
            f"node {node.name!r} takes its container image from {source!r} "
            f"({IMAGE_REQUIREMENT}), {why}"
        )
    return reasons


def node_fates(
    topology: Topology, called: set[str], runnable_types: tuple[str, ...]
) -> list[ToscaProblem]:
    """Warnings for the nodes no imported workflow runs (the others are steps or refused)."""
    image_sources = {s for n in topology.nodes.values() if (s := image_source(n))}
    warnings: list[ToscaProblem] = []
    for node in topology.nodes.values():
        if node.name in called or node.type == ENVIRONMENT_TYPE:
            continue
        hint = "call it from a workflow, or remove it from the topology"
        if standard_mode(node):
            if node.type in runnable_types:
                needs = ""
            else:
                needs = "; it needs a supported node type"
            message = (
                f"node {node.name!r} ({node.type}) belongs to the deployment phase "
                f"(run_in_standard_mode), which is not made for this topology{needs}"
            )
            hint = "see docs/tosca-import.md#the-deployment-phase"
        elif node.name in image_sources:
            continue  # reported with the job that needs its image
        elif node.type in runnable_types:
            message = f"node {node.name!r} ({node.type}) is run by no imported workflow"
        else:
            message = f"node {node.name!r} has the unsupported type {node.type!r}"
        warnings.append(
            ToscaProblem(
                (*node.loc, "type"),
                f"warning: {message}; it is not used",
                hint,
            )
        )
    return warnings


def _inputs_named(value: object) -> set[str]:
    """The inputs a property value names: ``get_input`` anywhere in it."""
    if isinstance(value, dict):
        if set(value) == {"get_input"}:
            name = value["get_input"]
            name = name[0] if isinstance(name, list) and name else name
            return {name} if isinstance(name, str) else set()
        return set().union(*(_inputs_named(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_inputs_named(v) for v in value))
    return set()


# Inputs the service itself reads for every environment (the cluster login, the key).
_ACCOUNT_INPUTS = frozenset({"user_id", "vault_id"})


def unused_inputs(
    topology: Topology, called: set[str], workflow_inputs: set[str]
) -> list[ToscaProblem]:
    """Warnings for topology inputs that only nodes no workflow calls use.

    An input a workflow declares again reaches its PyCOMPSs jobs' environment, and the
    account inputs are the service's own: neither is reported.
    """
    users: dict[str, list[str]] = {}
    for node in topology.nodes.values():
        named = _inputs_named(node.properties)
        named |= {
            v for k, v in node.properties.items() if k.startswith("input_name_for_") and v
        } & {i.name for i in topology.inputs}
        for name in named:
            users.setdefault(name, []).append(node.name)
    warnings: list[ToscaProblem] = []
    for declared in topology.inputs:
        nodes = users.get(declared.name, [])
        if declared.name in workflow_inputs | _ACCOUNT_INPUTS:
            continue
        if nodes and not set(nodes) & called:
            warnings.append(
                ToscaProblem(
                    declared.loc,
                    f"warning: input {declared.name!r} is used only by nodes no workflow runs "
                    f"({', '.join(nodes)}); a value given for it is not used",
                    "see docs/tosca-import.md#what-each-node-becomes",
                )
            )
    return warnings
