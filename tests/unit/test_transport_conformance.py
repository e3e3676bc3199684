"""The local transport does every operation of the interface as the SSH transport does
(tests/transport_conformance.py; the SSH side runs with the loopback cluster)."""

from __future__ import annotations

from pathlib import Path

from tests.transport_conformance import Check, parametrized

from hpcwaas.transports.local import LocalTransport


@parametrized()
async def test_local_transport(check: Check, tmp_path: Path) -> None:
    await check(LocalTransport(), str(tmp_path / "conformance"))
