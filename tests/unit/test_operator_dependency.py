"""`OperatorUser`: the dependency that admits operators only, with the API's 403 envelope."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
from fastapi import FastAPI

from hpcwaas.auth.identity import Identity
from hpcwaas.server.deps import OperatorUser
from hpcwaas.server.problems import install_error_handlers
from hpcwaas.settings import OperatorsConfig, Settings

PEOPLE = {
    "root": Identity("root"),
    "member": Identity("member", groups=frozenset({"ops"})),
    "alice": Identity("alice", groups=frozenset({"climate"})),
}


class ByName:
    """Authenticates `Bearer <name>` as one of PEOPLE."""

    async def authenticate(self, authorization: str | None, address: str) -> Identity:
        return PEOPLE[(authorization or "").removeprefix("Bearer ")]


def app(tmp_path) -> httpx.AsyncClient:
    application = FastAPI()
    settings = Settings(
        data_dir=tmp_path, operators=OperatorsConfig(users=["root"], groups=["ops"])
    )
    application.state.runtime = SimpleNamespace(settings=settings, authenticator=ByName())
    install_error_handlers(application, 'Bearer realm="hpcwaas"')

    @application.get("/operators-only")
    async def operators_only(user: OperatorUser) -> dict[str, str]:
        return {"user_id": user.user_id}

    return httpx.AsyncClient(transport=httpx.ASGITransport(application), base_url="http://t")


async def test_operators_by_user_id_or_group_pass(tmp_path) -> None:
    client = app(tmp_path)
    for name in ("root", "member"):
        headers = {"Authorization": f"Bearer {name}"}
        response = await client.get("/operators-only", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"user_id": name}


async def test_others_get_a_403_naming_the_operators_key(tmp_path) -> None:
    client = app(tmp_path)
    response = await client.get("/operators-only", headers={"Authorization": "Bearer alice"})
    assert response.status_code == 403
    [item] = response.json()["errors"]
    assert (item["id"], item["title"]) == ("forbidden", "Forbidden")
    assert "`operators` config key" in item["detail"]
