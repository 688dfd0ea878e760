"""The skeleton: headers, errors, health, sign-in form and language switch, with no servers."""

from __future__ import annotations

import re

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def test_login_page_has_strict_security_headers(client):
    response = await client.get("/login")
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    body = await response.text()
    assert "<script>" not in body  # no inline script anywhere in the layout
    assert '<a class="brand" href="/">Contoso Healthcare</a>' in body


async def test_healthz_reports_fhir_down(client):
    response = await client.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert body["fhir"]["status"] == "down"
    assert body["portal"]["status"] == "up"
    assert body["status"] == "degraded"


async def test_home_requires_sign_in(client):
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=")


async def test_post_without_csrf_token_is_refused(client):
    response = await client.post("/login", data={"email": "a@example.org", "password": "x" * 10})
    assert response.status == 403
    assert "The form has expired" in await response.text()


async def test_cross_site_origin_is_refused(client):
    page = await client.get("/login")
    token = CSRF.search(await page.text()).group(1)
    response = await client.post(
        "/login",
        data={"csrf_token": token, "email": "a@example.org", "password": "x" * 10},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403


async def test_unknown_account_gets_generic_refusal(client):
    page = await client.get("/login")
    token = CSRF.search(await page.text()).group(1)
    response = await client.post(
        "/login", data={"csrf_token": token, "email": "nobody@example.org", "password": "y" * 10}
    )
    assert response.status == 400
    assert "The email or password is not right" in await response.text()


async def test_language_switch_sets_danish(client):
    page = await client.get("/login")
    token = CSRF.search(await page.text()).group(1)
    response = await client.post(
        "/language", data={"csrf_token": token, "lang": "da", "next": "/login"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/login"
    page = await client.get("/login")
    body = await page.text()
    assert '<html lang="da">' in body
    assert "Log ind" in body


async def test_unknown_page_is_friendly_404(client):
    response = await client.get("/no/such/page")
    assert response.status == 404
    body = await response.text()
    assert "Page not found" in body and "Traceback" not in body


async def test_json_clients_get_json_errors(client):
    response = await client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status == 404
    assert (await response.json())["status"] == 404


async def test_open_redirect_after_language_switch_is_refused(client):
    page = await client.get("/login")
    token = CSRF.search(await page.text()).group(1)
    response = await client.post(
        "/language",
        data={"csrf_token": token, "lang": "en", "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/"


async def test_fhir_server_down_gives_the_friendly_503_page(client):
    from fhir_portal import keys
    from fhir_portal.auth.passwords import hash_password
    from fhir_portal.auth.roles import Role

    store = client.app[keys.ACCOUNTS]
    await store.create_account(
        "down@example.org", password_hash=await hash_password("a fine password"),
        roles={Role.PATIENT}, patient_id="pat-anna", email_verified=True, profile_complete=True,
    )
    page = await client.get("/login")
    token = CSRF.search(await page.text()).group(1)
    signed = await client.post(
        "/login", data={"csrf_token": token, "email": "down@example.org",
                        "password": "a fine password"}, allow_redirects=False,
    )
    assert signed.status == 303
    response = await client.get("/")
    assert response.status == 503
    assert response.headers["Retry-After"] == "30"
    body = await response.text()
    assert "temporarily unavailable" in body and "Nothing you entered has been saved or lost" in body
    assert "Traceback" not in body


async def test_static_files_are_linked_with_their_content_version(client):
    page = await (await client.get("/login")).text()
    links = re.findall(r'(?:href|src)="(/static/portal\.(?:css|js)\?v=[^"]+)"', page)
    assert len(links) == 2
    for link in links:
        response = await client.get(link)
        assert response.status == 200 and len(await response.read()) > 0
    # the second page gets the same (remembered) versioned links
    again = await (await client.get("/login")).text()
    assert re.findall(r'"(/static/portal\.css\?v=[^"]+)"', again) == links[:1]


async def test_a_form_sent_while_fhir_is_down_is_kept_for_a_retry(client):
    from fhir_portal import keys
    from fhir_portal.auth.passwords import hash_password
    from fhir_portal.auth.roles import Role

    await client.app[keys.ACCOUNTS].create_account(
        "keep@example.org", password_hash=await hash_password("a fine password"),
        roles={Role.PATIENT}, patient_id="pat-anna", email_verified=True, profile_complete=True,
    )
    token = CSRF.search(await (await client.get("/login")).text()).group(1)
    await client.post("/login", data={"csrf_token": token, "email": "keep@example.org",
                                      "password": "a fine password"}, allow_redirects=False)
    token = CSRF.search(await (await client.get("/account")).text()).group(1)
    text = "My knee still hurts after the fall.\nShould I come in? <b>not bold</b>"
    response = await client.post("/messages/new", data={
        "csrf_token": token, "key": "k" * 32, "to": "Practitioner/prac-1",
        "subject": "Knee", "body": text, "password": "never shown", "confirm": "never shown",
        "current": "never shown", "code": "123456"})
    assert response.status == 503
    page = await response.text()
    # what was typed is on the page (escaped) and in a form that sends it again
    assert "My knee still hurts after the fall." in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert 'action="/messages/new"' in page and 'name="key" value="' + "k" * 32 + '"' in page
    assert 'name="body"' in page and "never shown" not in page and "123456" not in page
    assert CSRF.search(page) is not None  # a fresh token for the retry
    # a GET that fails has nothing to keep
    assert "What you entered is kept" not in await (await client.get("/messages")).text()
