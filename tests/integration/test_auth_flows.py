"""Registration, email confirmation, first-sign-in profile, conflict, reset, audit, isolation."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from fhir_portal import keys
from fhir_portal.app import create_app
from fhir_portal.web.background import drain
from tests.integration.conftest import make_patient_account
from tests.smtp import SmtpSink, links_in
from tests.support import TEST_PASSWORD, csrf_of, sign_in


@pytest.fixture
def sink():  # type: ignore[no-untyped-def]
    with SmtpSink() as running:
        yield running


@pytest.fixture
async def mail_client(aiohttp_client, settings, sink):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(replace(settings, smtp_host=sink.host,
                                                   smtp_port=sink.port)))


async def test_register_confirm_profile_conflict_reset(mail_client, sink, gateway):
    client = mail_client
    email = f"reg-{uuid.uuid4().hex[:8]}@example.org"
    page = await client.get("/register")
    form = {"csrf_token": csrf_of(await page.text()), "given": "Ida", "family": "Test",
            "birth_date": "1990-05-17", "email": email, "mobile": "+45 12 34 56 78",
            "language": "da", "password": "kodeord1", "confirm": "kodeord1"}
    refused = await client.post("/register", data=form)
    assert refused.status == 400 and "too common" in await refused.text()
    assert 'value="Ida"' in await refused.text()  # input kept
    form.update(password=TEST_PASSWORD, confirm=TEST_PASSWORD)
    response = await client.post("/register", data=form)
    assert response.status == 200
    # not usable before the email is confirmed
    message = await sink.wait_for_async(email)
    first_link = next(link for link in links_in(message) if "/register/verify" in link)
    refused = await sign_in(client, email)
    assert refused.status == 400 and "Send the link again" in await refused.text()
    # the link can be sent again; the new one replaces the old one
    before = len(sink.messages)
    await client.post("/register/resend", data={"csrf_token": csrf_of(await refused.text()),
                                                 "email": email})
    message = await sink.wait_for_async(email, after=before)
    link = next(link for link in links_in(message) if "/register/verify" in link)
    assert link != first_link
    assert (await client.get(first_link.split("8080", 1)[1])).status == 400
    path = link.split("8080", 1)[1]
    confirmed = await client.get(path, allow_redirects=False)
    # confirming does not sign in (a link opened by someone else must not start a session)
    assert confirmed.status == 303 and confirmed.headers["Location"] == "/login?confirmed=1"
    assert (await client.get("/", allow_redirects=False)).headers["Location"].startswith("/login")
    assert (await sign_in(client, email)).status == 303
    account = await client.app[keys.ACCOUNTS].account_by_email(email)
    patient = await gateway.read("Patient", account.patient_id)
    assert patient["birthDate"] == "1990-05-17" and patient["name"][0]["family"] == "Test"
    assert (await client.get(path)).status == 400  # single use
    # other pages wait for the first-sign-in profile
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/profile?first=1"
    profile = await client.get("/profile?first=1")
    html = await profile.text()
    version = html.split('name="version" value="')[1].split('"')[0]
    # meanwhile the EHR changes the Patient
    patient["name"][0]["given"] = ["Ida", "Marie"]
    await gateway.update(patient)
    stale = {"csrf_token": csrf_of(html), "version": version, "given": "Idah",
             "family": "Test", "birth_date": "1990-05-17", "email": email, "mobile": "",
             "language": "da"}
    conflict = await client.post("/profile", data=stale, allow_redirects=False)
    body = await conflict.text()
    assert conflict.status == 409 and 'value="Ida Marie"' in body  # the EHR's data shown
    assert (await gateway.read("Patient", account.patient_id, fresh=True))["name"][0]["given"] == [
        "Ida", "Marie"]
    new_version = body.split('name="version" value="')[1].split('"')[0]
    stale.update(version=new_version, csrf_token=csrf_of(body))
    saved = await client.post("/profile", data=stale, allow_redirects=False)
    assert saved.status == 303 and saved.headers["Location"] == "/"
    updated = await gateway.read("Patient", account.patient_id, fresh=True)
    assert updated["name"][0]["given"] == ["Idah"] and "telecom" in updated
    assert not any(t.get("system") == "phone" for t in updated["telecom"])  # mobile removed
    account = await client.app[keys.ACCOUNTS].account_by_email(email)
    assert account.profile_complete and account.locale == "da"
    # the AuditEvents of this patient: the update and the sign-in
    await drain(client.app)
    await asyncio.sleep(0.5)
    events = await gateway.search("AuditEvent", {"patient": f"Patient/{account.patient_id}"},
                                  fresh=True)
    actions = {e.get("action") for e in events.resources}
    assert "U" in actions and "R" in actions
    logins = [e for e in events.resources if e["type"]["code"] == "110114"]
    assert logins and logins[0]["outcome"] == "0"  # the sign-in by the confirmation link
    update_event = next(e for e in events.resources if e.get("action") == "U")
    assert update_event["agent"][0]["who"]["reference"] == f"Patient/{account.patient_id}"
    assert "Idah" not in str(update_event)  # references only, no PHI
    # password reset by email, single use, then sign in with the new password
    page = await client.get("/password-reset")
    before = len(sink.messages)
    await client.post("/password-reset", data={"csrf_token": csrf_of(await page.text()),
                                                "email": email})
    reset = await sink.wait_for_async(email, after=before)
    reset_link = next(link for link in links_in(reset) if "/password-reset/" in link)
    reset_path = reset_link.split("8080", 1)[1]
    form_page = await client.get(reset_path)
    new_password = "a brand new passphrase"
    done = await client.post(reset_path, data={"csrf_token": csrf_of(await form_page.text()),
                                               "password": new_password,
                                               "confirm": new_password},
                             allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/login?reset=1"
    assert (await client.get(reset_path)).status == 400
    assert (await sign_in(client, email)).status == 400
    assert (await sign_in(client, email, new_password)).status == 303


async def test_another_patients_ids_are_not_found(client, accounts, gateway):
    email = await make_patient_account(accounts, "pat-anna")
    await sign_in(client, email)
    bjorn = {}
    for resource_type in ("Communication", "Encounter", "Appointment", "CarePlan", "Task"):
        page = await gateway.search(resource_type, {"patient" if resource_type != "Communication"
                                                    else "subject": "Patient/pat-bjorn"})
        bjorn[resource_type] = [r["id"] for r in page.resources]
    assert bjorn["Encounter"], "the fixtures give Bjørn visits"
    checked = 0
    for route in client.app.router.routes():
        canonical = route.resource.canonical
        if route.method != "GET" or "{" not in canonical or canonical.startswith(
                ("/staff", "/static", "/password-reset", "/hooks", "/knowledge", "/checkin")):
            continue
        for ids in bjorn.values():
            for foreign in ids[:2]:
                path = canonical.split("{")[0] + foreign + canonical.split("}", 1)[1]
                response = await client.get(path, allow_redirects=False)
                assert response.status == 404, (path, response.status)
                assert "Page not found" in await response.text()
                checked += 1
    assert checked >= 4


async def test_staff_reads_are_audited_with_the_practitioner_and_the_patient(app, client, gateway):
    from aiohttp.test_utils import make_mocked_request

    from fhir_portal.auth.roles import Principal, Role
    from fhir_portal.resources import audit
    from fhir_portal.web.audit import ACCESS_LOG, actor_of
    from fhir_portal.web.context import PRINCIPAL, staff_gateway

    practitioner = (await gateway.search("Practitioner", {"_count": "1"})).resources[0]["id"]
    condition = (await gateway.search("Condition", {"patient": "Patient/pat-bjorn"})).resources[0]
    request = make_mocked_request("GET", "/staff/somewhere", app=app)
    request[PRINCIPAL] = Principal(account_id=7, email="c@contoso.example", display_name="C",
                                   roles=frozenset({Role.CLINICIAN}),
                                   practitioner_id=practitioner)
    staff = staff_gateway(request, Role.CLINICIAN)
    await staff.read("Condition", condition["id"])
    await staff.read("Practitioner", practitioner)  # directory data: not audited
    event = audit.access_event(request[ACCESS_LOG], actor_of(request))
    assert event["agent"][0]["who"]["reference"] == f"Practitioner/{practitioner}"
    whats = [e["what"]["reference"] for e in event["entity"]]
    assert whats == ["Patient/pat-bjorn", f"Condition/{condition['id']}"]
    created = await gateway.create(event)
    found = await gateway.search("AuditEvent", {"patient": "Patient/pat-bjorn",
                                                "_id": created["id"]}, fresh=True)
    assert [e["id"] for e in found.resources] == [created["id"]]


async def test_one_audit_event_per_page_listing_what_was_read(client, accounts, gateway):
    suffix = uuid.uuid4().hex[:8]
    patient = await gateway.create({"resourceType": "Patient", "name": [
        {"family": f"Audit{suffix}", "given": ["Astrid"]}], "birthDate": "1970-01-01"})
    conditions = [await gateway.create({
        "resourceType": "Condition", "subject": {"reference": f"Patient/{patient['id']}"},
        "code": {"text": f"Condition {n}"},
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]}}) for n in range(2)]
    email = await make_patient_account(accounts, patient["id"])
    await sign_in(client, email)
    await drain(client.app)
    query = {"patient": f"Patient/{patient['id']}", "type": "rest"}
    before = (await gateway.search("AuditEvent", query, fresh=True)).resources
    page = await client.get("/records/conditions")
    assert page.status == 200 and "Condition 1" in await page.text()
    await drain(client.app)
    after = (await gateway.search("AuditEvent", query, fresh=True)).resources
    assert len(after) == len(before) + 1
    event = next(e for e in after if e["id"] not in {b["id"] for b in before})
    whats = {e["what"]["reference"] for e in event["entity"]}
    assert f"Patient/{patient['id']}" in whats
    assert {f"Condition/{c['id']}" for c in conditions} <= whats
    assert event["action"] == "R" and event["outcome"] == "0"
    assert f"Audit{suffix}" not in str(event) and "Condition 1" not in str(event)
