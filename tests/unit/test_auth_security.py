"""Sessions, cookies, CSRF, lockout, rate limit, origin check, password policy: no servers."""

from __future__ import annotations

import re
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from fhir_portal import keys
from fhir_portal.app import create_app
from fhir_portal.auth.activation import (
    ActivationError,
    activate,
    create_invitation,
    find_invitation,
)
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.policy import check_password
from fhir_portal.auth.roles import Role
from fhir_portal.auth.staff import create_staff
from fhir_portal.web.origin import check_websocket_origin
from fhir_portal.web.ratelimit import TokenBuckets
from fhir_portal.web.session import COOKIE
from tests.support import TEST_PASSWORD, csrf_of, sign_in


async def _staff(client, role: Role = Role.AGENT, email: str = "agent@contoso.example"):
    store = client.app[keys.ACCOUNTS]
    return await store.create_account(
        email, password_hash=await hash_password(TEST_PASSWORD), roles={role},
        display_name="Agent Smith", email_verified=True, profile_complete=True)


async def test_sign_in_sets_a_hardened_cookie_with_a_new_session_id(client):
    await _staff(client)
    first = await sign_in(client, "agent@contoso.example")
    assert first.status == 303 and first.headers["Location"] == "/staff"
    cookie = first.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]
    token1 = cookie.value
    second = await sign_in(client, "agent@contoso.example")
    assert second.cookies[COOKIE].value != token1  # a fresh id at every sign-in
    store = client.app[keys.ACCOUNTS]
    assert await store.session(token1) is None  # and the old one is gone


