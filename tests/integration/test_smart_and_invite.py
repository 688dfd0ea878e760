"""SMART session reading from its iss (the real HAPI) with its token; the invite command."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import respx

from fhir_portal import keys
from fhir_portal.app import create_app
from fhir_portal.web.background import drain
from tests.smtp import SmtpSink, body_of, links_in
from tests.support import TEST_PASSWORD, csrf_of

AUTH = "https://auth.ehr.example"


async def test_a_smart_session_reads_the_launch_patient_from_its_iss(aiohttp_client, settings,
                                                                     fhir_base_url):
    client = await aiohttp_client(create_app(replace(
        settings, smart_client_id="portal", smart_allowed_iss=(fhir_base_url,))))
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as router:
        router.get(f"{fhir_base_url}/.well-known/smart-configuration").respond(json={
            "authorization_endpoint": f"{AUTH}/authorize", "token_endpoint": f"{AUTH}/token",
            "code_challenge_methods_supported": ["S256"]})
        router.route(host="127.0.0.1").pass_through()
        router.post(f"{AUTH}/token").respond(json={
            "access_token": "tok-1", "token_type": "Bearer", "expires_in": 600,
            "patient": "pat-anna", "scope": "launch patient/*.rs"})
        launch = await client.get(f"/smart/launch?iss={fhir_base_url}&launch=L1",
                                  allow_redirects=False)
        state = parse_qs(urlsplit(launch.headers["Location"]).query)["state"][0]
        callback = await client.get(f"/smart/callback?state={state}&code=C1",
                                    allow_redirects=False)
    assert callback.status == 303
    # the session's pages read the launch patient from the iss (HAPI) with the bearer token
    profile = await client.get("/profile")
    html = await profile.text()
    assert profile.status == 200 and 'value="Anna"' in html
    # a patient page of another patient's resource stays "not found"
    assert (await client.get("/records/visits/no-such-visit")).status == 404


async def test_invite_command_emails_a_link_and_a_code_that_activate(aiohttp_client, settings,
                                                                     capsys):
    from fhir_portal import cli

    with SmtpSink() as sink:
        mailing = replace(settings, smtp_host=sink.host, smtp_port=sink.port)
        cli_settings = mailing

        def from_env(cls):  # type: ignore[no-untyped-def]
            return cli_settings

        original = cli.Settings.from_env
        cli.Settings.from_env = classmethod(from_env)  # type: ignore[method-assign]
        try:
            code = await asyncio.to_thread(cli.main, ["invite", "pat-chloe", "--email",
                                                      "chloe.invite@example.org"])
            missing = await asyncio.to_thread(cli.main, ["invite", "no-such-patient",
                                                         "--email", "x@example.org"])
        finally:
            cli.Settings.from_env = original  # type: ignore[method-assign]
        assert code == 0 and missing == 2
        printed = capsys.readouterr().out
        link = printed.split("Activation link: ")[1].split()[0]
        activation_code = printed.split("Activation code: ")[1].split()[0]
        message = await sink.wait_for_async("chloe.invite@example.org")
        assert link in links_in(message) and activation_code in body_of(message)

        client = await aiohttp_client(create_app(mailing))
        path = link.split("8080", 1)[1]
        page = await client.get(path)
        assert page.status == 200 and "chloe.invite@example.org" in await page.text()
        token = path.split("token=")[1]
        response = await client.post("/activate", data={
            "csrf_token": csrf_of(await page.text()), "token": token,
            "password": TEST_PASSWORD, "confirm": TEST_PASSWORD}, allow_redirects=False)
        assert response.headers["Location"] == "/profile?first=1"
        account = await client.app[keys.ACCOUNTS].account_by_email("chloe.invite@example.org")
        assert account.patient_id == "pat-chloe"
        profile = await client.get("/profile?first=1")
        assert 'value="Chloe"' in await profile.text()
        # the link is single use
        assert (await client.get(path)).status == 400
        await drain(client.app)
