"""OpenID Connect and SMART on FHIR sign-in against respx-mocked providers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from joserfc import jwt
from joserfc.jwk import RSAKey

from fhir_portal import keys
from fhir_portal.app import create_app
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from fhir_portal.web.session import COOKIE
from tests.support import TEST_PASSWORD, csrf_of

ISSUER = "https://login.example.com/tenant"
CLIENT_ID = "portal-client"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


def _id_token(nonce: str, *, key: RSAKey = KEY, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "ext-123", "iat": now, "exp": now + 300,
            "nonce": nonce, "email": "anna@example.org", "email_verified": True, **claims}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, key)


def _mock_provider(router: respx.Router, make_token) -> None:  # type: ignore[no-untyped-def]
    router.get(f"{ISSUER}/.well-known/openid-configuration").respond(json={
        "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/keys"})
    router.get(f"{ISSUER}/keys").respond(json={"keys": [KEY.as_dict(private=False)]})

    def token(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        assert form["code_verifier"][0] and form["code"] == ["the-code"]
        return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer",
                                         "expires_in": 300, "id_token": make_token()})

    router.post(f"{ISSUER}/token").mock(side_effect=token)


@pytest.fixture
async def oidc_client(aiohttp_client, settings):  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(replace(
        settings, oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID, oidc_client_secret="s3cret")))
    await client.app[keys.ACCOUNTS].create_account(
        "anna@example.org", password_hash=await hash_password(TEST_PASSWORD),
        roles={Role.PATIENT}, patient_id="pat-anna", email_verified=True, profile_complete=True)
    return client


async def _start(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    page = await client.get("/login")
    assert "Sign in with Microsoft" in await page.text()
    response = await client.post("/oidc/start", data={"csrf_token": csrf_of(await page.text())},
                                 allow_redirects=False)
    assert response.status == 303
    url = urlsplit(response.headers["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{ISSUER}/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 22
    assert query["nonce"] and query["client_id"] == CLIENT_ID and "openid" in query["scope"]
    return query


async def _finish(client, state: str):  # type: ignore[no-untyped-def]
    return await client.get(f"/oidc/callback?state={state}&code=the-code", allow_redirects=False)


async def test_oidc_sign_in_with_a_verified_email_links_and_signs_in(oidc_client):
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        query: dict[str, str] = {}
        _mock_provider(router, lambda: _id_token(query["nonce"]))
        query.update(await _start(oidc_client))
        response = await _finish(oidc_client, query["state"])
    assert response.status == 303 and response.headers["Location"] == "/"
    assert COOKIE in response.cookies
    store = oidc_client.app[keys.ACCOUNTS]
    identity = await store.identity(ISSUER, "ext-123")
    assert identity is not None
    # the state is single use
    again = await _finish(oidc_client, query["state"])
    assert again.status == 400


@pytest.mark.parametrize("case", ["forged", "nonce", "expired", "audience", "unverified"])
async def test_oidc_refusals(oidc_client, case):
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        query: dict[str, str] = {}
        now = int(time.time())
        tokens = {
            "forged": lambda: _id_token(query["nonce"], key=OTHER_KEY),
            "nonce": lambda: _id_token("another-nonce"),
            "expired": lambda: _id_token(query["nonce"], exp=now - 3600, iat=now - 7200),
            "audience": lambda: _id_token(query["nonce"], aud="someone-else"),
            "unverified": lambda: _id_token(query["nonce"], email_verified=False),
        }
        _mock_provider(router, tokens[case])
        query.update(await _start(oidc_client))
        response = await _finish(oidc_client, query["state"])
    body = await response.text()
    assert response.status in (400, 403) and COOKIE not in response.cookies
    if case == "unverified":
        assert "not connected to a patient account" in body
    else:
        assert "could not be verified, so it was refused" in body
    assert await oidc_client.app[keys.ACCOUNTS].identity(ISSUER, "ext-123") is None


async def test_oidc_callback_needs_the_browser_that_started_it(oidc_client, aiohttp_client):
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        _mock_provider(router, lambda: "unused")
        query = await _start(oidc_client)
        oidc_client.session.cookie_jar.clear()
        response = await _finish(oidc_client, query["state"])
    assert response.status == 400 and "started elsewhere" in await response.text()


# -- SMART on FHIR -----------------------------------------------------------------------
FHIR = "https://ehr.example.org/fhir"
AUTH = "https://ehr.example.org/auth"


@pytest.fixture
async def smart_client(aiohttp_client, settings):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(replace(
        settings, smart_client_id="portal-smart", smart_allowed_iss=(FHIR,))))


def _mock_ehr(router: respx.Router, *, patient: str | None = "ehr-pat-1",
              scopes: list[str] | None = None, well_known: bool = True) -> None:
    if well_known:
        router.get(f"{FHIR}/.well-known/smart-configuration").respond(json={
            "authorization_endpoint": f"{AUTH}/authorize", "token_endpoint": f"{AUTH}/token",
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": scopes or ["launch", "patient/*.rs", "openid", "fhirUser"]})
    else:
        router.get(f"{FHIR}/.well-known/smart-configuration").respond(404)
        router.get(f"{FHIR}/metadata").respond(json={
            "resourceType": "CapabilityStatement", "rest": [{"mode": "server", "security": {
                "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                               "extension": [{"url": "authorize", "valueUri": f"{AUTH}/authorize"},
                                             {"url": "token", "valueUri": f"{AUTH}/token"}]}]}}]})
    body = {"access_token": "smart-at", "token_type": "Bearer", "expires_in": 3600,
            "scope": "launch patient/*.rs"}
    if patient:
        body["patient"] = patient
    router.post(f"{AUTH}/token").respond(json=body)
    router.get(f"{FHIR}/Patient/ehr-pat-1").respond(json={
        "resourceType": "Patient", "id": "ehr-pat-1",
        "name": [{"given": ["Eva"], "family": "Ehr"}]})


async def _launch(client, query: str):  # type: ignore[no-untyped-def]
    response = await client.get(f"/smart/launch?{query}", allow_redirects=False)
    assert response.status == 303, await response.text()
    url = urlsplit(response.headers["Location"])
    return {k: v[0] for k, v in parse_qs(url.query).items()}


@pytest.mark.parametrize("launch", ["xyz123", None])
async def test_smart_launches_succeed(smart_client, launch):
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        _mock_ehr(router)
        query = await _launch(smart_client, f"iss={FHIR}" + (f"&launch={launch}" if launch else ""))
        assert query["aud"] == FHIR and query["code_challenge_method"] == "S256"
        assert len(query["state"]) >= 22  # >= 128 bits
        scopes = query["scope"].split()
        if launch:
            assert query["launch"] == launch and "launch" in scopes
        else:
            assert "launch" not in query and "launch/patient" in scopes
        assert "patient/*.rs" in scopes
        response = await smart_client.get(
            f"/smart/callback?state={query['state']}&code=c1", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/"
        # the token stays on the server: only the opaque session id is in the cookie
        cookies = "".join(v.OutputString() for v in response.cookies.values())
        assert "smart-at" not in cookies
        store = smart_client.app[keys.ACCOUNTS]
        session = await store.session(response.cookies[COOKIE].value)
        assert session.data["smart"]["patient"] == "ehr-pat-1"
        assert session.data["smart"]["access_token"] == "smart-at"
        # FHIR calls of this session go to the iss with the bearer token
        from aiohttp.test_utils import make_mocked_request

        from fhir_portal.web.context import smart_gateway

        request = make_mocked_request("GET", "/", app=smart_client.app)
        gateway = smart_gateway(request, session.data["smart"])
        assert gateway.base_url == FHIR
        assert gateway.client.authorization == "Bearer smart-at"


async def test_smart_v1_fallback_and_capability_statement_discovery(smart_client):
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        _mock_ehr(router, well_known=False)
        query = await _launch(smart_client, f"iss={FHIR}")
        assert "patient/*.rs" in query["scope"]  # no scopes_supported: v2 as configured
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        _mock_ehr(router, scopes=["launch", "patient/*.read", "openid"])
        query = await _launch(smart_client, f"iss={FHIR}&launch=abc")
        assert "patient/*.read" in query["scope"].split()
        assert "patient/*.rs" not in query["scope"]


async def test_smart_refusals(smart_client):
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        _mock_ehr(router)
        unknown = await smart_client.get("/smart/launch?iss=https://evil.example/fhir")
        assert unknown.status == 403 and "not one the portal works with" in await unknown.text()
        query = await _launch(smart_client, f"iss={FHIR}&launch=l1")
        bad_state = await smart_client.get("/smart/callback?state=forged&code=c1")
        assert bad_state.status == 400
        denied = await smart_client.get(
            f"/smart/callback?state={query['state']}&error=access_denied")
        assert denied.status == 403 and "Access was not granted" in await denied.text()
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        _mock_ehr(router, patient=None)
        query = await _launch(smart_client, f"iss={FHIR}&launch=l2")
        response = await smart_client.get(f"/smart/callback?state={query['state']}&code=c1",
                                          allow_redirects=False)
        assert response.status == 400 and "did not say which patient" in await response.text()
        assert COOKIE not in response.cookies


async def _smart_session_with(smart_client, router, first: dict, then: list[httpx.Response]):  # type: ignore[no-untyped-def]
    """Launch with token response ``first``; later token requests get ``then`` in turn."""
    _mock_ehr(router)
    token_route = router.post(f"{AUTH}/token")
    token_route.side_effect = [httpx.Response(200, json=first), *then]
    query = await _launch(smart_client, f"iss={FHIR}&launch=r1")
    response = await smart_client.get(f"/smart/callback?state={query['state']}&code=c1",
                                      allow_redirects=False)
    assert response.status == 303
    return response.cookies[COOKIE].value, token_route


def _token(access: str, *, expires_in: int = 3600, **extra: object) -> dict:
    return {"access_token": access, "token_type": "Bearer", "expires_in": expires_in,
            "scope": "launch online_access patient/*.rs", "patient": "ehr-pat-1", **extra}


async def test_a_smart_token_about_to_run_out_is_refreshed_once(smart_client):
    store = smart_client.app[keys.ACCOUNTS]
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        cookie, token_route = await _smart_session_with(
            smart_client, router, _token("at-1", expires_in=30, refresh_token="rt-1"),
            [httpx.Response(200, json=_token("at-2", refresh_token="rt-2"))])
        assert "online_access" in (await store.session(cookie)).data["smart"]["scope"]
        # two requests at once: one refresh (a rotating server would refuse a second)
        pages = await asyncio.gather(*(smart_client.get("/no-such-page") for _ in range(2)))
        assert [page.status for page in pages] == [404, 404]
        assert token_route.call_count == 2  # the code exchange, then one refresh
        refresh_body = parse_qs(token_route.calls[1].request.content.decode())
        assert refresh_body["grant_type"] == ["refresh_token"]
        assert refresh_body["refresh_token"] == ["rt-1"]
        smart = (await store.session(cookie)).data["smart"]
        assert smart["access_token"] == "at-2" and smart["refresh_token"] == "rt-2"
        assert smart["expires_at"] > time.time() + 3000 and smart["patient"] == "ehr-pat-1"


@pytest.mark.parametrize("answer", [
    httpx.Response(400, json={"error": "invalid_grant"}),
    httpx.Response(200, json=_token("at-x", patient="someone-else")),
])
async def test_an_expired_smart_session_ends_when_the_refresh_fails(smart_client, answer):
    store = smart_client.app[keys.ACCOUNTS]
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        cookie, _ = await _smart_session_with(
            smart_client, router, _token("at-1", expires_in=1, refresh_token="rt-1"), [answer])
        await asyncio.sleep(1.1)
        response = await smart_client.get("/", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login")
        assert await store.session(cookie) is None


async def test_a_refused_refresh_is_not_asked_again_while_the_token_lasts(smart_client):
    store = smart_client.app[keys.ACCOUNTS]
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        cookie, token_route = await _smart_session_with(
            smart_client, router, _token("at-1", expires_in=30, refresh_token="rt-1"),
            [httpx.Response(400, json={"error": "invalid_grant"})])
        for _ in range(3):
            assert (await smart_client.get("/no-such-page")).status == 404
        assert token_route.call_count == 2  # the code exchange and one refused refresh
        smart = (await store.session(cookie)).data["smart"]
        assert smart["access_token"] == "at-1" and smart["refresh_refused"] is True


async def test_a_smart_session_without_a_refresh_token_ends_when_the_token_does(smart_client):
    store = smart_client.app[keys.ACCOUNTS]
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        cookie, token_route = await _smart_session_with(
            smart_client, router, _token("at-1", expires_in=30), [])
        # about to expire but still valid: it is used, not refreshed
        assert (await smart_client.get("/no-such-page")).status == 404
        assert await store.session(cookie) is not None and token_route.call_count == 1


async def test_a_signed_in_patient_links_an_external_account_then_signs_in_with_it(oidc_client):
    from tests.support import sign_in

    assert (await sign_in(oidc_client, "anna@example.org")).status == 303
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        holder: dict[str, str] = {}
        # an unverified, different email: linking rests on the signed-in session, not the claim
        _mock_provider(router, lambda: _id_token(holder["nonce"], email="anna@elsewhere.example",
                                                 email_verified=False))
        page = await oidc_client.get("/account")
        assert "Connect your Microsoft account" in await page.text()
        response = await oidc_client.post("/oidc/start", data={
            "csrf_token": csrf_of(await page.text()), "link": "1"}, allow_redirects=False)
        holder.update({k: v[0] for k, v in parse_qs(urlsplit(
            response.headers["Location"]).query).items()})
        linked = await _finish(oidc_client, holder["state"])
        assert linked.status == 303 and linked.headers["Location"] == "/account?linked=1"
        account_page = await oidc_client.get("/account?linked=1")
        assert "anna@elsewhere.example" in await account_page.text()
        # signed out, the external account now signs Anna in
        oidc_client.session.cookie_jar.clear()
        holder.clear()
        holder.update(await _start(oidc_client))
        response = await _finish(oidc_client, holder["state"])
    assert response.status == 303 and response.headers["Location"] == "/"
    store = oidc_client.app[keys.ACCOUNTS]
    session = await store.session(response.cookies[COOKIE].value)
    account = await store.account_by_email("anna@example.org")
    assert session.account_id == account.id
