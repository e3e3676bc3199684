"""Fuzzing every operation of the REST API from the server's own OpenAPI document.

schemathesis reads ``/openapi.json`` from a real ``hpcwaas-api`` process and sends, for
each operation it lists (routes added later are fuzzed without touching this file),
generated requests: valid ones and invalid ones (wrong types, missing fields, odd
strings). Path parameters are half the time an ID that exists (a workflow of the fuzz
catalog, an execution, an SSH key, an environment), so that requests reach past the 404s.

Checks on every response: no 5xx; the status is documented for the operation and the
body and headers match the document; every 4xx (and 5xx) carries the error envelope
``{"errors":[{"id","status","title","detail"}]}`` whose ``status`` is the HTTP status.
Then the same operations without a token: every route that is not public answers 401
in the envelope with ``WWW-Authenticate``.

``HPCWAAS_FUZZ_EXAMPLES`` sets the number of generated requests per operation and
generation phase (default 25: the module runs in about a minute on two cores); the
counts actually sent are printed at the end of the module.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import hypothesis
import jsonschema
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, Response
from tests.conftest import (
    ENVELOPE_ITEM_KEYS,
    OPTIONAL_ITEM_KEYS,
    LiveServer,
    free_port,
    wait_for_status,
)

EXAMPLES = int(os.environ.get("HPCWAAS_FUZZ_EXAMPLES", "25"))

# schemathesis 4.32's fixture-loaded schemas read and rename `node._nodeid`, which pytest 9.2
# replaced by a structured id: give them the old name back (renaming only changes the label
# of the report lines; each operation is still reported as a subtest of its own).
if not hasattr(pytest.Function, "_nodeid"):
    pytest.Function._nodeid = property(  # type: ignore[attr-defined]
        lambda node: node.nodeid, lambda node, value: None
    )

# Routes anyone may call (docs/compatibility.md, "Routes": the logins, the device login a CLI
# starts without a token and the login configuration it reads first). Every other route needs
# a token.
PUBLIC_PATHS = {
    "/auth/login",
    "/auth/authorize",
    "/auth/config",
    "/auth/device",
    "/auth/device/token",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/metrics",
}
PUBLIC_PREFIXES = ("/schemas/", "/ui/")

# Quick workflows only: fuzzed triggers must not leave long-running steps behind.
FUZZ_CATALOG = """
application: fuzz
environments: [local]
expose: [echo, typed]
workflows:
  echo:
    inputs:
      text: {type: string, default: hi, max_length: 500}
    steps:
      say:
        kind: shell
        run: printf '%s\\n' {{ inputs.text }}
  typed:
    inputs:
      n: {type: integer, default: 1, minimum: 0, maximum: 5}
      ratio: {type: number, default: 0.5, minimum: 0, maximum: 1}
      flag: {type: boolean, default: false}
      mode: {type: enum, values: [fast, accurate], default: fast}
      tags: {type: list, items: string, default: [a], max_length: 4}
      label: {type: string, default: x, pattern: "[a-z]*", max_length: 16}
    steps:
      show:
        kind: shell
        run: |
          echo {{ inputs.n }} {{ inputs.ratio }} {{ inputs.flag }}
          echo {{ inputs.mode }} {{ inputs.label }}
