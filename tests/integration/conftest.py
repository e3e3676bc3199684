"""Integration fixtures: tests here start real processes (servers, an identity provider)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import LiveServer, free_port
from tests.sso_support import OidcProvider

USERS = {
    "alice": {"groups": ["climate"], "given_name": "Alice", "family_name": "Liddell"},
    "bob": {"groups": [], "given_name": "Bob", "family_name": "Builder"},
}

GROUP_APP = """
application: climate
environments: [local]
expose: [model]
access: {groups: [climate]}
workflows:
  model:
    steps:
      run: {kind: shell, run: echo modelling}
"""


class SsoSetup:
    """A provider and an hpcwaas server configured for it, started in that order."""

    def __init__(self, tmp_path: Path, start_provider: Callable[..., OidcProvider]) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.redirect_url = f"http://127.0.0.1:{self.port}/auth/authorize"
        self._start_provider = start_provider
        self.provider: OidcProvider | None = None
        self.server: LiveServer | None = None

    def start(
        self, *, provider: dict[str, Any] | None = None, discovery: bool = True, **auth: Any
    ) -> LiveServer:
        """Start both; ``discovery`` adds the provider's issuer to the original's keys."""
        self.provider = self._start_provider(self.redirect_url, users=USERS, **(provider or {}))
        catalog = self.tmp_path / "catalog"
        catalog.mkdir(exist_ok=True)
        (catalog / "climate.yaml").write_text(GROUP_APP)
        auth_section = self.provider.sso_auth_config(self.redirect_url)
        if discovery:
            auth_section["issuer"] = self.provider.issuer
        auth_section.update(auth)
        config = {
            "listen_address": f"127.0.0.1:{self.port}",
            "data_dir": str(self.tmp_path / "data"),
            "catalog_dirs": [str(Path(__file__).parents[2] / "examples"), str(catalog)],
            "auth": auth_section,
        }
        path = self.tmp_path / "hpcwaas.yml"
        path.write_text(yaml.safe_dump(config))
        self.server = LiveServer(
            self.tmp_path / "data", self.port, extra_args=["--config", str(path)]
        ).start()
        return self.server

    @property
    def login_url(self) -> str:
        assert self.server is not None
        return self.server.url + "/auth/login"


@pytest.fixture
def sso(tmp_path: Path, oidc_provider: Callable[..., OidcProvider]) -> Iterator[SsoSetup]:
    setup = SsoSetup(tmp_path, oidc_provider)
    yield setup
    if setup.server is not None:
        setup.server.stop()
