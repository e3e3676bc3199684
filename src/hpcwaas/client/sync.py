"""The blocking client: executes the calls of `hpcwaas.client.calls` with httpx.Client."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from hpcwaas.client import calls
from hpcwaas.client.connection import ClientBase, build_request, connection_failed

if TYPE_CHECKING:
    from pathlib import Path

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
    from hpcwaas.client.downloads import DownloadedOutput

T = TypeVar("T")
R = TypeVar("R")


class Client(ClientBase):
    """Blocking client of the HPCWaaS REST API; use it as a context manager or call close()."""

    _http: httpx.Client

    def _open(self, kwargs: dict[str, Any], transport: Any) -> None:
        self._http = httpx.Client(transport=transport, **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, call: calls.Call[T]) -> T:
        """Execute one call and return its parsed result."""
        return call.parse(self._exchange(call))

    def send_json(self, call: calls.Call[Any], reader: Callable[[Any], R]) -> R:
        """Execute one call and give its decoded JSON body to `reader`, building no API model.

        For callers that use a few fields and would rather not import pydantic for them
        (`waas workflows list`); see `Call.read_json`.
        """
        return call.read_json(self._exchange(call), reader)

    def _exchange(self, call: calls.Call[Any]) -> httpx.Response:
        request = build_request(self._http, self.options, call)
        try:
            return self._http.send(request)
        except httpx.TransportError as exc:
            raise connection_failed(request, exc, self.options) from exc

    def list_workflows(self, limit: int | None = None, cursor: str | None = None) -> WorkflowList:
        """List the workflows you may trigger (all of them unless `limit` is given)."""
        return self.send(calls.list_workflows(limit, cursor))

    def get_workflow(self, workflow_id: str) -> WorkflowDetail:
        """One workflow with its declared inputs."""
        return self.send(calls.get_workflow(workflow_id))

    def trigger(self, workflow_id: str, inputs: dict[str, Any] | None = None) -> str:
        """Start an execution of a workflow and return its ID."""
        return self.send(calls.trigger(workflow_id, inputs))

    def dry_run(self, workflow_id: str, inputs: dict[str, Any] | None = None) -> DryRunPlan:
        """Check the inputs as a trigger would and return the rendered plan; nothing runs."""
        return self.send(calls.dry_run(workflow_id, inputs))

    def get_execution(self, execution_id: str) -> ExecutionPublic:
        """Status (and steps, outputs) of one execution."""
        return self.send(calls.get_execution(execution_id))

    def list_executions(
        self, limit: int | None = None, cursor: str | None = None, all_users: bool = False
    ) -> ExecutionList:
        """One page of your executions (every user's with `all_users`, for operators)."""
        return self.send(calls.list_executions(limit, cursor, all_users))

    def cancel(self, execution_id: str) -> None:
        """Ask the server to cancel an execution."""
        self.send(calls.cancel(execution_id))

    def remove_execution_data(self, execution_id: str) -> ExecutionPublic:
        """Remove a finished execution's working directories, logs and stored files now."""
        return self.send(calls.remove_execution_data(execution_id))

    def logs(
        self,
        execution_id: str,
        from_: int = 0,
        size: int | None = None,
        timeout: float | None = None,
        levels: int | None = None,
    ) -> ExecutionLogs:
        """Log entries from index `from_`, waiting up to `timeout` seconds for new ones."""
        return self.send(calls.logs(execution_id, from_, size, timeout, levels))

    def list_outputs(self, execution_id: str) -> ExecutionOutputList:
        """The files the execution's stage_out steps stored (names, sizes, SHA-256)."""
        return self.send(calls.list_outputs(execution_id))

    def download_output(
        self, execution_id: str, name: str, directory: Path, sha256: str | None = None
    ) -> DownloadedOutput:
        """Stream one stored output into ``directory``; kept only if its SHA-256 matches
        ``sha256`` (default: the one the server announces). Raises DownloadFailed if not."""
        # Imported here, as only downloads need it (and hashlib, secrets, pathlib with it).
        from hpcwaas.client.downloads import OutputFile, announced_sha256, file_name

        call = calls.download_output(execution_id, name)
        request = build_request(self._http, self.options, call)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise connection_failed(request, exc, self.options) from exc
        try:
            if response.status_code != 200:
                response.read()
                call.parse(response)
            target = OutputFile(name, directory, file_name(response, name))
            try:
                for chunk in response.iter_bytes():
                    target.write(chunk)
            except BaseException as exc:
                target.discard()
                if isinstance(exc, httpx.TransportError):
                    raise connection_failed(request, exc, self.options) from exc
                raise
            return target.finish(sha256 or announced_sha256(response))
        finally:
            response.close()

    def create_ssh_key(
        self, metadata: dict[str, Any] | None = None, key_type: str | None = None
    ) -> SSHKeyCreated:
        """Generate an SSH key pair (rsa, rsa4096, ed25519); only the public half comes back."""
        return self.send(calls.create_ssh_key(metadata, key_type))

    def list_ssh_keys(self, limit: int | None = None, cursor: str | None = None) -> SSHKeyList:
        """One page of your SSH keys (public halves only)."""
        return self.send(calls.list_ssh_keys(limit, cursor))

    def delete_ssh_key(self, key_id: str) -> None:
        """Delete one of your SSH keys."""
        self.send(calls.delete_ssh_key(key_id))

    def auth_info(self) -> AuthInfo:
        """How to log in to this server: auth type, login page, whether device login works."""
        return self.send(calls.auth_info())

    def start_device_login(self) -> DeviceAuthorization:
        """Start a device login: show its user code and verification URI to the user."""
        return self.send(calls.start_device_login())

    def poll_device_login(self, device_code: str) -> TokenIssued | DevicePending:
        """The token once the user confirmed, else DevicePending (wait `interval` seconds).

        Raises BadRequest when the login was denied or has expired.
        """
        return self.send(calls.poll_device_login(device_code))

    def logout(self) -> None:
        """Revoke the token this client sends; it cannot be used again."""
        self.send(calls.logout())

    def revoke_user_tokens(self, user_id: str) -> None:
        """Revoke every token of a user: your own, or anyone's if you are an operator."""
        self.send(calls.revoke_user_tokens(user_id))

    def whoami(self) -> UserPublic:
        """The user the credentials belong to, with groups and the token's expiry."""
        return self.send(calls.whoami())

    def list_environments(self) -> EnvironmentList:
        """Every environment, with your registered cluster account (login, SSH key) on each."""
        return self.send(calls.list_environments())

    def get_environment(self, environment: str) -> EnvironmentPublic:
        """One environment with your registered cluster account."""
        return self.send(calls.get_environment(environment))

    def set_identity(self, environment: str, login: str, key_id: str) -> EnvironmentPublic:
        """Register the cluster login and SSH key your steps run with on `environment`."""
        return self.send(calls.set_identity(environment, login, key_id))

    def delete_identity(self, environment: str) -> None:
        """Forget your cluster account on `environment`."""
        self.send(calls.delete_identity(environment))
