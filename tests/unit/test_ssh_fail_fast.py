"""A login node that refuses connections is tried once per FAIL_FAST_SECONDS, not once per
waiting step: the steps waiting meanwhile get the same failure, and the key store one read."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hpcwaas.secrets.sshkeys import generate_ed25519
from hpcwaas.transports import ssh
from hpcwaas.transports.ssh import ClientKey, SshPool, SshTarget, SshUnavailable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


async def test_steps_waiting_on_a_refusing_host_share_one_attempt_and_one_key_read() -> None:
    reads: list[str] = []
    private = generate_ed25519().private_pem

    async def load_key(target: SshTarget) -> ClientKey:
        reads.append(target.key_id)
        return ClientKey(private)

    pool = SshPool(load_key, connect_timeout=2)
    target = SshTarget("127.0.0.1", _closed_port(), "someone", "key-1", "")
    try:
        outcomes = await asyncio.gather(
            *(pool.run(target, "true") for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(o, SshUnavailable) for o in outcomes), outcomes
        assert pool.connect_attempts == 1 and reads == ["key-1"]
        assert len({str(o) for o in outcomes}) == 1  # the same message for every step
        await asyncio.sleep(ssh.FAIL_FAST_SECONDS + 0.1)
        with pytest.raises(SshUnavailable):
            await pool.run(target, "true")
        assert pool.connect_attempts == 2  # tried again once the window passed
    finally:
        await pool.close()
