"""`/schemas/*`: public JSON Schemas of the files workflow developers write."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hpcwaas.catalog.schema import workflow_schema

router = APIRouter(tags=["schemas"])


@router.get(
    "/schemas/workflow.json",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "The JSON Schema (draft 2020-12) of a workflow file.",
            "content": {"application/schema+json": {"schema": {"type": "object"}}},
        }
    },
)
async def get_workflow_schema() -> JSONResponse:
    """The JSON Schema of a workflow file, for editors and checks before publishing."""
    body: dict[str, Any] = workflow_schema()
    return JSONResponse(body, media_type="application/schema+json")