async def test_secure_cookie_when_configured(aiohttp_client, settings):
    from dataclasses import replace

    from fhir_portal.web.session import start_session

    client = await aiohttp_client(create_app(replace(settings, cookie_secure=True)))
    account = await _staff(client)
    page = await client.get("/login")
    assert "Secure" in page.headers["Set-Cookie"]  # the pre-sign-in CSRF cookie too
    request = make_mocked_request("POST", "/login", app=client.app)
    response = web.Response()
    await start_session(request, response, account)
    cookie = response.cookies[COOKIE]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_idle_and_absolute_timeouts_end_the_session(client):
    await _staff(client)
    await sign_in(client, "agent@contoso.example")
    assert (await client.get("/staff", allow_redirects=False)).status == 200
    store = client.app[keys.ACCOUNTS]
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    session = await store.session(token)
    # idle: last seen 31 minutes ago
    await store.db.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?",
                           (time.time() - 31 * 60, session.id_hash))
    await store.db.commit()
    response = await client.get("/staff", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login")
    assert await store.session(token) is None
    # absolute: active a minute ago, but created 13 hours ago
    await sign_in(client, "agent@contoso.example")
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    session = await store.session(token)
    await store.db.execute("UPDATE sessions SET created_at = ? WHERE id_hash = ?",
                           (time.time() - 13 * 3600, session.id_hash))
    await store.db.commit()
    assert (await client.get("/staff", allow_redirects=False)).status == 303


async def test_sign_out_revokes_the_session_server_side(client):
    await _staff(client)
    await sign_in(client, "agent@contoso.example")
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    page = await client.get("/staff")
    response = await client.post("/logout", data={"csrf_token": csrf_of(await page.text())},
                                 allow_redirects=False)
    assert response.status == 303
    assert await client.app[keys.ACCOUNTS].session(token) is None
    # replaying the old cookie does not bring the session back
    client.session.cookie_jar.update_cookies({COOKIE: token})
    assert (await client.get("/staff", allow_redirects=False)).status == 303


async def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(client):
    await _staff(client)
    await sign_in(client, "agent@contoso.example")
    posts = {r.resource.canonical for r in client.app.router.routes()
             if r.method == "POST" and r.resource is not None}
    assert {"/login", "/logout", "/profile", "/account/password", "/register"} <= posts
    for path in posts:
        path = re.sub(r"\{[^}]*\}", "x" * 30, path)
        for data in ({}, {"csrf_token": "forged"}):
            response = await client.post(path, data=data, allow_redirects=False)
            assert response.status in (403, 404), (path, response.status)
            if response.status == 403:
                body = await response.text()
                assert "expired" in body, path


async def test_five_failures_lock_the_account_with_the_same_answer(client):
    await _staff(client)
    answers = []
    for _ in range(5):
        response = await sign_in(client, "agent@contoso.example", "wrong password!")
        answers.append(await response.text())
    locked = await sign_in(client, "agent@contoso.example")  # the right password, but locked
    assert locked.status == 400
    unknown = await sign_in(client, "nobody@contoso.example", "wrong password!")
    message = "The email or password is not right"
    assert message in await locked.text() and message in await unknown.text()
    account = await client.app[keys.ACCOUNTS].account_by_email("agent@contoso.example")
    assert account.failed_logins == 5 and account.locked_until > time.time() + 20


async def test_rate_limit_answers_429_per_address(aiohttp_client, settings):
    from dataclasses import replace

    client = await aiohttp_client(create_app(replace(settings, ratelimit_burst=3,
                                                     ratelimit_per_minute=1)))
    statuses = []
    for _ in range(5):
        statuses.append((await sign_in(client, "nobody@example.org", "whatever123")).status)
    assert statuses[:3] == [400, 400, 400] and statuses[3:] == [429, 429]
    response = await sign_in(client, "nobody@example.org", "whatever123")
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many attempts" in await response.text()
    # other pages are not limited
    assert (await client.get("/healthz")).status in (200, 503)


async def test_successful_sign_ins_do_not_use_up_the_allowance(aiohttp_client, settings):
    from dataclasses import replace

    client = await aiohttp_client(create_app(replace(settings, ratelimit_burst=2,
                                                     ratelimit_per_minute=1)))
    await _staff(client)
    for _ in range(4):
        assert (await sign_in(client, "agent@contoso.example")).status == 303
    assert (await sign_in(client, "agent@contoso.example", "wrong pass!")).status == 400
    assert (await sign_in(client, "agent@contoso.example", "wrong pass!")).status == 400
    assert (await sign_in(client, "agent@contoso.example")).status == 429


def test_token_bucket_refills():
    buckets = TokenBuckets(2, per_minute=60)
    assert buckets.take("a", now=0) == 0 and buckets.take("a", now=0) == 0
    assert buckets.take("a", now=0) == pytest.approx(1.0)
    assert buckets.take("b", now=0) == 0  # per address
    assert buckets.take("a", now=1.0) == 0


def test_websocket_origin_check(settings):
    app = web.Application()
    app[keys.SETTINGS] = settings

    def request(origin: str | None):  # type: ignore[no-untyped-def]
        headers = {"Host": "127.0.0.1:8080"}
        if origin:
            headers["Origin"] = origin
        return make_mocked_request("GET", "/chat/ws", headers=headers, app=app)

    check_websocket_origin(request("http://127.0.0.1:8080"))
    for bad in ("https://evil.example", None, "null"):
        with pytest.raises(web.HTTPForbidden):
            check_websocket_origin(request(bad))


def test_password_policy():
    assert check_password("short") == "Use at least 8 characters."
    assert check_password("x" * 129) == "Use at most 128 characters."
    for common in ("password1", "Kodeord123", "sommer2024", "qwerty123", "PASSWORD"):
        assert check_password(common + ("" if len(common) >= 8 else "xx")) is not None or \
            len(common) < 8
    assert "common" in check_password("Sommer2024")
    assert check_password("kodeord1").startswith("This password is too common")
    assert check_password("ørkenræv på tur") is None  # any script, spaces allowed
    assert check_password("пароль-для-портала") is None


async def test_staff_add_creates_a_staff_account(client):
    store = client.app[keys.ACCOUNTS]
    account = await create_staff(store, email="doc@contoso.example", role="clinician",
                                 password=TEST_PASSWORD, practitioner_id="prac-1", name="Dr Who")
    assert account.roles == {Role.CLINICIAN} and account.practitioner_id == "prac-1"
    with pytest.raises(ValueError, match="practitioner"):
        await create_staff(store, email="x@contoso.example", role="clinician",
                           password=TEST_PASSWORD)
    with pytest.raises(ValueError):
        await create_staff(store, email="y@contoso.example", role="patient",
                           password=TEST_PASSWORD)
    with pytest.raises(ValueError, match="common"):
        await create_staff(store, email="z@contoso.example", role="agent", password="password1")
    with pytest.raises(ValueError, match="exists"):
        await create_staff(store, email="doc@contoso.example", role="agent",
                           password=TEST_PASSWORD)
    response = await sign_in(client, "doc@contoso.example")
    assert response.headers["Location"] == "/staff"
    page = await client.get("/staff")
    assert page.status == 200 and "Dr Who" in await page.text() and "Clinician" in await page.text()


def test_staff_add_command_line(settings, monkeypatch, capsys):
    from fhir_portal import cli

    monkeypatch.setattr(cli.Settings, "from_env", classmethod(lambda cls: settings))
    code = cli.main(["staff", "add", "--role", "agent", "--email", "cli@contoso.example",
                     "--password", TEST_PASSWORD, "--name", "Cli Agent"])
    assert code == 0 and "cli@contoso.example (agent) created" in capsys.readouterr().out
    assert cli.main(["staff", "add", "--role", "agent", "--email", "cli@contoso.example",
                     "--password", TEST_PASSWORD]) == 2


async def test_activation_is_single_use_and_bound_to_the_email(client, settings):
    store = client.app[keys.ACCOUNTS]
    link, code = await create_invitation(store, settings, "pat-anna", "anna@example.org")
    assert link.startswith(f"{settings.public_url}/activate?token=")
    with pytest.raises(ActivationError):
        await find_invitation(store, code=code, email="mallory@example.org")
    token = await find_invitation(store, code=code.lower().replace("-", " "),
                                  email="Anna@Example.org")
    account = await activate(store, token, TEST_PASSWORD, "da")
    assert account.patient_id == "pat-anna" and account.email_verified
    assert not account.profile_complete
    with pytest.raises(ActivationError):
        await find_invitation(store, secret=link.split("token=")[1])
    # a newer invitation voids the older one
    link1, _ = await create_invitation(store, settings, "pat-bjorn", "b@example.org")
    link2, _ = await create_invitation(store, settings, "pat-bjorn", "b@example.org")
    with pytest.raises(ActivationError):
        await find_invitation(store, secret=link1.split("token=")[1])
    assert (await find_invitation(store, secret=link2.split("token=")[1])).patient_id == "pat-bjorn"


async def test_activation_page_signs_in_to_the_first_sign_in_profile(client, settings):
    store = client.app[keys.ACCOUNTS]
    _, code = await create_invitation(store, settings, "pat-chloe", "chloe@example.org")
    page = await client.get("/activate")
    data = {"csrf_token": csrf_of(await page.text()), "code": code, "email": "chloe@example.org",
            "password": "kodeord1", "confirm": "kodeord1"}
    response = await client.post("/activate", data=data, allow_redirects=False)
    assert response.status == 400 and "too common" in await response.text()
    data.update(password=TEST_PASSWORD, confirm=TEST_PASSWORD)
    response = await client.post("/activate", data=data, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/profile?first=1"
    # every other patient page waits for the profile
    for path in ("/", "/records", "/messages"):
        response = await client.get(path, allow_redirects=False)
        assert response.headers.get("Location") == "/profile?first=1", path


async def test_sign_out_other_sessions_and_everywhere(client):
    import aiohttp

    app, laptop = client.app, client
    await _staff(laptop)
    base = str(laptop.make_url("/"))
    # two more browsers on the same portal, each with its own cookies
    async with aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)) \
            as phone, aiohttp.ClientSession(base_url=base,
                                            cookie_jar=aiohttp.CookieJar(unsafe=True)) as tablet:
        await _sessions_scenario(app, laptop, phone, tablet)


