"""A TOSCA topology read into typed pieces: inputs, node templates, imperative workflows.

Only the shape is checked here (mappings where mappings belong, one activity per step);
what the pieces mean is for ``nodes`` and ``workflows``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.yamlfile import Location

ENVIRONMENT_TYPE = "eflows4hpc.env.nodes.AbstractEnvironment"


@dataclass(frozen=True)
class ToscaInput:
    """A declared input: ``topology_template.inputs.<name>`` or a workflow's."""

    name: str
    definition: dict[str, Any]
    loc: Location


@dataclass(frozen=True)
class NodeTemplate:
    """``topology_template.node_templates.<name>``."""

    name: str
    type: str
    properties: dict[str, Any]
    requirements: list[Any]
    loc: Location

    def property_loc(self, *keys: str | int) -> Location:
        """The key path of one of its properties."""
        return (*self.loc, "properties", *keys)

    def required_nodes(self) -> list[str]:
        """The nodes its requirements name, in order (``dependency`` and the others)."""
        found: list[str] = []
        for requirement in self.requirements:
            if isinstance(requirement, dict):
                for value in requirement.values():
                    target = value.get("node") if isinstance(value, dict) else None
                    if isinstance(target, str):
                        found.append(target)
        return found


@dataclass(frozen=True)
class WorkflowStep:
    """One step of an imperative workflow: a target node and its one activity."""

    name: str
    target: str
    activity: str  # "set_state" or "call_operation"
    argument: str  # the state, or the operation name
    on_success: list[str]
    loc: Location


@dataclass(frozen=True)
class ToscaWorkflow:
    """``topology_template.workflows.<name>``."""

    name: str
    inputs: list[ToscaInput]
    steps: dict[str, WorkflowStep]
    loc: Location
    # what is malformed in it: reported only if the workflow is imported
    problems: list[ToscaProblem] = field(default_factory=list)


@dataclass
class Topology:
    """The parts of a topology the importer uses."""

    metadata: dict[str, Any]
    inputs: list[ToscaInput] = field(default_factory=list)
    nodes: dict[str, NodeTemplate] = field(default_factory=dict)
    workflows: dict[str, ToscaWorkflow] = field(default_factory=dict)

    def environment_of(self, node: NodeTemplate) -> NodeTemplate | None:
        """The AbstractEnvironment node a node's requirements point to, if any."""
        for requirement in node.requirements:
            if not isinstance(requirement, dict):
                continue
            for value in requirement.values():
                target = value.get("node") if isinstance(value, dict) else value
                found = self.nodes.get(target) if isinstance(target, str) else None
                if found is not None and found.type == ENVIRONMENT_TYPE:
                    return found
        return None


_ACTIVITIES = ("set_state", "call_operation")


def _mapping(value: Any, loc: Location, what: str, problems: list[ToscaProblem]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(ToscaProblem(loc, f"{what} must be a mapping", "see docs/tosca-import.md"))
        return {}
    return value


def parse_topology(document: dict[str, Any], problems: list[ToscaProblem]) -> Topology:
    """The topology's pieces; what is malformed is added to ``problems``."""
    metadata = _mapping(document.get("metadata"), ("metadata",), "metadata", problems)
    template = _mapping(
        document.get("topology_template"), ("topology_template",), "topology_template", problems
    )
    topology = Topology(metadata=metadata)
    base: Location = ("topology_template",)
    topology.inputs = _inputs(template.get("inputs"), (*base, "inputs"), problems)
    nodes = _mapping(
        template.get("node_templates"), (*base, "node_templates"), "node_templates", problems
    )
    for name, raw in nodes.items():
        loc: Location = (*base, "node_templates", name)
        body = _mapping(raw, loc, f"node template {name!r}", problems)
        node_type = body.get("type")
        if not isinstance(node_type, str):
            problems.append(ToscaProblem(loc, f"node template {name!r} has no type", "add type:"))
            continue
        properties = _mapping(body.get("properties"), (*loc, "properties"), "properties", problems)
        requirements = body.get("requirements") or []
        if not isinstance(requirements, list):
            requirements = []
        topology.nodes[str(name)] = NodeTemplate(
            str(name), node_type, properties, requirements, loc
        )
    workflows = _mapping(template.get("workflows"), (*base, "workflows"), "workflows", problems)
    for name, raw in workflows.items():
        loc = (*base, "workflows", name)
        own: list[ToscaProblem] = []
        body = _mapping(raw, loc, f"workflow {name!r}", own)
        steps: dict[str, WorkflowStep] = {}
        for step_name, step_raw in _mapping(
            body.get("steps"), (*loc, "steps"), "steps", own
        ).items():
            where: Location = (*loc, "steps", step_name)
            step = _step(str(step_name), step_raw, where, own)
            # a malformed step stays, unusable, so that links to it are not reported too
            steps[str(step_name)] = step or WorkflowStep(str(step_name), "", "", "", [], where)
        inputs = _inputs(body.get("inputs"), (*loc, "inputs"), own)
        topology.workflows[str(name)] = ToscaWorkflow(str(name), inputs, steps, loc, own)
    return topology


def _inputs(raw: Any, loc: Location, problems: list[ToscaProblem]) -> list[ToscaInput]:
    found: list[ToscaInput] = []
    for name, definition in _mapping(raw, loc, "inputs", problems).items():
        where = (*loc, name)
        found.append(
            ToscaInput(str(name), _mapping(definition, where, f"input {name!r}", problems), where)
        )
    return found


def _step(name: str, raw: Any, loc: Location, problems: list[ToscaProblem]) -> WorkflowStep | None:
    body = _mapping(raw, loc, f"step {name!r}", problems)
    target = body.get("target")
    if not isinstance(target, str):
        problems.append(
            ToscaProblem(
                loc, f"step {name!r} has no target", "name the node it acts on: target: <node>"
            )
        )
        return None
    activities = body.get("activities")
    if not isinstance(activities, list) or len(activities) != 1:
        problems.append(
            ToscaProblem(
                (*loc, "activities"),
                f"step {name!r} must have exactly one activity",
                "split it into steps linked by on_success",
            )
        )
        return None
    activity = activities[0]
    if not isinstance(activity, dict) or len(activity) != 1:
        problems.append(
            ToscaProblem(
                (*loc, "activities", 0),
                f"step {name!r}: malformed activity",
                "e.g. - set_state: executed",
            )
        )
        return None
    kind, argument = next(iter(activity.items()))
    if kind not in _ACTIVITIES:
        problems.append(
            ToscaProblem(
                (*loc, "activities", 0),
                f"step {name!r}: unsupported activity {kind!r}",
                f"use one of the supported activities: {', '.join(_ACTIVITIES)}",
            )
        )
        return None
    on_success = body.get("on_success") or []
    if not isinstance(on_success, list) or not all(isinstance(s, str) for s in on_success):
        problems.append(
            ToscaProblem(
                (*loc, "on_success"),
                f"step {name!r}: on_success must list step names",
                "e.g. [B_run]",
            )
        )
        on_success = []
    return WorkflowStep(name, target, str(kind), str(argument), list(on_success), loc)
