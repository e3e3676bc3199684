"""docs/architecture.md names what exists: its modules, classes and functions are in the code,
and the imports between packages follow its table of layers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "hpcwaas"
PAGE = ROOT / "docs" / "architecture.md"

# `engine/leasing.py`, `engine/leasing.Leases.heartbeat`, `catalog/tosca/`, `settings.py`,
# `settings.load_settings`: a path under src/hpcwaas/, then maybe names defined in it.
TOP_MODULES = ("settings", "settings_reference", "replica", "telemetry", "logging_setup")
REFERENCE = re.compile(
    r"`((?:[a-z_]+/)+(?:[a-z_*]+\.py)?|(?:[a-z_]+/)+[a-z_]+|(?:"
    + "|".join(TOP_MODULES)
    + r"))(?:\.py)?((?:\.[A-Za-z_]\w*)*)`"
)
LAYER_ROW = re.compile(r"^\| `([a-z_]+)(?:/|\.py)` \| .* \| (.*) \|$")


def references() -> list[pytest.param]:
    found = {(m.group(1), m.group(2)) for m in REFERENCE.finditer(PAGE.read_text("utf-8"))}
    return [pytest.param(path, names, id=f"{path}{names}") for path, names in sorted(found)]


def defined(tree: ast.AST, names: list[str]) -> bool:
    """Whether ``names`` (a class, then maybe its method; or a function) is defined in ``tree``."""
    scope: list[ast.stmt] = list(getattr(tree, "body", []))
    for index, name in enumerate(names):
        match = next(
            (
                node
                for node in scope
                if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name == name
            ),
            None,
        )
        if match is None:
            last = index == len(names) - 1
            # the last name may also be a field or a constant
            return last and any(
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.target.id == name
                for node in scope
            )
        scope = list(match.body)
    return True


@pytest.mark.parametrize(("path", "names"), references())
def test_named_module_exists(path: str, names: str) -> None:
    if path.startswith(("src/", "tests/", "docs/")):  # a path of the repository
        assert (ROOT / path).exists(), f"no {path} in the repository"
        return
    if "*" in path:
        assert list(PACKAGE.glob(path)), f"no file matches {path}"
        return
    target = PACKAGE / path
    if path.endswith("/") or (target.is_dir() and not names):
        assert target.is_dir(), f"no directory src/hpcwaas/{path}"
        return
    module = target if path.endswith(".py") else target.with_suffix(".py")
    assert module.is_file(), f"no module src/hpcwaas/{module.relative_to(PACKAGE)}"
    if names:
        tree = ast.parse(module.read_text("utf-8"))
        assert defined(tree, names.strip(".").split(".")), f"{path} defines no {names[1:]}"


def imports_of(package: str) -> set[str]:
    """The other top-level parts of hpcwaas that ``package`` (a directory or a module) imports."""
    base = PACKAGE / package
    files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    found: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text("utf-8"))):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "hpcwaas":
                    modules = [f"hpcwaas.{alias.name}" for alias in node.names]
                else:
                    modules = [node.module]
            for module in modules:
                parts = module.split(".")
                if parts[0] == "hpcwaas" and len(parts) > 1 and parts[1] != package:
                    found.add(parts[1])
    return found - {"__version__"}


def layers() -> dict[str, str]:
    lines = PAGE.read_text("utf-8").split("## The layers and the direction of imports", 1)[1]
    rows = {}
    for line in lines.split("\n## ", 1)[0].splitlines():
        match = LAYER_ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_layer_table_covers_every_package() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"examples"} <= set(layers()), "a package is missing from the table"


@pytest.mark.parametrize("package", sorted(layers()))
def test_imports_follow_the_layer_table(package: str) -> None:
    allowed_text = layers()[package]
    if allowed_text.startswith("everything but"):
        forbidden = set(re.findall(r"`([a-z_]+)`", allowed_text))
        assert not imports_of(package) & forbidden, f"{package} imports {forbidden}"
        return
    allowed = set(re.findall(r"`([a-z_]+)`", allowed_text))
    extra = imports_of(package) - allowed
    assert not extra, f"{package} imports {sorted(extra)}, not in its row of the table"
