"""The SSH transport against the loopback cluster's real sshd (tests/cluster_support.py)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from tests.cluster_support import Cluster

from hpcwaas.secrets.sshkeys import KeyPair, generate_rsa
from hpcwaas.transports.ssh import (
    FAIL_FAST_SECONDS,
    ClientKey,
    HostKeyNotTrusted,
    SshAuthFailed,
    SshError,
    SshPool,
    SshTarget,
    SshUnavailable,
)
from hpcwaas.transports.ssh_command import SshCommand

USER = "hpcuser1"


class KeyStore:
    """The pool's key loader: private keys by ID, counting the loads."""

    def __init__(self) -> None:
        self.keys: dict[str, KeyPair] = {}
        self.loads: list[str] = []

    async def load(self, target: SshTarget) -> ClientKey:
        self.loads.append(target.key_id)
        return ClientKey(self.keys[target.key_id].private_pem)


@pytest.fixture(scope="module")
def authorized_pair() -> KeyPair:
    return generate_rsa()


@pytest.fixture
def keys(authorized_pair: KeyPair) -> KeyStore:
    store = KeyStore()
    store.keys["authorized"] = authorized_pair
    store.keys["stranger"] = generate_rsa()
    return store


@pytest.fixture
def target(cluster: Cluster, authorized_pair: KeyPair) -> SshTarget:
    cluster.clear_authorized(USER)
    cluster.authorize(USER, authorized_pair.public_line)
    return SshTarget(cluster.host, cluster.port, USER, "authorized", cluster.known_hosts)


@pytest.fixture
async def pool(keys: KeyStore) -> AsyncIterator[SshPool]:
    pool = SshPool(keys.load)
    yield pool
    await pool.close()


class Lines:
    """Collects output lines with the time each arrived."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.times.append(time.monotonic())


# Sleep durations no other run uses, so that what a crashed earlier run left is not counted.
_SLEEPS = itertools.count(100_000 + (os.getpid() % 1000) * 1000)


def unique_sleep() -> str:
    return f"sleep {next(_SLEEPS)}"


async def remote_sleeps(cluster: Cluster, pattern: str) -> list[str]:
    """The PIDs of hpcuser1's processes whose command line matches ``pattern``."""
    command = f"pgrep -u {USER} -f {pattern!r} || true"
    found = await asyncio.to_thread(cluster.run_as, USER, command)
    return found.stdout.split()


async def test_run_returns_output_and_exit_code(pool: SshPool, target: SshTarget) -> None:
    result = await pool.run(target, "id -un; echo oops >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "hpcuser1\n", "oops\n")
    echoed = await pool.run(target, "tr a-z A-Z", stdin="hello\n")
    assert echoed.stdout == "HELLO\n"
    binary = await pool.run(target, r"printf 'caf\xc3\xa9 \xff\n'")
    assert binary.stdout == "café \ufffd\n"
    assert binary.stdout_bytes == b"caf\xc3\xa9 \xff\n"


async def test_run_reports_a_signal_as_128_plus_its_number(
    pool: SshPool, target: SshTarget
) -> None:
    result = await pool.run(target, "kill -KILL $$")
    assert result.exit_code == 137


async def test_a_run_past_its_timeout_is_retryable_and_keeps_the_connection(
    pool: SshPool, target: SshTarget
) -> None:
    with pytest.raises(SshUnavailable) as caught:
        await pool.run(target, "sleep 5", timeout=0.5)
    assert caught.value.retryable
    assert "did not finish within 0.5 s" in str(caught.value)
    assert (await pool.run(target, "echo next")).stdout == "next\n"
    assert pool.connections_opened == 1


async def test_one_connection_is_reused_and_the_key_loaded_once(
    pool: SshPool, target: SshTarget, keys: KeyStore
) -> None:
    await asyncio.gather(*(pool.run(target, "true") for _ in range(5)))
    for _ in range(3):
        assert (await pool.run(target, "echo again")).stdout == "again\n"
    assert pool.connections_opened == 1
    assert keys.loads == ["authorized"]


async def test_idle_connections_are_closed_then_reopened(keys: KeyStore, target: SshTarget) -> None:
    pool = SshPool(keys.load, idle_seconds=0.3)
    try:
        await pool.run(target, "true")
        await asyncio.sleep(1.0)
        assert "connections=0" in repr(pool)
        await pool.run(target, "true")
        assert pool.connections_opened == 2
    finally:
        await pool.close()


async def test_sessions_per_connection_are_bounded(keys: KeyStore, target: SshTarget) -> None:
    pool = SshPool(keys.load, max_sessions=4)
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(pool.run(target, f"sleep 0.5; echo {i}") for i in range(20))
        )
        elapsed = time.monotonic() - started
    finally:
        await pool.close()
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(20)]
    assert pool.connections_opened == 1
    assert pool.peak_sessions == 4
    assert elapsed >= 5 * 0.5  # 20 commands, 4 at a time