"""

# A cluster environment nothing runs on: lets PUT /environments/{name}/identity succeed.
ENVIRONMENTS = {
    "local": {"kind": "local"},
    "cluster": {
        "kind": "slurm",
        "host": "127.0.0.1",
        "port": 9,
        "host_keys": [
            "[127.0.0.1]:9 ssh-ed25519 "
            "AAAAC3NzaC1lZDI1NTE5AAAAIHVkIiqLvvbGy9NKYdw6lpIsm7ISCKTF6D2tUOXIZBwN"
        ],
        "unreachable_deadline": 5,
    },
}


@dataclass
class FuzzTarget:
    """The fuzzed server, a token of its user, and IDs that exist on it."""

    server: LiveServer
    token: str
    ids: dict[str, list[str]]
    sent: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[FuzzTarget]:
    root = tmp_path_factory.mktemp("fuzz")
    catalog = root / "catalog"
    catalog.mkdir()
    (catalog / "fuzz.yaml").write_text(FUZZ_CATALOG)
    live = LiveServer(root / "data", free_port())
    live.env["HPCWAAS_CATALOG_DIRS"] = json.dumps([str(catalog)])
    live.env["HPCWAAS_ENVIRONMENTS"] = json.dumps(ENVIRONMENTS)
    # An operator reaches the most code: the audit log, every user's executions.
    live.env["HPCWAAS_OPERATORS"] = json.dumps({"users": ["fuzzer"]})
    # The fuzzer makes up credentials by the hundred from one address: past the budget they
    # would get the throttling's 429 (test_credential_guessing.py), not the 401 checked here.
    live.env["HPCWAAS_AUTH__CREDENTIAL_LIMITS__MAX_FAILURES_PER_ADDRESS"] = "1000000"
    live.env["HPCWAAS_AUTH__CREDENTIAL_LIMITS__MAX_FAILURES_PER_ACCOUNT"] = "1000000"
    live.start()
    token = live.token("fuzzer")
    with live.client(token) as api:
        keys = [api.post("/ssh_keys", json={"type": "ed25519"}).json()["id"] for _ in range(3)]
        executions = []
        for workflow in ("fuzz@local@echo", "fuzz@local@typed"):
            made = api.post(f"/workflows/{workflow}", json={"inputs": {}})
            assert made.status_code == 201, made.text
            executions.append(made.headers["location"].rsplit("/", 1)[1])
        for execution_id in executions:
            wait_for_status(api, execution_id, {"SUCCEEDED", "FAILED", "CANCELLED"})
    ids = {
        "workflow_id": ["fuzz@local@echo", "fuzz@local@typed"],
        "execution_id": executions,
        "key_id": keys,
        "name": ["local", "cluster"],
    }
    fuzz = FuzzTarget(live, token, ids)
    yield fuzz
    live.stop()
    if fuzz.sent:
        lines = [
            f"API fuzzing: {sum(fuzz.sent.values())} requests, "
            f"{len(fuzz.sent)} (operation, credentials) pairs:",
            *(f"  {count:5d}  {label}" for label, count in sorted(fuzz.sent.items())),
        ]
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print("\n" + "\n".join(lines))
    # The server survived: it still answers, and its log holds no traceback.
    log = live.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


def _config(fuzz: FuzzTarget, token: str | None, mode: str) -> schemathesis.Config:
    """Examples per operation, generation modes, and real IDs for path parameters."""
    parameters = {f"path.{name}": {"dictionary": name, "probability": 0.5} for name in fuzz.ids}
    return schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {token}"} if token else {},
            "generation": {"max-examples": EXAMPLES, "mode": mode},
            "dictionaries": {name: {"values": values} for name, values in fuzz.ids.items()},
            "parameters": parameters,
            "phases": {"stateful": {"enabled": False}},
            # Cursors and IDs are opaque: a schema cannot tell a valid one from a random string,
            # so a 400 for a "schema-valid" random cursor is right. The other checks stay on.
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                # Re-sent with made-up credentials, a request still carries the configured
                # token (a false "accepts invalid authentication" on long responses). The
                # anonymous test below checks every private route for its 401 instead.
                "ignored_auth": {"enabled": token is None},
            },
        }
    )


@pytest.fixture(scope="module")
def authenticated_schema(target: FuzzTarget) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        target.server.url + "/openapi.json",
        config=_config(target, target.token, "all"),
    )


@pytest.fixture(scope="module")
def anonymous_schema(target: FuzzTarget) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        target.server.url + "/openapi.json", config=_config(target, None, "positive")
    )


def _documented_content(case: Case, status: int) -> dict[str, Any]:
    responses = case.operation.definition.raw.get("responses", {})
    documented = responses.get(str(status)) or responses.get("default") or {}
    content: dict[str, Any] = documented.get("content", {})
    return content


@schemathesis.check
def error_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 4xx or 5xx is the error envelope, with its own status, unless documented as HTML."""
    status = response.status_code
    if status < 400:
        return None
    content = _documented_content(case, status)
    if content and "application/json" not in content:
        return None  # the login form's own page, documented as text/html
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"errors"}, f"not the envelope: {body!r}"
    errors = body["errors"]
    assert isinstance(errors, list) and errors, f"no error items: {body!r}"
    for item in errors:
        keys = set(item)
        assert ENVELOPE_ITEM_KEYS <= keys <= ENVELOPE_ITEM_KEYS | OPTIONAL_ITEM_KEYS, item
        assert item["status"] == status, f"envelope status {item['status']} on a {status}"
        assert isinstance(item["detail"], str) and item["detail"], f"empty detail: {item!r}"
    return True


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


SETTINGS = hypothesis.settings(
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    # Explicit settings win over the profile: follow its choice (derandomized in CI).
    derandomize=hypothesis.settings.default.derandomize,
)

authenticated = schemathesis.pytest.from_fixture("authenticated_schema").exclude(
    # Revokes the token it is called with: fuzzed below with a token of its own per request.
    method="DELETE",
    path="/auth/token",
)


@authenticated.parametrize()
@SETTINGS
def test_every_operation_answers_documented_statuses_and_never_a_server_error(
    case: Case, target: FuzzTarget
) -> None:
    target.sent[f"{case.operation.label} (token)"] += 1
    case.call_and_validate(
        additional_checks=[error_envelope],
        timeout=30,
        # The logs route waits up to `timeout` for new entries, and the executions list's
        # stream stays open that long: keep fuzzed waits short.
        params={"timeout": "1s"}
        if case.operation.path.endswith("/logs") or case.operation.path == "/events/executions"
        else None,
    )


