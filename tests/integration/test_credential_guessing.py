"""Guessing passwords and tokens against real servers: floods of unknown bearer tokens, wrong
basic passwords and wrong form logins from one address get 429 with Retry-After, while other
addresses and the real user still get in (docs/security.md, "Guessing passwords and tokens");
an unknown account takes as long as a wrong password; concurrent wrong passwords do not hold
a real login up; and two replicas sharing PostgreSQL share the budgets.

Clients come from different loopback addresses (127.0.0.x): the server counts by the peer.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, envelope_item, free_port, post_login_form
from tests.integration.conftest import SsoSetup
from tests.pg_support import Postgres
from tests.replicas_support import Replicas

PASSWORD = "right-password-1"
WINDOW = 300
PER_ADDRESS = 10
PER_ACCOUNT = 5


def limits_env(
    window: float = WINDOW, per_address: int = PER_ADDRESS, per_account: int = PER_ACCOUNT
) -> dict[str, str]:
    prefix = "HPCWAAS_AUTH__CREDENTIAL_LIMITS__"
    return {
        prefix + "WINDOW_SECONDS": str(window),
        prefix + "MAX_FAILURES_PER_ADDRESS": str(per_address),
        prefix + "MAX_FAILURES_PER_ACCOUNT": str(per_account),
    }


def from_address(address: str, base_url: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 on Linux)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=60)


def add_account(server: LiveServer, name: str) -> None:
    added = server.admin("users", "add", name, "--password-stdin", input_text=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr


def start_server(tmp_path: Path, env: dict[str, str], accounts: tuple[str, ...]) -> LiveServer:
    server = LiveServer(tmp_path / "data", free_port(), env=env)
    for name in accounts:
        add_account(server, name)
    return server.start()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with low budgets; each test uses its own addresses and accounts."""
    accounts = ("alice", "dave")
    server = start_server(tmp_path_factory.mktemp("guarded"), limits_env(), accounts)
    yield server
    server.stop()


