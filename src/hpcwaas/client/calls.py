"""The sans-IO core of the SDK: one builder per API operation.

Each builder returns a `Call`: the request to send (method, path, query, JSON
body) and how to turn the response into API models or a typed error. The sync
and async clients only execute calls, so the two can never drift apart.

The API models (and pydantic with them) are imported on the first parse, not with
the SDK: a caller that reads a few fields of the JSON itself (`Call.read_json`, as
`waas workflows list` does) never pays for them, a third of that command's start-up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from hpcwaas.client.errors import UnexpectedResponse, api_error, check_is_api

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

# The server's long-poll default when the client sends no `timeout` (docs/compatibility.md, "Logs").
SERVER_DEFAULT_LOG_WAIT = 60.0
# How long past the requested long-poll wait the client keeps reading before giving up.
LONG_POLL_MARGIN = 15.0


@dataclass(frozen=True)
class ModelBody:
    """Parser of a JSON success body into the API model of hpcwaas.api.models named `model`.

    Named rather than referenced, so that the models load on the first parse. Fields in
    `null_lists` sent as null (the original does) become [].
    """

    model: str
    null_lists: tuple[str, ...] = ()

    def __call__(self, response: httpx.Response) -> Any:
        return self.read(response, self._validate)

    def read(self, response: httpx.Response, reader: Callable[[Any], R]) -> R:
        """What `reader` makes of the decoded body; its ValueError is an UnexpectedResponse."""
        try:
            data = json.loads(response.content)
        except ValueError:
            check_is_api(response)
            raise UnexpectedResponse(response.status_code, "the body is not JSON") from None
        if isinstance(data, dict):
            for name in self.null_lists:
                if data.get(name, []) is None:
                    data[name] = []
        try:
            return reader(data)
        except ValueError as exc:
            detail = f"the body is not a valid {self.model}: {exc}"
            raise UnexpectedResponse(response.status_code, detail) from None

    def _validate(self, data: Any) -> Any:
        from pydantic import ValidationError

        from hpcwaas.api import models

        try:
            return getattr(models, self.model).model_validate(data)
        except ValidationError as exc:
            # One line for a user: pydantic's words for the first problem.
            raise ValueError(exc.errors()[0]["msg"]) from None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: the request to send and the parser of its success response."""

    method: str
    path: str
    parse_success: Callable[[httpx.Response], T]
    params: dict[str, str | int] = field(default_factory=dict)
    json: Any = None
    # A long poll must keep reading longer than the server may legitimately wait.
    min_read_timeout: float | None = None

    def parse(self, response: httpx.Response) -> T:
        """Return the parsed success body, or raise the typed error the response carries."""
        _raise_for_error(response)
        return self.parse_success(response)

    def read_json(self, response: httpx.Response, reader: Callable[[Any], R]) -> R:
        """Give the decoded success body to `reader` instead of building the API models.

        For callers that use a few fields and would rather not import pydantic for them.
        `reader` raises ValueError, saying what is wrong, for a body it cannot use: that is
        an UnexpectedResponse, as a body that is not the model is.
        """
        if not isinstance(self.parse_success, ModelBody):
            raise TypeError(f"{self.method} {self.path} answers no JSON body to read")
        _raise_for_error(response)
        return self.parse_success.read(response, reader)


def _raise_for_error(response: httpx.Response) -> None:
    if not 200 <= response.status_code < 300:
        check_is_api(response)
        raise api_error(response.status_code, response.content, dict(response.headers))


def segment(value: str) -> str:
    """Quote one path segment; `@` stays readable since workflow IDs are built with it."""
    return quote(value, safe="@")


def go_duration(seconds: float) -> str:
    """Format seconds the way the API's `timeout` parameter reads them (``30s``, ``1500ms``)."""
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _page_params(limit: int | None, cursor: str | None) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if limit is not None:
        params["limit"] = limit
    if cursor is not None:
        params["cursor"] = cursor
    return params


def _nothing(response: httpx.Response) -> None:
    return None


