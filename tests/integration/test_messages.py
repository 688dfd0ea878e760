"""Secure messages over HTTP against the real FHIR server: send, reply, read, attachments,
idempotent sends, and what a patient outside a thread gets (404)."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid

import aiohttp
import pytest

from fhir_portal.auth.roles import Role
from fhir_portal.fhir import FhirGateway, PatientScope
from fhir_portal.resources import messages
from fhir_portal.web.background import drain
from tests.integration.conftest import make_patient_account, make_staff_account
from tests.support import csrf_of, sign_in

DOCTOR = "prac-mette-hansen"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


async def new_patient(gateway: FhirGateway, *, family: str = "Messenger") -> str:
    """A fresh Patient with a care team (Mette Hansen) and an email address."""
    suffix = uuid.uuid4().hex[:10]
    patient = await gateway.create(
        {
            "resourceType": "Patient",
            "id": f"pat-msg-{suffix}",
            "name": [{"given": ["Mia"], "family": f"{family}{suffix[:4]}"}],
            "telecom": [{"system": "email", "value": f"mia-{suffix}@example.org"}],
        }
    )
    await gateway.create(
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{patient['id']}"},
            "participant": [
                {
                    "role": [{"text": "General practitioner"}],
                    "member": {"reference": f"Practitioner/{DOCTOR}", "display": "Mette Hansen"},
                }
            ],
        }
    )
    return str(patient["id"])


def ehr_message(patient_id: str, *, subject: str = "Your results", body: str = "All fine.") -> dict:
    """A message as an EHR would write it: no portal identifier, no partOf."""
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": messages.CATEGORY_SYSTEM, "code": "message"}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "recipient": [{"reference": f"Patient/{patient_id}"}],
        "sender": {"reference": f"Practitioner/{DOCTOR}", "display": "Mette Hansen"},
        "sent": "2026-01-05T09:00:00+01:00",
        "topic": {"text": subject},
        "payload": [{"contentString": body}],
    }


async def as_user(client, email: str) -> None:  # type: ignore[no-untyped-def]
    client.session.cookie_jar.clear()
    response = await sign_in(client, email)
    assert response.status in (302, 303), await response.text()


def form_key(html: str) -> str:
    match = re.search(r'name="key" id="msg-key" value="([0-9a-f]{32})"', html)
    assert match, "no message key on the form"
    return match.group(1)


async def compose_and_send(client, to: str, subject: str, body: str, **extra) -> aiohttp.ClientResponse:  # type: ignore[no-untyped-def]
    page = await client.get("/messages/new")
    html = await page.text()
    data = aiohttp.FormData()
    data.add_field("csrf_token", csrf_of(html))
    data.add_field("key", extra.pop("key", None) or form_key(html))
    data.add_field("to", to)
    data.add_field("subject", subject)
    data.add_field("body", body)
    if "file" in extra:
        name, content = extra.pop("file")
        data.add_field("attachment", content, filename=name, content_type="application/octet-stream")
    return await client.post("/messages/new", data=data, allow_redirects=False)


async def identified(gateway: FhirGateway, key: str) -> list[dict]:
    page = await gateway.search(
        "Communication", {"identifier": f"{messages.MESSAGE_ID_SYSTEM}|{key}"}, fresh=True
    )
    return page.resources


async def test_patient_writes_clinician_answers_patient_reads(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient_email = await make_patient_account(accounts, patient_id)
    clinician_email = await make_staff_account(accounts, Role.CLINICIAN, DOCTOR)

    await as_user(client, patient_email)
    page = await client.get("/messages/new")
    html = await page.text()
    assert f'value="Practitioner/{DOCTOR}"' in html and "Mette Hansen" in html
    key = form_key(html)
    subject = f"Question about my tablets {uuid.uuid4().hex[:6]}"
    sent = await compose_and_send(
        client, f"Practitioner/{DOCTOR}", subject, "Can I take it with coffee?", key=key
    )
    assert sent.status == 303
    thread_url = sent.headers["Location"].split("?")[0]
    [created] = await identified(gateway, key)
    assert thread_url == f"/messages/{created['id']}"
    assert created["sender"]["reference"] == f"Patient/{patient_id}"
    assert created["recipient"][0]["reference"] == f"Practitioner/{DOCTOR}"
    assert created["topic"]["text"] == subject
    assert created["meta"]["profile"] == [messages.PROFILE]
    assert "partOf" not in created

    sent_box = await (await client.get("/messages/sent")).text()
    assert subject in sent_box

    # the clinician sees it in the staff console and answers
    await as_user(client, clinician_email)
    console = await client.get("/staff/messages")
    assert console.status == 200
    assert subject in await console.text()
    thread_page = await client.get(f"/staff/messages/{created['id']}")
    staff_html = await thread_page.text()
    assert "Can I take it with coffee?" in staff_html
    reply_key = form_key(staff_html)
    answered = await client.post(
        f"/staff/messages/{created['id']}/reply",
        data={"csrf_token": csrf_of(staff_html), "key": reply_key, "body": "Wait 30 minutes."},
        allow_redirects=False,
    )
    assert answered.status == 303
    [reply] = await identified(gateway, reply_key)
    assert reply["sender"]["reference"] == f"Practitioner/{DOCTOR}"
    assert reply["recipient"][0]["reference"] == f"Patient/{patient_id}"
    assert reply["partOf"][0]["reference"] == f"Communication/{created['id']}"
    assert reply["inResponseTo"][0]["reference"] == f"Communication/{created['id']}"
    # the clinician opened the thread: the patient's message is now received
    assert (await gateway.read("Communication", created["id"], fresh=True)).get("received")

    # the patient has one unread message: in the nav badge, the inbox and the count
    await as_user(client, patient_email)
    scope = PatientScope(gateway, patient_id)
    assert await messages.unread_count(scope) == 1
    inbox = await (await client.get("/messages")).text()
    assert "Messages <span class=\"nav-badge\"><span aria-hidden=\"true\">(1)</span>" in inbox
    assert "1 unread message" in inbox
    assert "msg-item--unread" in inbox
    latest = await messages.latest(scope)
    assert latest[0].id == reply["id"] and latest[0].unread and latest[0].thread_id == created["id"]

    conversation = await (await client.get(thread_url)).text()
    assert "Can I take it with coffee?" in conversation and "Wait 30 minutes." in conversation
    assert await messages.unread_count(scope) == 0
    assert (await gateway.read("Communication", reply["id"], fresh=True)).get("received")
    assert 'class="nav-badge"' not in conversation  # the badge is current on this very page

    # and answers again from the thread: the reply goes to the clinician in the same thread
    reply_form_key = form_key(conversation)
    again = await client.post(
        f"{thread_url}/reply",
        data={"csrf_token": csrf_of(conversation), "key": reply_form_key, "body": "Thanks!"},
        allow_redirects=False,
    )
    assert again.status == 303
    [third] = await identified(gateway, reply_form_key)
    assert third["partOf"][0]["reference"] == f"Communication/{created['id']}"
    assert third["inResponseTo"][0]["reference"] == f"Communication/{reply['id']}"
    assert third["recipient"][0]["reference"] == f"Practitioner/{DOCTOR}"


async def test_a_retried_send_creates_one_message(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    await as_user(client, await make_patient_account(accounts, patient_id))
    page = await (await client.get("/messages/new")).text()
    key = form_key(page)
    data = {
        "csrf_token": csrf_of(page),
        "key": key,
        "to": f"Practitioner/{DOCTOR}",
        "subject": "Double click",
        "body": "Sent twice at once",
    }
    responses = await asyncio.gather(
        *(client.post("/messages/new", data=data, allow_redirects=False) for _ in range(3))
    )
    assert [r.status for r in responses] == [303, 303, 303]
    assert len({r.headers["Location"] for r in responses}) == 1
    retried = await client.post("/messages/new", data=data, allow_redirects=False)
    assert retried.headers["Location"] == responses[0].headers["Location"]
    assert len(await identified(gateway, key)) == 1
    sent = await messages.sent(PatientScope(gateway, patient_id))
    assert [item.subject for item in sent.items] == ["Double click"]


async def test_markup_in_subject_and_body_is_shown_as_text(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    await as_user(client, await make_patient_account(accounts, patient_id))
    subject = '<img src=x onerror="alert(1)">'
    body = "<script>alert('x')</script>\n<b>bold</b>"
    sent = await compose_and_send(client, f"Practitioner/{DOCTOR}", subject, body)
    assert sent.status == 303
    thread = await (await client.get(sent.headers["Location"])).text()
    assert "<script>alert" not in thread and "<img src=x" not in thread and "<b>bold" not in thread
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in thread
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in thread
    listing = await (await client.get("/messages/sent")).text()
    assert "<img src=x" not in listing and "&lt;img src=x" in listing


async def test_bad_input_is_explained_on_the_form_with_the_input_kept(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    await as_user(client, await make_patient_account(accounts, patient_id))
    # not on the care team: refused
    stranger = await compose_and_send(client, "Practitioner/prac-lars-pedersen", "Hello", "Body text")
    assert stranger.status == 422
    assert "Choose whom to write to." in await stranger.text()
    empty = await compose_and_send(client, f"Practitioner/{DOCTOR}", "Kept subject", "   ")
    html = await empty.text()
    assert empty.status == 422 and "Write your message." in html
    assert 'value="Kept subject"' in html and 'aria-describedby="body-hint body-error"' in html
    long = await compose_and_send(client, f"Practitioner/{DOCTOR}", "Long", "x" * (messages.MAX_BODY + 1))
    assert long.status == 422 and "at most 5000 characters" in await long.text()
    fake = await compose_and_send(
        client, f"Practitioner/{DOCTOR}", "Fake", "A text file named .png", file=("scan.png", b"just text")
    )
    assert fake.status == 422 and "Attach a PDF, PNG or JPEG file." in await fake.text()
    big = await compose_and_send(
        client, f"Practitioner/{DOCTOR}", "Big", "Too big",
        file=("big.pdf", b"%PDF-1.4\n" + bytes(messages.MAX_ATTACHMENT_BYTES)),
    )
    assert big.status == 422 and "larger than 5 MB" in await big.text()
    sent = await messages.sent(PatientScope(gateway, patient_id))
    assert sent.items == []


async def test_attachments_are_stored_in_fhir_and_only_participants_download_them(
    client, accounts, gateway
) -> None:
    owner_id = await new_patient(gateway)
    other_id = await new_patient(gateway, family="Other")
    owner_email = await make_patient_account(accounts, owner_id)
    other_email = await make_patient_account(accounts, other_id)
    await as_user(client, owner_email)
    sent = await compose_and_send(
        client, f"Practitioner/{DOCTOR}", "Photo of the rash", "See the picture",
        file=("../rash photo.png", PNG),
    )
    assert sent.status == 303
    thread_url = sent.headers["Location"].split("?")[0]
    message_id = thread_url.rsplit("/", 1)[1]
    stored = await gateway.read("Communication", message_id)
    attachment = stored["payload"][1]["contentAttachment"]
    assert attachment["contentType"] == "image/png" and attachment["title"] == "rash photo.png"
    assert attachment["size"] == len(PNG)
    page = await (await client.get(thread_url)).text()
    assert f"{thread_url}/attachment" in page
    download = await client.get(f"{thread_url}/attachment")
    assert download.status == 200 and await download.read() == PNG
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]

    # the other patient: neither the thread, nor the file, nor a reply
    await as_user(client, other_email)
    assert (await client.get(thread_url)).status == 404
    assert (await client.get(f"{thread_url}/attachment")).status == 404
    token = csrf_of(await (await client.get("/messages")).text())
    refused = await client.post(
        f"{thread_url}/reply", data={"csrf_token": token, "key": uuid.uuid4().hex, "body": "hi"}
    )
    assert refused.status == 404
    replies = await gateway.search(
        "Communication", {"part-of": f"Communication/{message_id}"}, fresh=True
    )
    assert replies.resources == []

    # a clinician outside the thread gets 404 as well; the addressee can download
    outsider = await make_staff_account(accounts, Role.CLINICIAN, "prac-rikke-dahl")
    await as_user(client, outsider)
    assert (await client.get(f"/staff/messages/{message_id}")).status == 404
    assert (await client.get(f"/staff/messages/{message_id}/attachment")).status == 404
    assert thread_url.rsplit("/", 1)[1] not in await (await client.get("/staff/messages")).text()
    addressee = await make_staff_account(accounts, Role.CLINICIAN, DOCTOR)
    await as_user(client, addressee)
    staff_download = await client.get(f"/staff/messages/{message_id}/attachment")
    assert staff_download.status == 200 and await staff_download.read() == PNG


async def test_a_message_written_by_the_ehr_is_its_own_thread(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    await as_user(client, await make_patient_account(accounts, patient_id))
    written = await gateway.create(ehr_message(patient_id, subject="Vaccination reminder"))
    inbox = await (await client.get("/messages")).text()
    assert "Vaccination reminder" in inbox and f'href="/messages/{written["id"]}"' in inbox
    thread = await messages.thread(PatientScope(gateway, patient_id), written["id"])
    assert thread.id == written["id"] and thread.can_reply and thread.reply_to == "Mette Hansen"


async def test_patients_and_staff_roles_are_kept_apart(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    await as_user(client, await make_patient_account(accounts, patient_id))
    assert (await client.get("/staff/messages")).status == 403
    agent = await make_staff_account(accounts, Role.AGENT)
    await as_user(client, agent)
    assert (await client.get("/staff/messages")).status == 403
    assert (await client.get("/messages")).status == 403
    clinician = await make_staff_account(accounts, Role.CLINICIAN, DOCTOR)
    await as_user(client, clinician)
    redirected = await client.get("/messages", allow_redirects=False)
    assert redirected.status == 303 and redirected.headers["Location"] == "/staff/messages"


@pytest.mark.parametrize("box", ["/messages", "/messages/sent"])
async def test_lists_are_paginated(client, accounts, gateway, box) -> None:
    patient_id = await new_patient(gateway)
    await as_user(client, await make_patient_account(accounts, patient_id))
    for index in range(messages.PAGE_SIZE + 2):
        resource = ehr_message(patient_id, subject=f"Note {index:02d}")
        resource["sent"] = f"2026-01-{index + 1:02d}T09:00:00+01:00"
        if box == "/messages/sent":
            resource["sender"], resource["recipient"] = (
                {"reference": f"Patient/{patient_id}"},
                [{"reference": f"Practitioner/{DOCTOR}"}],
            )
        await gateway.create(resource)
    first = await (await client.get(box)).text()
    assert "Note 21" in first and "Note 02" in first and "Note 01" not in first
    assert "?page=2" in first
    second = await (await client.get(f"{box}?page=2")).text()
    assert "Note 01" in second and "Note 00" in second and "Note 21" not in second


async def test_practitioners_seen_at_visits_can_be_written_to(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    await gateway.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient_id}"},
            "participant": [{"individual": {"reference": "Practitioner/prac-lars-pedersen"}}],
        }
    )
    choices = await messages.recipients(PatientScope(gateway, patient_id))
    assert [(c.reference, c.name) for c in choices] == [
        ("Practitioner/prac-lars-pedersen", "Lars Pedersen"),  # name read from the directory
        (f"Practitioner/{DOCTOR}", "Mette Hansen"),
    ]
    await as_user(client, await make_patient_account(accounts, patient_id))
    sent = await compose_and_send(client, "Practitioner/prac-lars-pedersen", "After the visit", "A question")
    assert sent.status == 303


async def test_two_portals_racing_on_one_key_create_one_message(gateway) -> None:
    """No shared lock between processes: HAPI's conditional create decides, losers retry."""
    patient_id = await new_patient(gateway)
    scope = PatientScope(gateway, patient_id)
    key = messages.new_message_key()
    resource = messages._communication(
        key=key,
        patient={"reference": f"Patient/{patient_id}"},
        sender={"reference": f"Patient/{patient_id}"},
        recipients=[{"reference": f"Practitioner/{DOCTOR}"}],
        subject="Race",
        body="Once",
        attachment=None,
    )
    # every create gets its own lock, as if each ran in a separate portal process
    ids = await asyncio.gather(
        *(messages._create_once(scope.create, dict(resource), key, asyncio.Lock())
          for _ in range(6))
    )
    assert len(set(ids)) == 1
    assert len(await identified(gateway, key)) == 1


