"""What a command gets: its parsed arguments, the output, and a lazily built API client."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hpcwaas import __version__
from hpcwaas.cli.config import KEYS, Settings, resolve
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
        self.args = args
        self.out = Output(getattr(args, "output", "text"))
        self.environ = os.environ if environ is None else environ
        self._transport = transport
        self._prompt = prompt
        self._settings: Settings | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        """Connection settings resolved from flags, env vars and the config file."""
        if self._settings is None:
            flags: dict[str, Any] = {key: getattr(self.args, key, None) for key in KEYS}
            self._settings = resolve(flags, self.environ, getattr(self.args, "config", None))
        return self._settings

    def client(self) -> Client:
        """The API client, built on first use (and the password prompted for then, if needed)."""
        if self._client is None:
            from hpcwaas.client import Client

            settings = self.settings
            user = password = None
            if settings.user:
                user, sep, password = settings.user.partition(":")
                if not sep:
                    # Looked up at call time so the prompt can be replaced (tests, embedding).
                    prompt = self._prompt or getpass.getpass
                    password = prompt("Authentication password: ")
            self._client = Client(
                settings.api_url,
                token=settings.access_token,
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
        return self._client

    def close(self) -> None:
        """Release the client's connections."""
        if self._client is not None:
            self._client.close()
