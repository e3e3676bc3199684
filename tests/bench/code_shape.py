"""Static measures of the code's shape, for the architecture's before/after comparisons.

Run from the project root: ``python -m tests.bench.code_shape [tree]`` (default: this tree).
It prints the largest constructors (parameters of ``__init__``), the files outside
``store/`` and ``services/`` that import the store, by package, and the call sites outside
``store/`` that change an execution's or a step's state.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

STATE_CHANGES = re.compile(
    r"\b(update_step|transition|end_execution|finish_execution|mark_running)\("
)
IMPORTS_STORE = re.compile(r"^\s*(from hpcwaas\.store|from hpcwaas import store)", re.M)


def main() -> None:
    """Print the measures of the tree given (or of this one)."""
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[2]
    root = tree / "src" / "hpcwaas"
    constructors: list[tuple[int, str]] = []
    importers: Counter[str] = Counter()
    changes = 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                        args = item.args
                        count = len(args.posonlyargs) + len(args.args) - 1 + len(args.kwonlyargs)
                        constructors.append((count, f"{rel}:{node.name}"))
        if rel.parts[0] not in ("store", "services") and IMPORTS_STORE.search(text):
            importers[rel.parts[0] if len(rel.parts) > 1 else "(top)"] += 1
        if rel.parts[0] != "store":
            changes += sum(
                1
                for line in text.splitlines()
                if STATE_CHANGES.search(line)
                and not line.lstrip().startswith(("def ", "async def "))
            )
    constructors.sort(reverse=True)
    print("largest constructors: " + ", ".join(f"{n} {where}" for n, where in constructors[:8]))
    by_package = ", ".join(f"{p} {n}" for p, n in sorted(importers.items()))
    total = sum(importers.values())
    print(f"files outside store/ and services/ importing store: {total} ({by_package})")
    print(f"state-changing call sites outside store/: {changes}")


if __name__ == "__main__":
    main()