async def test_the_pages_speak_danish(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    written = await gateway.create(ehr_message(patient_id, subject="Svar på blodprøve"))
    await as_user(client, await make_patient_account(accounts, patient_id))
    token = csrf_of(await (await client.get("/messages")).text())
    await client.post("/language", data={"csrf_token": token, "lang": "da", "next": "/messages"})
    inbox = await (await client.get("/messages")).text()
    assert "Indbakke" in inbox and "Du har 1 ulæst besked." in inbox and "Fra: Mette Hansen" in inbox
    assert "1 ulæst besked</span>" in inbox  # the nav badge's accessible text
    compose = await (await client.get("/messages/new")).text()
    assert "Vælg en behandler" in compose and "Send besked" in compose
    thread = await (await client.get(f"/messages/{written['id']}")).text()
    assert "Svar Mette Hansen" in thread and "Dit svar" in thread


async def test_a_message_the_ehr_withdraws_disappears(client, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    scope = PatientScope(gateway, patient_id)
    written = await gateway.create(ehr_message(patient_id, subject="Sent to the wrong patient"))
    assert await messages.unread_count(scope) == 1
    await gateway.update({**written, "status": "entered-in-error"})
    assert await messages.unread_count(scope) == 0
    assert (await messages.inbox(scope)).items == []
    await as_user(client, await make_patient_account(accounts, patient_id))
    assert (await client.get(f"/messages/{written['id']}")).status == 404


async def test_a_note_between_clinicians_about_a_patient_stays_between_them(
    client, accounts, gateway
) -> None:
    patient_id = await new_patient(gateway)
    note = ehr_message(patient_id, subject="Internal: dose question", body="Between us")
    note["recipient"] = [{"reference": "Practitioner/prac-rikke-dahl"}]
    written = await gateway.create(note)
    await as_user(client, await make_patient_account(accounts, patient_id))
    assert (await client.get(f"/messages/{written['id']}")).status == 404
    assert "Internal: dose question" not in await (await client.get("/messages")).text()

    await as_user(client, await make_staff_account(accounts, Role.CLINICIAN, DOCTOR))
    page = await client.get(f"/staff/messages/{written['id']}")
    html = await page.text()
    assert page.status == 200 and "Between us" in html and "Send reply" not in html
    refused = await client.post(
        f"/staff/messages/{written['id']}/reply",
        data={"csrf_token": csrf_of(html), "key": messages.new_message_key(), "body": "To the patient?"},
    )
    assert refused.status == 422 and "This conversation cannot be answered." in await refused.text()
    assert await messages.unread_count(PatientScope(gateway, patient_id)) == 0


async def test_opening_a_thread_shows_it_as_it_was_and_marks_it_read(gateway) -> None:
    patient_id = await new_patient(gateway)
    scope = PatientScope(gateway, patient_id)
    written = await gateway.create(ehr_message(patient_id, subject="Blood test results"))
    assert await messages.unread_count(scope) == 1
    opened = await messages.open_thread(scope, written["id"])
    assert opened.id == written["id"] and opened.reply_to == "Mette Hansen"
    assert [m.unread for m in opened.messages] == [True]  # shown as new this once
    assert await messages.unread_count(scope) == 0
    stored = await gateway.read("Communication", written["id"], fresh=True)
    assert stored.get("received")
    again = await messages.open_thread(scope, written["id"])
    assert [m.unread for m in again.messages] == [False]


PDF = b"%PDF-1.4\n% a lab report\n"


async def test_a_file_the_ehr_links_by_url_opens_for_the_patient_only(
    client, accounts, gateway
) -> None:
    patient_id = await new_patient(gateway)
    other_id = await new_patient(gateway, family="Other")
    report = await gateway.create({
        "resourceType": "Binary", "contentType": "application/pdf",
        "securityContext": {"reference": f"Patient/{patient_id}"},
        "data": base64.b64encode(PDF).decode(),
    })
    foreign = await gateway.create({
        "resourceType": "Binary", "contentType": "application/pdf",
        "securityContext": {"reference": f"Patient/{other_id}"},
        "data": base64.b64encode(b"%PDF-1.4\nsomeone else").decode(),
    })

    def with_file(url: str, subject: str) -> dict:
        message = ehr_message(patient_id, subject=subject)
        message["payload"].append({"contentAttachment": {
            "contentType": "application/pdf", "title": "HbA1c report.pdf", "url": url}})
        return message

    linked = await gateway.create(with_file(f"Binary/{report['id']}", "Your lab report"))
    absolute = await gateway.create(
        with_file(f"{gateway.base_url.rstrip('/')}/Binary/{report['id']}", "Same, absolute"))
    misfiled = await gateway.create(with_file(f"Binary/{foreign['id']}", "Wrong file"))
    offsite = await gateway.create(with_file("https://evil.example/Binary/1", "Elsewhere"))

    await as_user(client, await make_patient_account(accounts, patient_id))
    page = await (await client.get(f"/messages/{linked['id']}")).text()
    assert "HbA1c report.pdf" in page and f"/messages/{linked['id']}/attachment" in page
    for message in (linked, absolute):
        download = await client.get(f"/messages/{message['id']}/attachment")
        assert download.status == 200 and await download.read() == PDF
        assert download.headers["Content-Type"] == "application/pdf"
    await drain(client.app)  # the file read is audited, under this patient
    audits = await gateway.search("AuditEvent", {"entity": f"Binary/{report['id']}"}, fresh=True)
    assert any(f"Patient/{patient_id}" in str(a["entity"]) for a in audits.resources)
    # a Binary filed under another patient, or a file on another server: never fetched
    assert (await client.get(f"/messages/{misfiled['id']}/attachment")).status == 404
    assert (await client.get(f"/messages/{offsite['id']}/attachment")).status == 404
    # the other patient cannot reach the file through the message either
    await as_user(client, await make_patient_account(accounts, other_id))
    assert (await client.get(f"/messages/{linked['id']}/attachment")).status == 404
    # the clinician of the thread can open it
    await as_user(client, await make_staff_account(accounts, Role.CLINICIAN, DOCTOR))
    staff = await client.get(f"/staff/messages/{linked['id']}/attachment")
    assert staff.status == 200 and await staff.read() == PDF
