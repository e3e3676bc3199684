"""What the web portal relies on: input errors naming their input, step needs, execution
filters, and the login that hands the token to the portal (without an open redirect)."""

from __future__ import annotations

import re

import httpx
from tests.conftest import LiveServer, wait_for_status
from tests.integration.conftest import SsoSetup
from tests.sso_support import authorize_url_for, parse_forms


def _trigger(api: httpx.Client, workflow: str, **inputs: object) -> str:
    response = api.post(f"/workflows/{workflow}", json={"inputs": inputs})
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def test_each_input_error_names_its_input_in_source(api: httpx.Client) -> None:
    response = api.post(
        "/workflows/demo@local@sweep", json={"inputs": {"n": 99, "mode": "slow", "nope": 1}}
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["source"]["input"] for e in errors} == {"n", "mode", "nope"}
    for error in errors:
        # the original four fields are unchanged
        assert (error["id"], error["status"], error["title"]) == ("bad_request", 400, "Bad Request")
        assert error["source"]["input"] in error["detail"]
    by_input = {e["source"]["input"]: e["detail"] for e in errors}
    assert by_input["n"] == "input 'n': 99 is above the maximum 8"


def test_errors_about_no_single_input_have_no_source(api: httpx.Client) -> None:
    response = api.post("/workflows/demo@local@sweep", json={"inputs": []})
    assert response.status_code == 400
    assert all("source" not in e for e in response.json()["errors"])


def test_execution_steps_carry_their_needs(api: httpx.Client) -> None:
    execution_id = _trigger(api, "demo@local@sweep")
    steps = {s["name"]: s for s in api.get(f"/executions/{execution_id}").json()["steps"]}
    assert steps["prepare"]["needs"] == []
    assert steps["left"]["needs"] == ["prepare"]
    assert sorted(steps["gather"]["needs"]) == ["left", "right"]


def test_executions_filter_by_status_and_workflow(api: httpx.Client) -> None:
    hello = _trigger(api, "demo@local@hello")
    failed = _trigger(api, "demo@local@fail")
    wait_for_status(api, hello, {"SUCCEEDED"})
    wait_for_status(api, failed, {"FAILED"})
    only_failed = api.get("/executions", params={"status": "FAILED"}).json()["executions"]
    assert [e["id"] for e in only_failed] == [failed]
    both = api.get("/executions", params={"status": "failed,SUCCEEDED"}).json()["executions"]
    assert {e["id"] for e in both} == {hello, failed}
    by_workflow = api.get("/executions", params={"workflow_id": "demo@local@hello"}).json()
    assert [e["id"] for e in by_workflow["executions"]] == [hello]
    assert by_workflow["executions"][0]["started_at"] is not None
    bad = api.get("/executions", params={"status": "DONE"})
    assert bad.status_code == 400
    assert "SUCCEEDED" in bad.json()["errors"][0]["detail"]


def _login(server: LiveServer, next_path: str | None) -> httpx.Response:
    """POST the form as a browser would, with ``next`` set even where the form left it out."""
    with httpx.Client() as browser:
        form = parse_forms(browser.get(server.url + "/auth/login").text)[0]
        data = {**form.fields, "username": "portal-user", "password": "portal-pass-1"}
        if next_path is not None:
            data["next"] = next_path
        return browser.post(server.url + "/auth/login", data=data)


def test_login_form_hands_the_token_to_the_portal_page_it_came_from(
    fresh_server: LiveServer,
) -> None:
    added = fresh_server.admin(
        "users", "add", "portal-user", "--password-stdin", input_text="portal-pass-1\n"
    )
    assert added.returncode == 0, added.stderr
    fresh_server.start()
    form = httpx.get(fresh_server.url + "/auth/login", params={"next": "/ui/#/keys"})
    assert 'name="next" value="/ui/#/keys"' in form.text
    page = _login(fresh_server, "/ui/#/keys")
    assert page.status_code == 200
    assert '<script src="/ui/assets/handoff.js"></script>' in page.text
    assert 'data-next="/ui/#/keys"' in page.text
    assert httpx.get(fresh_server.url + "/ui/assets/handoff.js").status_code == 200
    # Anything but a portal path is ignored: no redirect off the site.
    for foreign in ("https://evil.example/ui/", "//evil.example/", "/auth/token", "/ui/../x"):
        refused = httpx.get(fresh_server.url + "/auth/login", params={"next": foreign})
        assert 'name="next"' not in refused.text, foreign
        page = _login(fresh_server, foreign)
        assert page.status_code == 200
        assert "handoff" not in page.text, foreign
    plain = _login(fresh_server, None)
    assert "handoff" not in plain.text
    assert re.search(r'id="token">[^<]+<', plain.text)


def test_single_sign_on_returns_to_the_portal_through_a_short_lived_cookie(
    sso: SsoSetup,
) -> None:
    server = sso.start()
    with httpx.Client(timeout=30) as browser:
        start = browser.get(sso.login_url, params={"next": "/ui/#/executions"})
        assert start.status_code == 303
        [cookie] = [
            c for c in start.headers.get_list("set-cookie") if c.startswith("hpcwaas_next=")
        ]
        for attribute in ("HttpOnly", "Path=/auth", "SameSite=lax", "Max-Age=600"):
            assert attribute.lower() in cookie.lower(), cookie
        callback = authorize_url_for(start.headers["location"], "alice", client=browser)
        page = browser.get(callback)
    assert page.status_code == 200, page.text
    assert 'data-next="/ui/#/executions"' in page.text
    assert '<script src="/ui/assets/handoff.js"></script>' in page.text
    # read once: the cookie is cleared by the token page
    assert 'hpcwaas_next=""' in page.headers["set-cookie"]
    # a foreign `next` sets no such cookie
    foreign = httpx.get(server.url + "/auth/login", params={"next": "https://evil.example/"})
    assert "hpcwaas_next" not in foreign.headers.get("set-cookie", "")
