"""The deployment phase of a topology: its standard-mode nodes, as our ``deployment:``.

Alien4Cloud ran the nodes with ``run_in_standard_mode: true`` that no workflow calls when the
application was deployed on a location. When every such node is of a type we run, they
become the steps of our ``deployment:`` section (run once per environment before any
execution, docs/workflows.md), in the order their requirements on each other give. The
topology inputs they use take the operator's values (``hpcwaas-deployment-inputs`` in the
tags), else the inputs' defaults: nobody triggers a deployment.

While one of them is of a type we do not run, no deployment is made and ``fates.node_fates``
reports each node by name. ``DeploymentPhase.missing`` says why, for the
PyCOMPSs jobs whose container image the phase would have moved (their workflows are not
offered); ``DeploymentPhase.images`` is what those jobs read when it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hpcwaas.catalog.tosca.fates import standard_mode
from hpcwaas.catalog.tosca.functions import Resolver
from hpcwaas.catalog.tosca.images import IMAGE_TRANSFER_TYPE, moved_image
from hpcwaas.catalog.tosca.nodes import RUNNABLE_TYPES, NodeConverter, unread
from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.tags import DEPLOYMENT_INPUTS_TAG, Tags
from hpcwaas.catalog.tosca.topology import ENVIRONMENT_TYPE, NodeTemplate, Topology
from hpcwaas.catalog.yamlfile import Location

NodeProperty = Callable[[str, list[str], Location], tuple[Any, Location]]


@dataclass(frozen=True)
class DeploymentPhase:
    """The standard-mode nodes no workflow calls, and our ``deployment:`` for them, if made."""

    nodes: list[NodeTemplate] = field(default_factory=list)
    section: dict[str, Any] | None = None
    missing: str | None = None  # why it is not made though it has nodes: what to add

    def images(self) -> dict[str, str]:
        """The image each transfer node of the deployment moved: a template of its output."""
        if self.section is None:
            return {}
        return _images(self.nodes, by_deployment=True)


def deployment_phase(
    topology: Topology,
    called: set[str],
    tags: Tags,
    node_property: NodeProperty,
    problems: list[ToscaProblem],
    warnings: list[ToscaProblem],
) -> DeploymentPhase:
    """The deployment phase of ``topology``, whose workflows call the nodes ``called``.

    Made when every node is of a type we run and every topology input they use has a value.
    One that has none (the operator gives it in the tags) is not a problem of the file: the
    deployment is not made, and ``warnings`` say what to give.
    """
    nodes = [
        node
        for node in topology.nodes.values()
        if standard_mode(node) and node.name not in called and node.type != ENVIRONMENT_TYPE
    ]
    if not nodes:
        return DeploymentPhase()
    unrun = [node for node in nodes if node.type not in RUNNABLE_TYPES]
    if unrun:
        return DeploymentPhase(nodes, missing="; ".join(_unrun(node) for node in unrun))
    unvalued: list[tuple[str, ToscaProblem]] = []  # (input, where it is used)
    names = {node.name for node in nodes}
    resolver = Resolver(set(), node_property)
    converter = NodeConverter(topology, resolver, problems, _images(nodes, by_deployment=False))
    steps: dict[str, Any] = {}
    before = len(problems)
    for node in nodes:
        missing = len(unvalued)
        # the properties never read (user_id, vault_id, dls_api_*...) need no value
        properties = {
            k: v if unread(k) else _given(node, v, topology, tags, unvalued, (k,))
            for k, v in node.properties.items()
        }
        if len(unvalued) != missing:
            continue  # an input without a value: converting would only repeat it
        step = converter.step(replace(node, properties=properties))
        if step is None:
            continue
        needs = [n for n in dict.fromkeys(node.required_nodes()) if n in names and n != node.name]
        if needs:
            step["needs"] = needs
        steps[node.name] = step
    if len(problems) != before:
        return DeploymentPhase(nodes, missing="its nodes have the problems reported")
    gaps = list(dict.fromkeys(converter.gaps))
    if gaps:
        warnings.extend(
            ToscaProblem(
                gap.loc, f"warning: {gap.message}; the deployment phase is not made", gap.hint
            )
            for gap in gaps
        )
        return DeploymentPhase(nodes, missing="; ".join(gap.message for gap in gaps))
    if unvalued:
        warnings.extend(
            ToscaProblem(p.loc, f"warning: {p.message}; the deployment phase is not made", p.hint)
            for _, p in unvalued
        )
        given = sorted({name for name, _ in unvalued})
        named = ", ".join(repr(name) for name in given)
        values = ", ".join(f"{name}: <value>" for name in given)
        what = (
            f"its input {named} has no value; give it"
            if len(given) == 1
            else f"its inputs {named} have no value; give them"
        )
        why = f"{what} in the tags file ({DEPLOYMENT_INPUTS_TAG}: {{{values}}})"
        return DeploymentPhase(nodes, missing=why)
    section: dict[str, Any] = {"steps": steps}
    if resolver.secrets:
        section["secrets"] = resolver.secrets
    return DeploymentPhase(nodes, section)


def _images(nodes: list[NodeTemplate], *, by_deployment: bool) -> dict[str, str]:
    """The image each transfer node of ``nodes`` moves, for the jobs that require it."""
    return {
        node.name: moved_image(node.name, by_deployment=by_deployment)
        for node in nodes
        if node.type == IMAGE_TRANSFER_TYPE
    }


def _unrun(node: NodeTemplate) -> str:
    """Why this release does not run ``node``, of the deployment phase."""
    return f"node {node.name!r} ({node.type}) needs a supported node type"


def _given(
    node: NodeTemplate,
    value: Any,
    topology: Topology,
    tags: Tags,
    unvalued: list[tuple[str, ToscaProblem]],
    keys: tuple[str, ...],
) -> Any:
    """``value`` with every ``get_input`` replaced by the operator's value or the default."""
    if isinstance(value, dict):
        if set(value) == {"get_input"} and isinstance(value["get_input"], str):
            return _input_value(node, value["get_input"], topology, tags, unvalued, keys)
        return {k: _given(node, v, topology, tags, unvalued, (*keys, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_given(node, v, topology, tags, unvalued, keys) for v in value]
    return value


def _input_value(
    node: NodeTemplate,
    name: str,
    topology: Topology,
    tags: Tags,
    unvalued: list[tuple[str, ToscaProblem]],
    keys: tuple[str, ...],
) -> Any:
    if name in tags.deployment_inputs:
        return tags.deployment_inputs[name]
    declared = next((i for i in topology.inputs if i.name == name), None)
    if declared is not None and "default" in declared.definition:
        return declared.definition["default"]
    unvalued.append(
        (
            name,
            ToscaProblem(
                node.property_loc(*keys),
                f"node {node.name!r} (deployment phase) property {'.'.join(keys)} uses input "
                f"{name!r}, which has no value: nobody triggers a deployment",
                f"give it in the tags file: {DEPLOYMENT_INPUTS_TAG}: {{{name}: <value>}}, "
                "or a default to the input",
            ),
        )
    )
    return ""
