"""The step graph of a workflow: topological order and cycles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def topological_order(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Steps so that each comes after what it needs; ties keep the mapping's order.

    Needs naming unknown steps are ignored; steps on a cycle are left out.
    """
    position = {name: index for index, name in enumerate(needs)}
    waiting = {name: {n for n in deps if n in needs} for name, deps in needs.items()}
    order: list[str] = []
    ready = [name for name, deps in waiting.items() if not deps]
    while ready:
        ready.sort(key=position.__getitem__)
        name = ready.pop(0)
        order.append(name)
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    ready.append(other)
    return order


def cycles(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each cycle of the graph (a strongly connected component, or a self-need), in file order."""
    position = {name: index for index, name in enumerate(needs)}
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(name: str) -> None:  # Tarjan's algorithm; step graphs are small
        index_of[name] = low[name] = len(index_of)
        stack.append(name)
        on_stack.add(name)
        for dep in needs[name]:
            if dep not in needs:
                continue
            if dep not in index_of:
                visit(dep)
                low[name] = min(low[name], low[dep])
            elif dep in on_stack:
                low[name] = min(low[name], index_of[dep])
        if low[name] == index_of[name]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == name:
                    break
            if len(component) > 1 or name in needs[name]:
                found.append(sorted(component, key=position.__getitem__))

    for name in needs:
        if name not in index_of:
            visit(name)
    return sorted(found, key=lambda c: position[c[0]])
