"""What a command gets: its parsed arguments, the output, and a lazily built API client."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hpcwaas import __version__
from hpcwaas.cli.config import KEYS, Settings, config_path, resolve
from hpcwaas.cli.output import Output

if TYPE_CHECKING:
    import httpx

    from hpcwaas.client import Client


class Context:
    """One run of one command."""

    def __init__(
        self,
        args: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        prompt: Callable[[str], str] | None = None,
    ) -> None:
        # Before any command imports the SDK, and with it httpx.
        skip_httpx_command_line()
        self.args = args
        self.out = Output(getattr(args, "output", "text"))
        self.environ = os.environ if environ is None else environ
        self._transport = transport
        self._prompt = prompt
        self._settings: Settings | None = None
        self._client: Client | None = None
        self._clients: list[Client] = []

    @property
    def settings(self) -> Settings:
        """Connection settings resolved from flags, env vars and the config file."""
        if self._settings is None:
            flags: dict[str, Any] = {key: getattr(self.args, key, None) for key in KEYS}
            self._settings = resolve(
                flags,
                self.environ,
                getattr(self.args, "config", None),
                missing_ok=getattr(self.args, "config_may_be_missing", False),
            )
        return self._settings

    @property
    def config_file(self) -> str:
        """The path of the config file in use (`--config`, else ~/.waas)."""
        return config_path(getattr(self.args, "config", None))

    def client(self) -> Client:
        """The API client, built on first use (and the password prompted for then, if needed)."""
        if self._client is None:
            settings = self.settings
            user = password = None
            if settings.user:
                user, sep, password = settings.user.partition(":")
                if not sep:
                    password = self.prompt_secret("Authentication password: ")
            self._client = self.new_client(settings.access_token, user, password)
        return self._client

    def new_client(
        self, token: str | None = None, user: str | None = None, password: str | None = None
    ) -> Client:
        """A client with the connection settings and these credentials (none: anonymous)."""
        from hpcwaas.client import Client

        settings = self.settings
        client = Client(
            settings.api_url,
            token=token,
            user=user,
            password=password,
            verify=not settings.skip_tls_verify,
            ca_file=settings.ca_file,
            ca_path=settings.ca_path,
            cert_file=settings.cert_file,
            key_file=settings.key_file,
            user_agent=f"waas/{__version__}",
            transport=self._transport,
        )
        self._clients.append(client)
        return client

    def prompt_secret(self, text: str) -> str:
        """Read a secret from the terminal without echo."""
        if self._prompt is not None:
            return self._prompt(text)
        # Imported (with termios) when a prompt is due; looked up at call time so that it
        # can be replaced (tests, embedding).
        import getpass

        return getpass.getpass(text)

    def close(self) -> None:
        """Release the clients' connections."""
        for client in self._clients:
            client.close()


def skip_httpx_command_line() -> None:
    """Keep httpx from loading its own command line, which `waas` never uses.

    httpx imports it (click, pygments, rich.syntax: about 40 ms of each command's start) when
    click is installed, as it is next to the server. A None entry in sys.modules makes that
    import fail, which httpx expects and skips. Only before httpx is first imported.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
