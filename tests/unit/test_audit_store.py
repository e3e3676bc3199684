"""The audit log's store: what `record` refuses, and what `query`'s filters and pages return."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hpcwaas.server.admin_audit import AuditArgumentError, filters_from, parse_when
from hpcwaas.store import audit
from hpcwaas.store.audit import AuditAction, AuditFilters, AuditPage, BadCursor, Outcome
from hpcwaas.store.database import Database

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


async def _add(db: Database, **fields: Any) -> None:
    values: dict[str, Any] = {
        "actor": "alice",
        "action": AuditAction.LOGIN,
        "target": None,
        "source": "127.0.0.1",
        **fields,
    }
    async with db.write() as conn:
        await audit.record(conn, **values)


async def _query(db: Database, page: AuditPage | None = None, **filters: Any) -> list[Any]:
    async with db.read() as conn:
        events, _ = await audit.query(conn, AuditFilters(**filters), page or AuditPage(limit=100))
    return events


@pytest.fixture
async def history(db: Database) -> Database:
    """Six events over an hour, by three actors."""
    await _add(db, at=T0, actor="alice", action=AuditAction.LOGIN)
    await _add(
        db,
        at=T0 + timedelta(minutes=10),
        actor="bob",
        action=AuditAction.LOGIN,
        outcome=Outcome.FAILURE,
        details={"reason": "wrong user name or password"},
    )
    await _add(
        db,
        at=T0 + timedelta(minutes=20),
        actor="alice",
        action=AuditAction.SSH_KEY_CREATE,
        target="key-1",
    )
    await _add(
        db,
        at=T0 + timedelta(minutes=30),
        actor="alice",
        action=AuditAction.EXECUTION_TRIGGER,
        target="exec-1",
    )
    await _add(
        db,
        at=T0 + timedelta(minutes=40),
        actor="operator",
        source="cli",
        action=AuditAction.TOKEN_ISSUE,
        target="tok-1",
    )
    await _add(
        db,
        at=T0 + timedelta(minutes=50),
        actor="alice",
        action=AuditAction.EXECUTION_CANCEL,
        target="exec-1",
    )
    return db


async def test_query_returns_newest_first_with_every_field(history: Database) -> None:
    events = await _query(history)
    assert [e.action for e in events] == [
        "execution.cancel",
        "token.issue",
        "execution.trigger",
        "ssh_key.create",
        "login",
        "login",
    ]
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)
    failed = events[4]
    assert (failed.actor, failed.outcome, failed.source) == ("bob", "failure", "127.0.0.1")
    assert failed.details == {"reason": "wrong user name or password"}
    assert failed.at == T0 + timedelta(minutes=10)


async def test_query_filters_by_actor_action_target_and_outcome(history: Database) -> None:
    assert {e.action for e in await _query(history, actor="bob")} == {"login"}
    assert len(await _query(history, actor="alice")) == 4
    assert [e.actor for e in await _query(history, action="login")] == ["bob", "alice"]
    assert [e.action for e in await _query(history, target="exec-1")] == [
        "execution.cancel",
        "execution.trigger",
    ]
    assert [e.actor for e in await _query(history, outcome="failure")] == ["bob"]
    both = await _query(history, actor="alice", action="login")
    assert [(e.actor, e.action) for e in both] == [("alice", "login")]
    assert await _query(history, actor="nobody") == []


async def test_query_since_is_inclusive_and_until_exclusive(history: Database) -> None:
    since = await _query(history, since=T0 + timedelta(minutes=30))
    assert [e.action for e in since] == ["execution.cancel", "token.issue", "execution.trigger"]
    until = await _query(history, until=T0 + timedelta(minutes=20))
    assert [e.actor for e in until] == ["bob", "alice"]
    window = await _query(
        history, since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30)
    )
    assert [e.action for e in window] == ["ssh_key.create", "login"]


async def test_pages_cover_every_event_once_even_while_new_ones_arrive(
    history: Database,
) -> None:
    seen: list[int] = []
    cursor: str | None = None
    while True:
        async with history.read() as conn:
            events, cursor = await audit.query(conn, AuditFilters(), AuditPage(2, cursor))
        seen += [e.id for e in events]
        await _add(history, actor="late")  # newer than every page: never in the walk
        if cursor is None:
            break
    assert len(seen) == 6 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


async def test_pages_keep_the_filters(history: Database) -> None:
    async with history.read() as conn:
        first, cursor = await audit.query(conn, AuditFilters(actor="alice"), AuditPage(3))
        second, end = await audit.query(conn, AuditFilters(actor="alice"), AuditPage(3, cursor))
    assert cursor is not None and end is None
    assert [e.actor for e in first + second] == ["alice"] * 4


async def test_a_cursor_from_elsewhere_is_refused_with_what_to_do(history: Database) -> None:
    from hpcwaas.store.pagination import encode_cursor

    async with history.read() as conn:
        for bad in ("garbage", encode_cursor(T0, "exec-1")):
            with pytest.raises(BadCursor, match="next_cursor"):
                await audit.query(conn, AuditFilters(), AuditPage(10, bad))


@pytest.mark.parametrize(
    "details",
    [
        {"password": "hunter22"},
        {"client_secret": "x"},
        {"token": "abc"},
        {"privateKey": "x"},
        {"nested": {"a": 1}},
    ],
)
async def test_details_that_may_hold_a_secret_are_refused(
    db: Database, details: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"secret|plain value"):
        await _add(db, details=details)
    assert await _query(db) == []  # nothing half-written


async def test_values_that_look_like_a_token_or_a_private_key_are_redacted(
    db: Database,
) -> None:
    token = "hw_" + "A" * 43
    await _add(
        db,
        details={
            "reason": token,
            "said": f"bad token: {token}",
            "note": "-----BEGIN RSA PRIVATE KEY-----\nMIIE",
            "ok": "fine",
        },
    )
    (event,) = await _query(db)
    assert event.details == {
        "reason": "[redacted]",
        "said": "[redacted]",
        "note": "[redacted]",
        "ok": "fine",
    }


async def test_long_values_are_cut_and_token_ids_are_allowed(db: Database) -> None:
    await _add(db, target="t" * 600, details={"token_id": "abc123", "reason": "x" * 1000})
    (event,) = await _query(db)
    assert len(event.target) == 512
    assert event.details["token_id"] == "abc123"
    assert len(event.details["reason"]) == 256


def _args(**given: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "user": None,
        "event_action": None,
        "target": None,
        "outcome": None,
        "since": None,
        "until": None,
        "limit": "50",
        "cursor": None,
        **given,
    }
    return argparse.Namespace(**values)


def test_since_takes_a_time_or_a_duration_back_from_now() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_when("--since", "2026-11-25T10:00Z", now) == T0
    assert parse_when("--since", "2026-11-25T10:00", now) == T0  # UTC when no zone
    assert parse_when("--since", "2026-11-25T11:00+01:00", now) == T0
    assert parse_when("--since", "2h", now) == T0
    assert parse_when("--since", "1h30m", now) == now - timedelta(minutes=90)


@pytest.mark.parametrize("bad", ["yesterday", "2h ago", "2026-13-01", "5"])
def test_a_bad_since_is_an_error_that_shows_both_forms(bad: str) -> None:
    with pytest.raises(AuditArgumentError, match=r"--since .*2026-11-25T10:00Z.*2h"):
        filters_from(_args(since=bad), datetime.now(UTC))


def test_list_options_become_the_query() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    filters, page = filters_from(
        _args(user="alice", event_action="login", since="2h", limit="7", outcome="failure"), now
    )
    assert filters == AuditFilters(actor="alice", action="login", outcome="failure", since=T0)
    assert page == AuditPage(limit=7)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"event_action": "logon"}, "--action 'logon' is not an audit action: use one of"),
        ({"limit": "0"}, "--limit must be between 1 and"),
        ({"limit": "ten"}, "--limit must be a whole number"),
        ({"since": "1h", "until": "2h"}, "--until must be later than --since"),
    ],
)
def test_other_bad_options_say_what_fits(given: dict[str, str], message: str) -> None:
    with pytest.raises(AuditArgumentError, match=message):
        filters_from(_args(**given), datetime.now(UTC))