async def test_put_file_creates_parents_and_sets_the_mode(pool: SshPool, target: SshTarget) -> None:
    path = f"hpcwaas-put/{time.monotonic_ns()}/deep/job.sh"
    await pool.put_file(target, path, b"#!/bin/bash\necho hi\n", mode=0o750)
    result = await pool.run(target, f"stat -c '%a %U' {path} && cat {path} && ls $(dirname {path})")
    assert result.stdout == "750 hpcuser1\n#!/bin/bash\necho hi\njob.sh\n"
    await pool.put_file(target, path, b"replaced\n")
    result = await pool.run(target, f"stat -c %a {path} && cat {path}")
    assert result.stdout == "600\nreplaced\n"


async def test_put_file_into_a_forbidden_directory_is_an_error(
    pool: SshPool, target: SshTarget
) -> None:
    with pytest.raises(SshError) as caught:
        await pool.put_file(target, "/root/not-yours/file", b"x")
    assert not caught.value.retryable
    assert "hpcuser1@127.0.0.1:2222" in str(caught.value)


async def test_start_streams_lines_as_they_come(pool: SshPool, target: SshTarget) -> None:
    out, err = Lines(), Lines()
    started = time.monotonic()
    command = await pool.transport(target).start(
        "for i in 1 2 3; do echo line $i; sleep 0.6; done; echo done >&2",
        cwd=Path("hpcwaas-stream"),
        env={},
        on_stdout=out,
        on_stderr=err,
    )
    result = await command.wait()
    ended = time.monotonic()
    assert (result.exit_code, result.killed, result.timed_out) == (0, False, False)
    assert out.lines == ["line 1", "line 2", "line 3"]
    assert err.lines == ["done"]  # the PGID marker is not output
    assert out.times[0] - started < 1.0 < ended - out.times[0]


async def test_start_runs_in_cwd_with_env_quoted(pool: SshPool, target: SshTarget) -> None:
    out, err = Lines(), Lines()
    tricky = 'it\'s "quoted" $HOME `id` ; exit 9'
    command = await pool.transport(target).start(
        'pwd; printf "%s\\n" "$TRICKY" "$SECOND"',
        cwd=Path(f"hpcwaas-cwd/{time.monotonic_ns()}/with space"),
        env={"TRICKY": tricky, "SECOND": "two\nlines"},
        on_stdout=out,
        on_stderr=err,
    )
    assert (await command.wait()).exit_code == 0, err.lines
    assert out.lines[0].startswith("/home/hpcuser1/hpcwaas-cwd/")
    assert out.lines[0].endswith("/with space")
    assert out.lines[1:] == [tricky, "two", "lines"]
    with pytest.raises(ValueError):
        await pool.transport(target).start(
            "true", cwd=Path("."), env={"BAD NAME": "x"}, on_stdout=out, on_stderr=err
        )


async def test_kill_ends_the_remote_process_group(
    pool: SshPool, target: SshTarget, cluster: Cluster
) -> None:
    out, err = Lines(), Lines()
    first, second = unique_sleep(), unique_sleep()
    command = await pool.transport(target).start(
        f"{first} & {second} & echo started; wait; echo never",
        cwd=Path("."),
        env={},
        on_stdout=out,
        on_stderr=err,
    )
    try:
        deadline = time.monotonic() + 10
        while not out.lines or len(await remote_sleeps(cluster, f"^({first}|{second})$")) < 2:
            assert time.monotonic() < deadline, "the remote sleeps did not start"
            await asyncio.sleep(0.1)
        assert out.lines == ["started"]
        assert isinstance(command, SshCommand) and command.pgid is not None
    finally:
        await command.kill(grace=2)
    result = await command.wait()
    assert result.killed and not result.timed_out
    assert (result.exit_code, result.signal) == (143, 15)
    assert await remote_sleeps(cluster, f"^({first}|{second})$") == []
    assert "never" not in out.lines


async def test_kill_is_not_held_up_by_the_session_bound(
    keys: KeyStore, target: SshTarget, cluster: Cluster
) -> None:
    pool = SshPool(keys.load, max_sessions=1)
    sleep = unique_sleep()
    try:
        out, err = Lines(), Lines()
        command = await pool.transport(target).start(
            f"echo started; {sleep}", cwd=Path("."), env={}, on_stdout=out, on_stderr=err
        )
        while not out.lines:
            await asyncio.sleep(0.05)
        await asyncio.wait_for(command.kill(grace=1), 15)
        assert (await command.wait()).killed
        assert await remote_sleeps(cluster, f"^{sleep}$") == []
    finally:
        await pool.close()


async def test_a_command_past_its_timeout_is_killed(
    pool: SshPool, target: SshTarget, cluster: Cluster
) -> None:
    out, err = Lines(), Lines()
    sleep = unique_sleep()
    command = await pool.transport(target).start(
        sleep, cwd=Path("."), env={}, on_stdout=out, on_stderr=err, timeout=1
    )
    result = await command.wait()
    assert result.timed_out and result.killed
    assert await remote_sleeps(cluster, f"^{sleep}$") == []