def _execution_id_from_location(response: httpx.Response) -> str:
    location: str | None = response.headers.get("location")
    if location:
        path = urlsplit(location).path.rstrip("/")
        prefix, _, execution_id = path.rpartition("/")
        if prefix.endswith("/executions") and execution_id:
            return execution_id
        raise UnexpectedResponse(
            response.status_code, f"Location {location!r} does not name an execution"
        )
    # Not the contract, but a server returning the new execution as JSON is unambiguous.
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
        return str(body["id"])
    raise UnexpectedResponse(response.status_code, "no Location header in the trigger response")


def list_workflows(limit: int | None = None, cursor: str | None = None) -> Call[WorkflowList]:
    """GET /workflows."""
    return Call(
        "GET", "/workflows", ModelBody("WorkflowList", ("workflows",)), _page_params(limit, cursor)
    )


def get_workflow(workflow_id: str) -> Call[WorkflowDetail]:
    """GET /workflows/{id}: one workflow with its inputs."""
    return Call("GET", f"/workflows/{segment(workflow_id)}", ModelBody("WorkflowDetail"))


def trigger(workflow_id: str, inputs: dict[str, Any] | None = None) -> Call[str]:
    """POST /workflows/{id}: start an execution; parses its ID from the Location header."""
    return Call(
        "POST",
        f"/workflows/{segment(workflow_id)}",
        _execution_id_from_location,
        json={"inputs": dict(inputs or {})},
    )


def dry_run(workflow_id: str, inputs: dict[str, Any] | None = None) -> Call[DryRunPlan]:
    """POST /workflows/{id}?dry_run=true: check the inputs and return the plan; nothing runs."""
    return Call(
        "POST",
        f"/workflows/{segment(workflow_id)}",
        ModelBody("DryRunPlan"),
        {"dry_run": "true"},
        json={"inputs": dict(inputs or {})},
    )


def get_execution(execution_id: str) -> Call[ExecutionPublic]:
    """GET /executions/{id}."""
    return Call("GET", f"/executions/{segment(execution_id)}", ModelBody("ExecutionPublic"))


def list_executions(
    limit: int | None = None, cursor: str | None = None, all_users: bool = False
) -> Call[ExecutionList]:
    """GET /executions: the caller's executions, newest first; every user's with `all_users`.

    `all_users` (`?all=true`) is for operators; others get a Forbidden error.
    """
    params = _page_params(limit, cursor)
    if all_users:
        params["all"] = "true"
    return Call("GET", "/executions", ModelBody("ExecutionList", ("executions",)), params)


def cancel(execution_id: str) -> Call[None]:
    """DELETE /executions/{id}: ask for cancellation (202)."""
    return Call("DELETE", f"/executions/{segment(execution_id)}", _nothing)


def remove_execution_data(execution_id: str) -> Call[ExecutionPublic]:
    """DELETE /executions/{id}/data: remove a finished execution's data now (the execution
    stays, its `data_removed` says what went)."""
    return Call("DELETE", f"/executions/{segment(execution_id)}/data", ModelBody("ExecutionPublic"))


def logs(
    execution_id: str,
    from_: int = 0,
    size: int | None = None,
    timeout: float | None = None,
    levels: int | None = None,
) -> Call[ExecutionLogs]:
    """GET /executions/{id}/logs: a long poll waiting up to `timeout` seconds for new entries."""
    params: dict[str, str | int] = {"from": from_}
    if size is not None:
        params["size"] = size
    if timeout is not None:
        params["timeout"] = go_duration(timeout)
    if levels is not None:
        params["levels"] = levels
    wait = SERVER_DEFAULT_LOG_WAIT if timeout is None else timeout
    return Call(
        "GET",
        f"/executions/{segment(execution_id)}/logs",
        ModelBody("ExecutionLogs", ("logs",)),
        params,
        min_read_timeout=wait + LONG_POLL_MARGIN,
    )


def list_outputs(execution_id: str) -> Call[ExecutionOutputList]:
    """GET /executions/{id}/outputs: the files the execution's stage_out steps stored."""
    return Call(
        "GET",
        f"/executions/{segment(execution_id)}/outputs",
        ModelBody("ExecutionOutputList", ("outputs",)),
    )