revoke = schemathesis.pytest.from_fixture("authenticated_schema").include(
    method="DELETE", path="/auth/token"
)


@revoke.parametrize()
@SETTINGS
def test_logging_out_answers_documented_statuses(case: Case, target: FuzzTarget) -> None:
    target.sent[f"{case.operation.label} (own token)"] += 1
    own = target.server.token("fuzzer", ttl="10m")
    case.call_and_validate(
        headers={"Authorization": f"Bearer {own}"}, additional_checks=[error_envelope]
    )


anonymous = schemathesis.pytest.from_fixture("anonymous_schema")


@anonymous.parametrize()
@SETTINGS
def test_without_a_token_every_private_route_answers_401_in_the_envelope(
    case: Case, target: FuzzTarget
) -> None:
    target.sent[f"{case.operation.label} (no token)"] += 1
    response = case.call(
        timeout=30, params={"timeout": "1s"} if case.operation.path.endswith("/logs") else None
    )
    assert response.status_code < 500, response.text
    if _is_public(case.operation.path):
        return
    assert response.status_code == 401, f"{case.operation.label}: {response.text}"
    assert response.headers.get("www-authenticate"), response.headers
    body = response.json()
    assert body["errors"][0]["status"] == 401
    assert body["errors"][0]["id"] == "unauthorized"


def test_the_document_declares_every_error_status_in_the_envelope(target: FuzzTarget) -> None:
    """No 422 (never sent), and each error status of each operation has the envelope's schema."""
    import httpx

    document = httpx.get(target.server.url + "/openapi.json").json()
    assert "ErrorEnvelope" in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, f"{method.upper()} {path}"
            assert "500" in responses, f"{method.upper()} {path}"
            if not _is_public(path):
                assert "401" in responses, f"{method.upper()} {path} does not declare its 401"
                assert operation.get("security"), f"{method.upper()} {path} has no security"
            for status, answer in responses.items():
                content = answer.get("content", {})
                if int(status) >= 400 and "application/json" in content:
                    ref = content["application/json"]["schema"].get("$ref", "")
                    assert ref.endswith("/ErrorEnvelope"), f"{method.upper()} {path} {status}"


# Characters a request can carry: no lone surrogates (not text), no "/" (another route).
TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters="/")


def _declared(document: dict[str, Any], path: str, where: str, name: str) -> dict[str, Any]:
    for operation in document["paths"][path].values():
        for parameter in operation.get("parameters", []):
            if (parameter["in"], parameter["name"]) == (where, name):
                schema: dict[str, Any] = parameter["schema"]
                return schema
    raise AssertionError(f"{path} declares no {where} parameter {name}")


# A conformance run found these declared valid, yet answered 400: (path, in, name) -> value.
FOUND_REFUSED = {
    ("/executions/{execution_id}/events", "header", "Last-Event-ID"): "null",
    ("/executions/{execution_id}/logs", "query", "size"): "x",
    ("/executions", "query", "cursor"): "__main__",
    ("/workflows/{workflow_id}", "path", "workflow_id"): "&",
}


def _send(api: Any, key: tuple[str, str, str], value: str, execution_id: str) -> Any:
    """A request whose parameter ``key`` is ``value``."""
    path, _, name = key
    if name == "Last-Event-ID":
        return api.get(f"/executions/{execution_id}/events", headers={name: value})
    if name == "size":
        logs = f"/executions/{execution_id}/logs"
        return api.get(logs, params={name: value, "timeout": "1ms"})
    if name == "cursor":
        return api.get(path, params={name: value})
    return api.get("/workflows/" + quote(value, safe=""))


@pytest.mark.parametrize("key", list(FOUND_REFUSED), ids=lambda key: key[2])
def test_the_document_calls_valid_only_what_the_server_accepts(
    target: FuzzTarget, key: tuple[str, str, str]
) -> None:
    """The value found, and values of the declared form: a value is refused with 400
    exactly when the document calls it invalid."""
    import httpx

    document = httpx.get(target.server.url + "/openapi.json").json()
    schema = _declared(document, *key)
    execution_id = target.ids["execution_id"][0]
    with target.server.client(target.token) as api:

        def check(value: str) -> None:
            valid = jsonschema.Draft202012Validator(schema).is_valid(value)
            status = _send(api, key, value, execution_id).status_code
            assert (status == 400) == (not valid), f"{key} {value!r}: {status}"

        check(FOUND_REFUSED[key])
        values = st.from_regex(schema["pattern"], fullmatch=True, alphabet=TEXT)
        hypothesis.settings(max_examples=30, deadline=None)(given(values)(check))()