def assert_throttled(response: httpx.Response) -> int:
    """The 429 in the envelope; its Retry-After in seconds."""
    item = envelope_item(response, 429)
    assert item["id"] == "too_many_requests", item
    assert "auth.credential_limits" in item["detail"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    return retry_after


def test_a_flood_of_unknown_tokens_gets_429_and_valid_tokens_still_work(
    guarded: LiveServer,
) -> None:
    token = guarded.token("alice")
    with from_address("127.0.0.11", guarded.url) as attacker:
        answers = [
            attacker.get(
                "/workflows", headers={"Authorization": f"Bearer hw_{secrets.token_urlsafe(32)}"}
            )
            for _ in range(60)
        ]
        statuses = [r.status_code for r in answers]
        assert statuses[:PER_ADDRESS] == [401] * PER_ADDRESS
        assert set(statuses[PER_ADDRESS:]) == {429}, statuses
        assert_throttled(answers[-1])
        # Tokens not even shaped like this server's count alike.
        assert_throttled(attacker.get("/workflows", headers={"Authorization": "Bearer guess"}))
        # A real token from the same address (a neighbour behind the same NAT) still works.
        mine = attacker.get("/workflows", headers={"Authorization": f"Bearer {token}"})
        assert mine.status_code == 200
    with from_address("127.0.0.12", guarded.url) as other:
        guesses = [
            other.get("/workflows", headers={"Authorization": f"Bearer guess{n}"}).status_code
            for n in range(PER_ADDRESS + 1)
        ]
        assert guesses == [401] * PER_ADDRESS + [429]


def test_a_flood_of_wrong_basic_passwords_gets_429_and_the_user_still_gets_in(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, limits_env(), ("bob", "carol"))
    try:
        # bob logged in before from his own address: it is known.
        with from_address("127.0.0.22", server.url) as bob:
            assert bob.get("/workflows", auth=("bob", PASSWORD)).status_code == 200
        with from_address("127.0.0.21", server.url) as attacker:
            statuses = []
            took: dict[int, list[float]] = {401: [], 429: []}
            for n in range(40):
                started = time.monotonic()
                response = attacker.get("/workflows", auth=("bob", f"guess-{n}"))
                statuses.append(response.status_code)
                took.setdefault(response.status_code, []).append(time.monotonic() - started)
                if response.status_code == 429:
                    assert_throttled(response)
        assert statuses[:PER_ACCOUNT] == [401] * PER_ACCOUNT
        assert set(statuses[PER_ACCOUNT:]) == {429}, statuses
        # Refused before argon2 runs: a refusal costs far less than checking a password.
        assert statistics.median(took[429]) < 0.5 * statistics.median(took[401]), took

        # The budgets are in the database: a restart (which forgets the passwords this
        # process verified) keeps them.
        server.stop()
        server.start()
        with from_address("127.0.0.21", server.url) as attacker:
            assert_throttled(attacker.get("/workflows", auth=("bob", PASSWORD)))
        # bob, from his known address, with his password: in.
        with from_address("127.0.0.22", server.url) as bob:
            assert bob.get("/workflows", auth=("bob", PASSWORD)).status_code == 200
        with from_address("127.0.0.23", server.url) as carol:
            # Another account from another address: not concerned.
            assert carol.get("/workflows", auth=("carol", PASSWORD)).status_code == 200
            # bob from an address he never logged in from waits for the window's end.
            assert_throttled(carol.get("/workflows", auth=("bob", PASSWORD)))
    finally:
        server.stop()


def test_a_flood_of_wrong_form_logins_gets_429_and_another_address_logs_in(
    guarded: LiveServer,
) -> None:
    with from_address("127.0.0.31", guarded.url) as attacker:
        answers = [
            post_login_form(attacker, guarded.url, f"nobody-{n}", "guess") for n in range(15)
        ]
    statuses = [r.status_code for r in answers]
    assert statuses[:PER_ADDRESS] == [401] * PER_ADDRESS
    assert set(statuses[PER_ADDRESS:]) == {429}, statuses
    assert_throttled(answers[-1])
    with from_address("127.0.0.32", guarded.url) as dave:
        page = post_login_form(dave, guarded.url, "dave", PASSWORD)
    assert page.status_code == 200
    assert "hw_" in page.text


def test_after_the_back_off_the_user_gets_in_from_a_new_address(tmp_path: Path) -> None:
    server = start_server(tmp_path, limits_env(window=6), ("frank",))
    try:
        with from_address("127.0.0.41", server.url) as attacker:
            for n in range(PER_ACCOUNT):
                assert attacker.get("/workflows", auth=("frank", f"x{n}")).status_code == 401
        with from_address("127.0.0.42", server.url) as frank:
            retry_after = assert_throttled(frank.get("/workflows", auth=("frank", PASSWORD)))
            assert retry_after <= 6
            time.sleep(retry_after)
            assert frank.get("/workflows", auth=("frank", PASSWORD)).status_code == 200
    finally:
        server.stop()


def test_an_unknown_account_takes_as_long_as_a_wrong_password(tmp_path: Path) -> None:
    server = start_server(tmp_path, limits_env(per_address=1000, per_account=1000), ("grace",))
    durations: dict[str, list[float]] = {"grace": [], "nobody-here": []}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            # Interleaved, so that a change of the machine's load weighs on both alike.
            for _ in range(30):
                for account, measured in durations.items():
                    started = time.perf_counter()
                    assert client.get("/workflows", auth=(account, "wrong")).status_code == 401
                    measured.append(time.perf_counter() - started)
    finally:
        server.stop()
    existing, unknown = (statistics.median(d) for d in durations.values())
    print(f"median basic auth: existing account {existing:.3f} s, unknown {unknown:.3f} s")
    # Before: 263 ms against 4 ms. Both now run one argon2 check.
    assert max(existing, unknown) < 2 * min(existing, unknown), (existing, unknown)


def test_concurrent_wrong_passwords_do_not_hold_a_real_login_up(tmp_path: Path) -> None:
    alone_accounts = ("kim", "lee", "max")
    server = start_server(tmp_path, limits_env(), ("erin", "ivan", "victim", *alone_accounts))

    def login(address: str, user: str, password: str) -> tuple[int, float]:
        with from_address(address, server.url) as client:
            started = time.perf_counter()
            status = client.get("/workflows", auth=(user, password)).status_code
            return status, time.perf_counter() - started

    try:
        assert login("127.0.0.54", "erin", PASSWORD)[0] == 200
        # A restart forgets the verified passwords; erin's known address is kept.
        server.stop()
        server.start()
        # Accounts whose passwords were not verified yet: each login runs argon2.
        alone_runs = [login("127.0.0.55", user, PASSWORD) for user in alone_accounts]
        assert {status for status, _ in alone_runs} == {200}
        alone = statistics.median(seconds for _, seconds in alone_runs)
        rounds = {
            # 32 wrong passwords of an account from one address (as in the hostile run): few
            # are checked, one at a time; ivan, from an address new to him, waits for one
            # at most.
            "one address": ("127.0.0.53", "ivan", "127.0.0.52", "victim"),
            # 32 unknown accounts (each checked against the dummy hash) from 32 addresses
            # fill every slot: erin, from her known address, goes before them.
            "32 addresses": ("127.0.0.54", "erin", "127.0.5.{n}", "nobody-{n}"),
        }
        timings = {}
        for name, (address, user, flood_from, flood_user) in rounds.items():
            with ThreadPoolExecutor(max_workers=33) as pool:
                flood = [
                    pool.submit(login, flood_from.format(n=n), flood_user.format(n=n), f"g{n}")
                    for n in range(32)
                ]
                time.sleep(0.2)  # the flood is in
                status, timings[name] = pool.submit(login, address, user, PASSWORD).result()
                assert status == 200
                assert {f.result()[0] for f in flood} <= {401, 429}
    finally:
        server.stop()
    print(f"real login: {alone:.3f} s alone; during 32 concurrent wrong passwords: {timings}")
    # Before: 0.26 s alone, 4.65 s during the flood from one address (8.8 s on a loaded
    # 2-core machine). Now at most one check to wait for, then one running beside it; the
    # bound leaves room for a loaded machine.
    for during in timings.values():
        assert during < 3 * alone + 1.0, (alone, timings)


def test_two_replicas_on_postgresql_share_the_budgets(tmp_path: Path, postgres: Postgres) -> None:
    replicas = Replicas(tmp_path, postgres, None)
    for server in replicas.servers:
        server.env.update(limits_env())
    add_account(replicas.servers[0], "heidi")
    replicas.start()
    try:
        first, second = replicas.servers
        with (
            from_address("127.0.0.61", first.url) as to_first,
            from_address("127.0.0.61", second.url) as to_second,
        ):
            statuses = [
                (to_first if n % 2 else to_second)
                .get("/workflows", headers={"Authorization": f"Bearer hw_guess{n}"})
                .status_code
                for n in range(2 * PER_ADDRESS)
            ]
            assert statuses[:PER_ADDRESS] == [401] * PER_ADDRESS
            assert set(statuses[PER_ADDRESS:]) == {429}, statuses
        # The account's budget too: guesses at heidi from many addresses, on both replicas.
        guesses = []
        for n in range(PER_ACCOUNT + 2):
            replica = first if n % 2 else second
            with from_address(f"127.0.6.{n}", replica.url) as guesser:
                guesses.append(guesser.get("/workflows", auth=("heidi", f"x{n}")))
        assert [r.status_code for r in guesses] == [401] * PER_ACCOUNT + [429, 429]
        with from_address("127.0.0.63", second.url) as heidi:
            assert_throttled(heidi.get("/workflows", auth=("heidi", PASSWORD)))
    finally:
        replicas.stop()


def test_guessed_device_codes_and_provider_tokens_get_429(sso: SsoSetup) -> None:
    server = sso.start(
        accept_provider_tokens=True,
        credential_limits={"max_failures_per_address": PER_ADDRESS},
    )
    with from_address("127.0.0.71", server.url) as attacker:
        polls = [
            attacker.post("/auth/device/token", json={"device_code": secrets.token_urlsafe(24)})
            for _ in range(PER_ADDRESS + 3)
        ]
        statuses = [r.status_code for r in polls]
        assert statuses[:PER_ADDRESS] == [400] * PER_ADDRESS, [r.text for r in polls]
        assert set(statuses[PER_ADDRESS:]) == {429}, statuses
        assert_throttled(polls[-1])
        # Provider tokens are refused before the provider is asked.
        assert_throttled(
            attacker.get("/workflows", headers={"Authorization": "Bearer not-a-provider-token"})
        )
    with from_address("127.0.0.72", server.url) as other:
        poll = other.post("/auth/device/token", json={"device_code": "guess"})
        assert poll.status_code == 400
        provider = other.get("/workflows", headers={"Authorization": "Bearer not-a-token"})
        assert provider.status_code == 401