def download_output(execution_id: str, name: str) -> Call[None]:
    """GET /executions/{id}/outputs/{name}: the file; the clients stream its body to disk."""
    return Call("GET", f"/executions/{segment(execution_id)}/outputs/{segment(name)}", _nothing)


def create_ssh_key(
    metadata: dict[str, Any] | None = None, key_type: str | None = None
) -> Call[SSHKeyCreated]:
    """POST /ssh_keys: generate a key pair; only the public half comes back."""
    body: dict[str, Any] = {"metadata": dict(metadata)} if metadata else {}
    if key_type is not None:  # left out otherwise: the original's server makes RSA 2048
        body["type"] = key_type
    return Call("POST", "/ssh_keys", ModelBody("SSHKeyCreated"), json=body)


def list_ssh_keys(limit: int | None = None, cursor: str | None = None) -> Call[SSHKeyList]:
    """GET /ssh_keys: the caller's keys (public halves only)."""
    return Call(
        "GET", "/ssh_keys", ModelBody("SSHKeyList", ("ssh_keys",)), _page_params(limit, cursor)
    )


def delete_ssh_key(key_id: str) -> Call[None]:
    """DELETE /ssh_keys/{id}."""
    return Call("DELETE", f"/ssh_keys/{segment(key_id)}", _nothing)


def auth_info() -> Call[AuthInfo]:
    """GET /auth/config (public): how to log in to this server."""
    return Call("GET", "/auth/config", ModelBody("AuthInfo"))


def start_device_login() -> Call[DeviceAuthorization]:
    """POST /auth/device (public): start a device login; the user confirms its code in a browser."""
    return Call("POST", "/auth/device", ModelBody("DeviceAuthorization"))


def _device_token(response: httpx.Response) -> TokenIssued | DevicePending:
    # 202: not confirmed yet (or polling too fast); any other success carries the token.
    model = "DevicePending" if response.status_code == 202 else "TokenIssued"
    parse: Callable[[httpx.Response], TokenIssued | DevicePending] = ModelBody(model)
    return parse(response)


def poll_device_login(device_code: str) -> Call[TokenIssued | DevicePending]:
    """POST /auth/device/token (public): the token once confirmed, else DevicePending (202).

    A denied or expired login is a BadRequest whose detail says which.
    """
    return Call("POST", "/auth/device/token", _device_token, json={"device_code": device_code})


def logout() -> Call[None]:
    """DELETE /auth/token: revoke the bearer token this request is sent with (204)."""
    return Call("DELETE", "/auth/token", _nothing)


def revoke_user_tokens(user_id: str) -> Call[None]:
    """DELETE /users/{user_id}/tokens: revoke every token of a user (your own; any: operators)."""
    return Call("DELETE", f"/users/{segment(user_id)}/tokens", _nothing)


def whoami() -> Call[UserPublic]:
    """GET /users/me: the authenticated user."""
    return Call("GET", "/users/me", ModelBody("UserPublic", ("groups",)))


def list_environments() -> Call[EnvironmentList]:
    """GET /environments: every environment, with your registered cluster account on each."""
    return Call("GET", "/environments", ModelBody("EnvironmentList", ("environments",)))


def get_environment(environment: str) -> Call[EnvironmentPublic]:
    """GET /environments/{name}: one environment with your registered cluster account."""
    return Call("GET", f"/environments/{segment(environment)}", ModelBody("EnvironmentPublic"))


def set_identity(environment: str, login: str, key_id: str) -> Call[EnvironmentPublic]:
    """PUT /environments/{name}/identity: the login and SSH key your steps run with there."""
    return Call(
        "PUT",
        f"/environments/{segment(environment)}/identity",
        ModelBody("EnvironmentPublic"),
        json={"login": login, "key_id": key_id},
    )


def delete_identity(environment: str) -> Call[None]:
    """DELETE /environments/{name}/identity: forget your cluster account there (204)."""
    return Call("DELETE", f"/environments/{segment(environment)}/identity", _nothing)