async def _sessions_scenario(app, laptop, phone, tablet):  # type: ignore[no-untyped-def]
    for browser in (laptop, phone, tablet):
        assert (await sign_in(browser, "agent@contoso.example")).status == 303
    page = await laptop.get("/account")
    assert "signed in on 3 devices" in await page.text()
    response = await laptop.post("/account/sign-out-others",
                                 data={"csrf_token": csrf_of(await page.text())},
                                 allow_redirects=False)
    assert response.headers["Location"] == "/account?others=1"
    assert (await laptop.get("/staff", allow_redirects=False)).status == 200
    for other in (phone, tablet):
        assert (await other.get("/staff", allow_redirects=False)).status == 303
    # change the password: other sessions end, this one stays
    assert (await sign_in(phone, "agent@contoso.example")).status == 303
    page = await laptop.get("/account")
    wrong = await laptop.post("/account/password", data={
        "csrf_token": csrf_of(await page.text()), "current": "not it at all",
        "password": "a new long passphrase", "confirm": "a new long passphrase"})
    assert wrong.status == 400 and "current password is not right" in await wrong.text()
    changed = await laptop.post("/account/password", data={
        "csrf_token": csrf_of(await page.text()), "current": TEST_PASSWORD,
        "password": "a new long passphrase", "confirm": "a new long passphrase"},
        allow_redirects=False)
    assert changed.headers["Location"] == "/account?password=1"
    assert (await phone.get("/staff", allow_redirects=False)).status == 303
    assert (await laptop.get("/staff", allow_redirects=False)).status == 200
    # everywhere: this session too
    page = await laptop.get("/account")
    response = await laptop.post("/account/sign-out-everywhere",
                                 data={"csrf_token": csrf_of(await page.text())},
                                 allow_redirects=False)
    assert response.headers["Location"] == "/login?signed_out=1"
    assert (await laptop.get("/staff", allow_redirects=False)).status == 303
    account = await app[keys.ACCOUNTS].account_by_email("agent@contoso.example")
    assert await app[keys.ACCOUNTS].count_sessions_of(account.id) == 0


