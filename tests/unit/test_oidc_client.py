"""The OIDC client's token checks against a provider served by httpx.MockTransport."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from hpcwaas.auth.oidc import OidcClient, TokenRejected
from hpcwaas.settings import AuthConfig

ISSUER = "https://idp.test"


class FakeProvider:
    """Discovery and a JWKS whose keys the test rotates; counts JWKS fetches."""

    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.jwks_fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "userinfo_endpoint": f"{ISSUER}/me",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})
        return httpx.Response(404)

    def sign(self, key: RSAKey, **claims: Any) -> str:
        base = {"iss": ISSUER, "aud": "hpcwaas", "sub": "alice", "exp": int(time.time()) + 300}
        base.update(claims)
        return jwt.encode({"alg": "RS256", "kid": key.kid}, base, key)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
async def client(provider: FakeProvider) -> OidcClient:
    config = AuthConfig(
        auth_type="sso",
        issuer=ISSUER,
        client_id="hpcwaas",
        client_secret="s",
        redirect_url="http://127.0.0.1/auth/authorize",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(provider.handler))
    return OidcClient(config, http)


async def test_a_token_signed_by_a_rotated_key_is_accepted_after_one_refetch(
    provider: FakeProvider, client: OidcClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = provider.keys[0]
    assert (await client.validate_jwt(provider.sign(first), audience="hpcwaas"))["sub"] == "alice"
    assert provider.jwks_fetches == 1
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    provider.keys = [rotated]
    monkeypatch.setattr("hpcwaas.auth.oidc._JWKS_REFETCH_SECONDS", 0.0)
    claims = await client.validate_jwt(provider.sign(rotated, sub="bob"), audience="hpcwaas")
    assert claims["sub"] == "bob"
    assert provider.jwks_fetches == 2


async def test_known_keys_are_not_fetched_again(provider: FakeProvider, client: OidcClient) -> None:
    for _ in range(3):
        await client.validate_jwt(provider.sign(provider.keys[0]), audience="hpcwaas")
    assert provider.jwks_fetches == 1


async def test_a_token_signed_by_an_unknown_key_is_rejected(
    provider: FakeProvider, client: OidcClient
) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(TokenRejected, match="signature"):
        await client.validate_jwt(provider.sign(stranger), audience="hpcwaas")


@pytest.mark.parametrize("garbage", ["a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x.y"])
async def test_malformed_tokens_are_rejected(client: OidcClient, garbage: str) -> None:
    with pytest.raises(TokenRejected):
        await client.validate_jwt(garbage, audience="hpcwaas")


@pytest.mark.filterwarnings("ignore:JWS algorithm")
async def test_an_unsigned_token_is_rejected(provider: FakeProvider, client: OidcClient) -> None:
    unsigned = jwt.encode(
        {"alg": "none"},
        {"iss": ISSUER, "aud": "hpcwaas", "sub": "x", "exp": int(time.time()) + 60},
        None,
        algorithms=["none"],
    )
    with pytest.raises(TokenRejected):
        await client.validate_jwt(unsigned, audience="hpcwaas")
