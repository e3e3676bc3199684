"""The deployment phase of a topology: its standard-mode nodes, as our ``deployment:``.

Alien4Cloud ran the nodes with ``run_in_standard_mode: true`` that no workflow calls when the
application was deployed on a location. When every such node is of a type we run, they
become the steps of our ``deployment:`` section (run once per environment before any
execution, docs/workflows.md), in the order their requirements on each other give. The
topology inputs they use take the operator's values (``hpcwaas-deployment-inputs`` in the
tags), else the inputs' defaults: nobody triggers a deployment.

While one of them is of a type we do not run, no deployment is made and ``fates.node_fates``
reports each node by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hpcwaas.catalog.tosca.fates import standard_mode
from hpcwaas.catalog.tosca.functions import Resolver
from hpcwaas.catalog.tosca.nodes import RUNNABLE_TYPES, NodeConverter
from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.tags import DEPLOYMENT_INPUTS_TAG, Tags
from hpcwaas.catalog.tosca.topology import ENVIRONMENT_TYPE, NodeTemplate, Topology
from hpcwaas.catalog.yamlfile import Location

NodeProperty = Callable[[str, list[str], Location], tuple[Any, Location]]


def deployment_nodes(topology: Topology, called: set[str]) -> list[NodeTemplate]:
    """The nodes of the deployment phase, if every one is of a type we run (else none)."""
    nodes = [
        node
        for node in topology.nodes.values()
        if standard_mode(node) and node.name not in called and node.type != ENVIRONMENT_TYPE
    ]
    if any(node.type not in RUNNABLE_TYPES for node in nodes):
        return []
    return nodes


def deployment_section(
    topology: Topology,
    nodes: list[NodeTemplate],
    tags: Tags,
    node_property: NodeProperty,
    problems: list[ToscaProblem],
    warnings: list[ToscaProblem],
) -> dict[str, Any] | None:
    """Our ``deployment:`` for ``nodes`` (None when there are none or they have problems).

    A topology input they use that has no value (the operator gives it in the tags) is not
    a problem of the file: the deployment is not made, and ``warnings`` say what to give.
    """
    if not nodes:
        return None
    unvalued: list[ToscaProblem] = []
    names = {node.name for node in nodes}
    resolver = Resolver(set(), node_property)
    converter = NodeConverter(topology, resolver, problems)
    steps: dict[str, Any] = {}
    before = len(problems)
    for node in nodes:
        missing = len(unvalued)
        properties = _given(node, node.properties, topology, tags, unvalued, ())
        if len(unvalued) != missing:
            continue  # an input without a value: converting would only repeat it
        step = converter.step(replace(node, properties=properties))
        if step is None:
            continue
        needs = [n for n in _required_nodes(node) if n in names and n != node.name]
        if needs:
            step["needs"] = needs
        steps[node.name] = step
    if len(problems) != before:
        return None
    if unvalued:
        warnings.extend(
            ToscaProblem(p.loc, f"warning: {p.message}; the deployment phase is not made", p.hint)
            for p in unvalued
        )
        return None
    section: dict[str, Any] = {"steps": steps}
    if resolver.secrets:
        section["secrets"] = resolver.secrets
    return section


def _required_nodes(node: NodeTemplate) -> list[str]:
    """The nodes ``node``'s requirements name (``dependency`` and the others)."""
    found: list[str] = []
    for requirement in node.requirements:
        if isinstance(requirement, dict):
            for value in requirement.values():
                target = value.get("node") if isinstance(value, dict) else None
                if isinstance(target, str) and target not in found:
                    found.append(target)
    return found


def _given(
    node: NodeTemplate,
    value: Any,
    topology: Topology,
    tags: Tags,
    problems: list[ToscaProblem],
    keys: tuple[str, ...],
) -> Any:
    """``value`` with every ``get_input`` replaced by the operator's value or the default."""
    if isinstance(value, dict):
        if set(value) == {"get_input"} and isinstance(value["get_input"], str):
            return _input_value(node, value["get_input"], topology, tags, problems, keys)
        return {k: _given(node, v, topology, tags, problems, (*keys, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_given(node, v, topology, tags, problems, keys) for v in value]
    return value


def _input_value(
    node: NodeTemplate,
    name: str,
    topology: Topology,
    tags: Tags,
    problems: list[ToscaProblem],
    keys: tuple[str, ...],
) -> Any:
    if name in tags.deployment_inputs:
        return tags.deployment_inputs[name]
    declared = next((i for i in topology.inputs if i.name == name), None)
    if declared is not None and "default" in declared.definition:
        return declared.definition["default"]
    problems.append(
        ToscaProblem(
            node.property_loc(*keys),
            f"node {node.name!r} (deployment phase) property {'.'.join(keys)} uses input "
            f"{name!r}, which has no value: nobody triggers a deployment",
            f"give it in the tags file: {DEPLOYMENT_INPUTS_TAG}: {{{name}: <value>}}, "
            "or a default to the input",
        )
    )
    return ""