async def test_processes_a_command_leaves_behind_end_with_it(
    pool: SshPool, target: SshTarget, cluster: Cluster
) -> None:
    out, err = Lines(), Lines()
    sleep = unique_sleep()
    command = await pool.transport(target).start(
        f"{sleep} & echo left one", cwd=Path("."), env={}, on_stdout=out, on_stderr=err
    )
    started = time.monotonic()
    result = await command.wait()
    assert (result.exit_code, out.lines) == (0, ["left one"])
    assert time.monotonic() - started < 10
    assert await remote_sleeps(cluster, f"^{sleep}$") == []


async def test_an_unknown_host_key_is_refused_before_logging_in(
    pool: SshPool, target: SshTarget, cluster: Cluster, keys: KeyStore
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    log_before = len(cluster.sshd_log.read_text())
    for known_hosts in (f"[127.0.0.1]:2222 {other}", "", "[127.0.0.1]:2022 " + other):
        wrong = SshTarget(target.host, target.port, USER, "authorized", known_hosts)
        with pytest.raises(HostKeyNotTrusted) as caught:
            await pool.run(wrong, "touch host-key-was-not-checked")
        assert not caught.value.retryable
        assert "127.0.0.1:2222" in str(caught.value)
    await asyncio.sleep(0.2)
    new_log = cluster.sshd_log.read_text()[log_before:]
    assert "Accepted" not in new_log and "publickey" not in new_log, new_log
    assert (await pool.run(target, "ls host-key-was-not-checked")).exit_code != 0


async def test_a_key_the_user_did_not_authorize_is_refused(
    pool: SshPool, target: SshTarget
) -> None:
    stranger = SshTarget(target.host, target.port, USER, "stranger", target.known_hosts)
    with pytest.raises(SshAuthFailed) as caught:
        await pool.run(stranger, "true")
    message = str(caught.value)
    assert not caught.value.retryable
    assert "~/.ssh/authorized_keys of hpcuser1@127.0.0.1" in message


async def test_errors_and_reprs_carry_no_key_material(
    pool: SshPool, target: SshTarget, keys: KeyStore
) -> None:
    await pool.run(target, "true")
    stranger = SshTarget(target.host, target.port, USER, "stranger", target.known_hosts)
    with pytest.raises(SshAuthFailed) as caught:
        await pool.run(stranger, "true")
    secret_lines = {
        line
        for pair in keys.keys.values()
        for line in pair.private_pem.splitlines()
        if "PRIVATE KEY" not in line
    }
    shown = " ".join([str(caught.value), repr(caught.value), repr(pool), repr(keys.keys)])
    assert not any(line in shown for line in secret_lines)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_an_outage_is_retryable_and_the_next_call_reconnects(
    pool: SshPool, target: SshTarget, cluster: Cluster
) -> None:
    assert (await pool.run(target, "echo before")).stdout == "before\n"
    cluster.stop_sshd()
    try:
        with pytest.raises(SshUnavailable) as caught:
            await pool.run(target, "echo during")
        assert caught.value.retryable
        assert "hpcuser1@127.0.0.1:2222" in str(caught.value)
    finally:
        cluster.start_sshd()
    await asyncio.sleep(FAIL_FAST_SECONDS)  # until then, callers get the last failure at once
    assert (await pool.run(target, "echo after")).stdout == "after\n"
    assert pool.connections_opened == 2


async def test_a_connection_dropped_while_idle_is_replaced(
    pool: SshPool, target: SshTarget, cluster: Cluster
) -> None:
    await pool.run(target, "true")
    cluster.stop_sshd()
    cluster.start_sshd()
    assert (await pool.run(target, "echo fine")).stdout == "fine\n"
    assert pool.connections_opened == 2


async def test_a_connection_dropped_during_a_command_is_retryable(
    pool: SshPool, target: SshTarget, cluster: Cluster
) -> None:
    out, err = Lines(), Lines()
    sleep = unique_sleep()
    command = await pool.transport(target).start(
        f"echo started; {sleep}", cwd=Path("."), env={}, on_stdout=out, on_stderr=err
    )
    while not out.lines:
        await asyncio.sleep(0.05)
    assert isinstance(command, SshCommand) and command.pgid is not None
    cluster.stop_sshd()
    try:
        with pytest.raises(SshUnavailable) as caught:
            await command.wait()
        assert caught.value.retryable
        assert "dropped" in str(caught.value)
    finally:
        cluster.start_sshd()
        # During the outage nobody could reach the group it left running.
        await asyncio.to_thread(cluster.run_as, USER, f"kill -- -{command.pgid}")
    await asyncio.sleep(FAIL_FAST_SECONDS)  # until then, callers get the last failure at once
    assert (await pool.run(target, "echo back")).stdout == "back\n"
