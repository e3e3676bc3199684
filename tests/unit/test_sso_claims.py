"""Pure parts of single sign-on: PKCE, who the claims say the user is, JWT claim checks."""

from __future__ import annotations

import time

import pytest

from hpcwaas.auth.oidc import TokenRejected, _check_claims, looks_like_jwt, pkce_challenge
from hpcwaas.auth.sso import LoginFailed, profile_from_claims


def test_pkce_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_unity_claims_give_first_and_last_name() -> None:
    profile = profile_from_claims(
        {"sub": "u-1", "firstname": "Ada", "surname": "Lovelace", "email": "ada@example.org"},
        "groups",
    )
    assert (profile.user_id, profile.display_name, profile.email) == (
        "u-1",
        "Ada Lovelace",
        "ada@example.org",
    )


def test_standard_claims_give_the_name_too() -> None:
    assert profile_from_claims(
        {"sub": "u", "given_name": "Grace", "family_name": "Hopper"}, None
    ).display_name == ("Grace Hopper")
    assert profile_from_claims({"sub": "u", "name": "G. Hopper"}, None).display_name == (
        "G. Hopper"
    )


@pytest.mark.parametrize(
    ("raw", "groups"),
    [(["a", "b"], ["a", "b"]), ("a, b c", ["a", "b", "c"]), (None, []), ({"x": 1}, [])],
)
def test_groups_come_from_the_configured_claim(raw: object, groups: list[str]) -> None:
    claims = {"sub": "u", "eduperson_entitlement": raw}
    assert profile_from_claims(claims, "eduperson_entitlement").groups == groups
    assert profile_from_claims(claims, "groups").groups == []


def test_claims_without_a_subject_are_refused() -> None:
    with pytest.raises(LoginFailed, match="sub"):
        profile_from_claims({"name": "nobody"}, None)


def _claims(**override: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": "https://idp",
        "aud": "hpcwaas",
        "sub": "u",
        "exp": time.time() + 300,
        "nonce": "n1",
    }
    claims.update(override)
    return claims


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"iss": "https://other"}, "another provider"),
        ({"aud": "someone-else"}, "another audience"),
        ({"aud": ["a", "b"]}, "another audience"),
        ({"exp": time.time() - 3600}, "expired"),
        ({"nbf": time.time() + 3600}, "not valid yet"),
        ({"nonce": "replayed"}, "nonce"),
        ({"sub": ""}, "subject"),
    ],
)
def test_bad_claims_are_rejected_saying_why(override: dict[str, object], message: str) -> None:
    with pytest.raises(TokenRejected, match=message):
        _check_claims(_claims(**override), issuer="https://idp", audience="hpcwaas", nonce="n1")


def test_good_claims_pass_with_the_audience_in_a_list() -> None:
    _check_claims(
        _claims(aud=["x", "hpcwaas"]), issuer="https://idp", audience="hpcwaas", nonce="n1"
    )


def test_our_tokens_are_not_mistaken_for_jwts() -> None:
    assert looks_like_jwt("a.b.c")
    assert not looks_like_jwt("hw_abcdef")