async def test_reset_links_expire_and_work_once(client, settings):
    from fhir_portal.auth.reset import ResetError, request_reset, reset_password, reset_token

    await _staff(client)
    store = client.app[keys.ACCOUNTS]
    translations = client.app[keys.TRANSLATIONS]
    assert await request_reset(store, settings, translations, "nobody@example.org", "en") is None
    message = await request_reset(store, settings, translations, "agent@contoso.example", "da")
    assert message.subject.startswith("Nulstil din adgangskode")  # the page language
    secret = message.text.split("/password-reset/")[1].split()[0]
    token = await reset_token(store, secret)
    # an hour later the link no longer works
    await store.db.execute("UPDATE tokens SET expires_at = ? WHERE token_hash = ?",
                           (time.time() - 1, token.token_hash))
    await store.db.commit()
    with pytest.raises(ResetError):
        await reset_token(store, secret)
    with pytest.raises(ResetError):
        await reset_password(store, token, "a fresh passphrase")
    # a new link works once
    message = await request_reset(store, settings, translations, "agent@contoso.example", "en")
    secret = message.text.split("/password-reset/")[1].split()[0]
    await reset_password(store, await reset_token(store, secret), "a fresh passphrase")
    with pytest.raises(ResetError):
        await reset_token(store, secret)
    assert (await sign_in(client, "agent@contoso.example", "a fresh passphrase")).status == 303


async def test_session_data_is_written_key_by_key(client):
    """A request holding an old copy of the session never overwrites what another saved."""
    store = client.app[keys.ACCOUNTS]
    created = await store.create_session(None, {"smart": {"access_token": "old", "name": ""}})
    first = await store.session(created.token)
    second = await store.session(created.token)
    await store.set_session_value(first, "smart", {"access_token": "new", "name": ""})
    await store.set_session_value(second, ("smart", "name"), "Eva Ehr")  # second's copy is old
    await store.touch_session(second)
    saved = (await store.session(created.token)).data
    assert saved == {"smart": {"access_token": "new", "name": "Eva Ehr"}}
    await store.set_session_value(first, "chat", None)  # removing a missing key is fine
    with pytest.raises(ValueError):
        await store.set_session_value(first, ("smart", "x') || ('"), 1)
