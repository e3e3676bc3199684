"""Imperative workflows collapsed into our DAG: one step per node an operation is called on.

``set_state`` steps only mark progress in Alien4Cloud: they carry the order (``on_success``)
and nothing else. A node whose ``Runnable.submit`` and ``Runnable.run`` are called becomes one
of our steps; it needs the nodes whose steps come before its own, the nearest ones only.
Several roots run in parallel, and a join waits for all its predecessors, as in our format.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.topology import Topology, ToscaWorkflow

RUNNABLE = "tosca.interfaces.node.lifecycle.Runnable"
SUPPORTED_OPERATIONS = (f"{RUNNABLE}.submit", f"{RUNNABLE}.run")
_OPERATIONS = {
    name: name.rsplit(".", 1)[1]
    for full in SUPPORTED_OPERATIONS
    for name in (full, full.removeprefix("tosca.interfaces.node.lifecycle."))
}


@dataclass(frozen=True)
class NodeAction:
    """A node run by a workflow, and the nodes it waits for (in first-seen order)."""

    node: str
    needs: list[str]
    first_step: str  # where it is first called, for error lines


def node_actions(
    workflow: ToscaWorkflow, topology: Topology, problems: list[ToscaProblem]
) -> list[NodeAction]:
    """The nodes ``workflow`` runs, in step order, each with its needs."""
    steps = workflow.steps
    acting: dict[str, str] = {}  # node -> its first call_operation step
    for step in steps.values():
        for successor in step.on_success:
            if successor not in steps:
                problems.append(
                    ToscaProblem(
                        (*step.loc, "on_success"),
                        f"step {step.name!r}: on_success names unknown step {successor!r}",
                        f"name a step of workflow {workflow.name!r}",
                    )
                )
        if not step.activity:
            continue  # malformed: already reported
        if step.target not in topology.nodes:
            problems.append(
                ToscaProblem(
                    (*step.loc, "target"),
                    f"step {step.name!r} targets unknown node {step.target!r}",
                    f"name a node template (defined: {', '.join(topology.nodes) or 'none'})",
                )
            )
            continue
        if step.activity == "call_operation":
            if step.argument not in _OPERATIONS:
                problems.append(
                    ToscaProblem(
                        (*step.loc, "activities", 0),
                        f"step {step.name!r}: unsupported operation {step.argument!r}",
                        f"call one of the supported operations: {', '.join(SUPPORTED_OPERATIONS)}",
                    )
                )
                continue
            acting.setdefault(step.target, step.name)
    predecessors: dict[str, list[str]] = {name: [] for name in steps}
    for step in steps.values():
        for successor in step.on_success:
            if successor in predecessors:
                predecessors[successor].append(step.name)
    actions: list[NodeAction] = []
    for node, first in acting.items():
        needs: list[str] = []
        own = [s.name for s in steps.values() if s.target == node]
        seen: set[str] = set(own)
        pending = [p for name in own for p in predecessors[name]]
        while pending:
            name = pending.pop(0)
            if name in seen:
                continue
            seen.add(name)
            target = steps[name].target
            if target in acting and target != node:
                if target not in needs:
                    needs.append(target)
                continue  # the nearest only: that node waits for the earlier ones
            pending.extend(predecessors[name])
        actions.append(NodeAction(node, needs, first))
    return actions
