"""The SSH transport does every operation of the interface as the local transport does
(tests/transport_conformance.py), against the loopback cluster's real sshd."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from tests.cluster_support import Cluster
from tests.transport_conformance import Check, parametrized

from hpcwaas.secrets.sshkeys import KeyPair, generate_rsa
from hpcwaas.transports.ssh import ClientKey, SshPool, SshTarget

USER = "hpcuser1"


@pytest.fixture(scope="module")
def pair() -> KeyPair:
    return generate_rsa()


@pytest.fixture
async def pool(cluster: Cluster, pair: KeyPair) -> AsyncIterator[SshPool]:
    cluster.clear_authorized(USER)
    cluster.authorize(USER, pair.public_line)

    async def load(target: SshTarget) -> ClientKey:
        return ClientKey(pair.private_pem)

    pool = SshPool(load)
    yield pool
    await pool.close()


@parametrized()
async def test_ssh_transport(check: Check, pool: SshPool, cluster: Cluster) -> None:
    target = SshTarget(cluster.host, cluster.port, USER, "conformance", cluster.known_hosts)
    transport = pool.transport(target)
    base = f"hpcwaas-conformance/{time.monotonic_ns()}"  # under the login's home
    try:
        await check(transport, base)
    finally:
        await transport.run(f"rm -rf -- {base}")
