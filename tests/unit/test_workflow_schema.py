"""/schemas/workflow.json: every example file of the repository follows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.docs.test_guide_samples import samples

from hpcwaas.catalog.schema import workflow_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = sorted((ROOT / "src" / "hpcwaas" / "examples").glob("*.yaml")) + sorted(
    (ROOT / "examples").glob("*.yaml")
)
GUIDES = sorted((ROOT / "docs").glob("*.md"))


def documents() -> list[Any]:
    found = [pytest.param(path.read_text(encoding="utf-8"), id=path.name) for path in EXAMPLE_FILES]
    for guide in GUIDES:
        for kind in ("workflow", "workflow-run"):
            found += [
                pytest.param(text, id=f"{guide.name}:{line}") for line, text in samples(guide, kind)
            ]
    return found


def validator() -> jsonschema.Draft202012Validator:
    schema = workflow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("text", documents())
def test_example_file_follows_the_workflow_schema(text: str) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator().iter_errors(yaml.safe_load(text))
    ]
    assert errors == []


def test_schema_refuses_an_unknown_step_key_and_a_bad_input_type() -> None:
    document = {
        "application": "a",
        "environments": ["local"],
        "workflows": {
            "w": {
                "inputs": {"x": {"type": "text"}},
                "steps": {"s": {"kind": "shell", "run": "true", "retry": 2}},
            }
        },
    }
    errors = list(validator().iter_errors(document))
    # A step matches one kind of the oneOf: its own errors are in the error's context.
    messages = " ".join(e.message for error in errors for e in [error, *error.context])
    assert "'text' is not one of" in messages
    assert "'retry' was unexpected" in messages


def test_schema_describes_the_keys() -> None:
    step = workflow_schema()["$defs"]["ShellStep"]["properties"]
    assert "HPCWAAS_OUTPUTS" in step["outputs"]["description"]
    assert "attempts" in step["retries"]["description"]
    assert {"path", "ssh_key", "secret"} <= set(
        workflow_schema()["$defs"]["InputSpec"]["properties"]["type"]["enum"]
    )
