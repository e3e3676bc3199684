"""`/executions/{id}/outputs`: the files stage_out steps stored, listed and downloaded."""

from __future__ import annotations

import posixpath

from fastapi import APIRouter
from fastapi.responses import FileResponse

from hpcwaas.api.models import ExecutionOutputList, ExecutionOutputPublic
from hpcwaas.engine.resultstore import ResultStore
from hpcwaas.server.deps import CurrentUser, RuntimeDep
from hpcwaas.server.openapi import problems
from hpcwaas.server.problems import ApiProblem
from hpcwaas.services.executions import owned_execution
from hpcwaas.store import outputs as output_store
from hpcwaas.store.outputs import StoredOutput

router = APIRouter(tags=["executions"])


def _public(output: StoredOutput) -> ExecutionOutputPublic:
    return ExecutionOutputPublic(
        name=output.name,
        size=output.size,
        sha256=output.sha256,
        media_type=output.media_type,
        metadata=output.metadata,
        created_at=output.created_at,
        file_name=posixpath.basename(output.path),
    )


@router.get(
    "/executions/{execution_id}/outputs",
    response_model=ExecutionOutputList,
    responses=problems(404),
)
async def list_outputs(
    execution_id: str, runtime: RuntimeDep, user: CurrentUser
) -> ExecutionOutputList:
    """The files the execution's stage_out steps stored: names, sizes, SHA-256 digests.

    The workflow's text `outputs` stay in `GET /executions/{id}`.
    """
    await owned_execution(runtime, user, execution_id)
    async with runtime.db.read() as conn:
        stored = await output_store.list_outputs(conn, execution_id)
    return ExecutionOutputList(outputs=[_public(o) for o in stored])


@router.get(
    "/executions/{execution_id}/outputs/{name}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file, streamed; `ETag` is its SHA-256 (quoted).",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        **problems(404),
    },
)
async def download_output(
    execution_id: str, name: str, runtime: RuntimeDep, user: CurrentUser
) -> FileResponse:
    """Download one stored file (as an attachment); 404 for a name the execution has not."""
    await owned_execution(runtime, user, execution_id)
    async with runtime.db.read() as conn:
        output = await output_store.get_output(conn, execution_id, name)
    if output is None:
        raise ApiProblem(
            404,
            f"execution {execution_id!r} has no output {name!r}; "
            f"GET /executions/{execution_id}/outputs lists its outputs",
        )
    path = ResultStore(runtime.settings.results_root).path(output.path)
    if not path.is_file():
        raise ApiProblem(
            404,
            f"the file of output {name!r} is no longer in the result store; "
            "an administrator may have removed it",
        )
    return FileResponse(
        path,
        media_type=output.media_type,
        filename=posixpath.basename(output.path),
        headers={"ETag": f'"{output.sha256}"'},
    )
