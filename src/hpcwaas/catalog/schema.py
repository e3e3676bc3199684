"""The JSON Schema of a workflow file, generated from the models of ``catalog.model``."""

from __future__ import annotations

import functools
from typing import Any

from hpcwaas.catalog.model import ApplicationSpec

SCHEMA_ID = "/schemas/workflow.json"


@functools.cache
def workflow_schema() -> dict[str, Any]:
    """The schema (draft 2020-12) every workflow file follows; cross-key rules are not in it."""
    schema = ApplicationSpec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "hpcwaas workflow file",
        "description": (
            "One application: its workflows, their typed inputs, steps and outputs. "
            "What spans several keys (needs, templates, step outputs, constraints against "
            "defaults) is checked by `hpcwaas-api workflows validate` and when the catalog loads."
        ),
    }
