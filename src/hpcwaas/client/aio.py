"""The asyncio client: executes the calls of `hpcwaas.client.calls` with httpx.AsyncClient."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from hpcwaas.client import calls
from hpcwaas.client.connection import ClientBase, build_request, connection_failed
from hpcwaas.client.downloads import DownloadedOutput, OutputFile, announced_sha256, file_name

if TYPE_CHECKING:
    from hpcwaas.api.models import (
        AuthInfo,
        DeviceAuthorization,
        DevicePending,
        DryRunPlan,
        EnvironmentList,
        EnvironmentPublic,
        ExecutionList,
        ExecutionLogs,
        ExecutionOutputList,
        ExecutionPublic,
        SSHKeyCreated,
        SSHKeyList,
        TokenIssued,
        UserPublic,
        WorkflowDetail,
        WorkflowList,
    )

T = TypeVar("T")
R = TypeVar("R")


class AsyncClient(ClientBase):
    """Asyncio client of the HPCWaaS REST API; use it with `async with` or await aclose()."""

    _http: httpx.AsyncClient

    def _open(self, kwargs: dict[str, Any], transport: Any) -> None:
        self._http = httpx.AsyncClient(transport=transport, **kwargs)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def send(self, call: calls.Call[T]) -> T:
        """Execute one call and return its parsed result."""
        return call.parse(await self._exchange(call))

    async def send_json(self, call: calls.Call[Any], reader: Callable[[Any], R]) -> R:
        """Execute one call and give its decoded JSON body to `reader`, building no API model.

        For callers that use a few fields and would rather not import pydantic for them;
        see `Call.read_json`.
        """
        return call.read_json(await self._exchange(call), reader)

    async def _exchange(self, call: calls.Call[Any]) -> httpx.Response:
        request = build_request(self._http, self.options, call)
        try:
            return await self._http.send(request)
        except httpx.TransportError as exc:
            raise connection_failed(request, exc, self.options) from exc

    async def list_workflows(
        self, limit: int | None = None, cursor: str | None = None
    ) -> WorkflowList:
        """List the workflows you may trigger (all of them unless `limit` is given)."""
        return await self.send(calls.list_workflows(limit, cursor))

    async def get_workflow(self, workflow_id: str) -> WorkflowDetail:
        """One workflow with its declared inputs."""
        return await self.send(calls.get_workflow(workflow_id))

    async def trigger(self, workflow_id: str, inputs: dict[str, Any] | None = None) -> str:
        """Start an execution of a workflow and return its ID."""
        return await self.send(calls.trigger(workflow_id, inputs))

    async def dry_run(self, workflow_id: str, inputs: dict[str, Any] | None = None) -> DryRunPlan:
        """Check the inputs as a trigger would and return the rendered plan; nothing runs."""
        return await self.send(calls.dry_run(workflow_id, inputs))

    async def get_execution(self, execution_id: str) -> ExecutionPublic:
        """Status (and steps, outputs) of one execution."""
        return await self.send(calls.get_execution(execution_id))

    async def list_executions(
        self, limit: int | None = None, cursor: str | None = None, all_users: bool = False
    ) -> ExecutionList:
        """One page of your executions (every user's with `all_users`, for operators)."""
        return await self.send(calls.list_executions(limit, cursor, all_users))

    async def cancel(self, execution_id: str) -> None:
        """Ask the server to cancel an execution."""
        await self.send(calls.cancel(execution_id))

    async def remove_execution_data(self, execution_id: str) -> ExecutionPublic:
        """Remove a finished execution's working directories, logs and stored files now."""
        return await self.send(calls.remove_execution_data(execution_id))

    async def logs(
        self,
        execution_id: str,
        from_: int = 0,
        size: int | None = None,
        timeout: float | None = None,
        levels: int | None = None,
    ) -> ExecutionLogs:
        """Log entries from index `from_`, waiting up to `timeout` seconds for new ones."""
        return await self.send(calls.logs(execution_id, from_, size, timeout, levels))

    async def list_outputs(self, execution_id: str) -> ExecutionOutputList:
        """The files the execution's stage_out steps stored (names, sizes, SHA-256)."""
        return await self.send(calls.list_outputs(execution_id))

    async def download_output(
        self, execution_id: str, name: str, directory: Path, sha256: str | None = None
    ) -> DownloadedOutput:
        """Stream one stored output into ``directory``; kept only if its SHA-256 matches
        ``sha256`` (default: the one the server announces). Raises DownloadFailed if not."""
        call = calls.download_output(execution_id, name)
        request = build_request(self._http, self.options, call)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise connection_failed(request, exc, self.options) from exc
        try:
            if response.status_code != 200:
                await response.aread()
                call.parse(response)
            target = OutputFile(name, directory, file_name(response, name))
            try:
                async for chunk in response.aiter_bytes():
                    target.write(chunk)
            except BaseException as exc:
                target.discard()
                if isinstance(exc, httpx.TransportError):
                    raise connection_failed(request, exc, self.options) from exc
                raise
            return target.finish(sha256 or announced_sha256(response))
        finally:
            await response.aclose()

    async def create_ssh_key(
        self, metadata: dict[str, Any] | None = None, key_type: str | None = None
    ) -> SSHKeyCreated:
        """Generate an SSH key pair (rsa, rsa4096, ed25519); only the public half comes back."""
        return await self.send(calls.create_ssh_key(metadata, key_type))

    async def list_ssh_keys(
        self, limit: int | None = None, cursor: str | None = None
    ) -> SSHKeyList:
        """One page of your SSH keys (public halves only)."""
        return await self.send(calls.list_ssh_keys(limit, cursor))

    async def delete_ssh_key(self, key_id: str) -> None:
        """Delete one of your SSH keys."""
        await self.send(calls.delete_ssh_key(key_id))

    async def auth_info(self) -> AuthInfo:
        """How to log in to this server: auth type, login page, whether device login works."""
        return await self.send(calls.auth_info())

    async def start_device_login(self) -> DeviceAuthorization:
        """Start a device login: show its user code and verification URI to the user."""
        return await self.send(calls.start_device_login())

    async def poll_device_login(self, device_code: str) -> TokenIssued | DevicePending:
        """The token once the user confirmed, else DevicePending (wait `interval` seconds).

        Raises BadRequest when the login was denied or has expired.
        """
        return await self.send(calls.poll_device_login(device_code))

    async def logout(self) -> None:
        """Revoke the token this client sends; it cannot be used again."""
        await self.send(calls.logout())

    async def revoke_user_tokens(self, user_id: str) -> None:
        """Revoke every token of a user: your own, or anyone's if you are an operator."""
        await self.send(calls.revoke_user_tokens(user_id))

    async def whoami(self) -> UserPublic:
        """The user the credentials belong to, with groups and the token's expiry."""
        return await self.send(calls.whoami())

    async def list_environments(self) -> EnvironmentList:
        """Every environment, with your registered cluster account (login, SSH key) on each."""
        return await self.send(calls.list_environments())

    async def get_environment(self, environment: str) -> EnvironmentPublic:
        """One environment with your registered cluster account."""
        return await self.send(calls.get_environment(environment))

    async def set_identity(self, environment: str, login: str, key_id: str) -> EnvironmentPublic:
        """Register the cluster login and SSH key your steps run with on `environment`."""
        return await self.send(calls.set_identity(environment, login, key_id))

    async def delete_identity(self, environment: str) -> None:
        """Forget your cluster account on `environment`."""
        await self.send(calls.delete_identity(environment))
