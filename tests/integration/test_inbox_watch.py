"""Messages an EHR writes straight to the FHIR server reach the patient as one email:
through the catch-up sweep, through the REST hook, and through a real HAPI Subscription."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fhir_portal import keys
from fhir_portal.app import create_app
from fhir_portal.fhir import FhirGateway
from fhir_portal.i18n import Translations
from fhir_portal.notify import inbox_watch
from fhir_portal.notify.email import send_email
from fhir_portal.notify.watermarks import Watermarks
from fhir_portal.resources import notifications
from fhir_portal.settings import Settings
from tests.integration.test_messages import ehr_message, new_patient
from tests.smtp import SmtpSink, body_of


async def notifications_for(gateway: FhirGateway, message_id: str) -> list[dict]:
    page = await gateway.search(
        "Communication",
        {"identifier": f"{notifications.NOTIFICATION_KEY_SYSTEM}|Communication/{message_id}"},
        fresh=True,
    )
    return page.resources


async def watcher(gateway: FhirGateway, settings: Settings, tmp_path: Path) -> inbox_watch.InboxWatch:
    marks = await Watermarks.open(tmp_path / "marks.sqlite3")
    return inbox_watch.InboxWatch(gateway, settings, Translations.load(), marks)


async def test_the_sweep_enqueues_one_email_per_new_message(gateway, settings, tmp_path) -> None:
    watch = await watcher(gateway, settings, tmp_path)
    assert watch.marks is not None
    # the first sweep ever only starts the watermark
    assert await watch.sweep() == 0
    assert await watch.marks.get(inbox_watch.WATERMARK)

    patient_id = await new_patient(gateway)
    patient = await gateway.read("Patient", patient_id)
    written = await gateway.create(ehr_message(patient_id, subject="Biopsy result", body="Benign."))
    from_patient = ehr_message(patient_id)
    from_patient["sender"] = {"reference": f"Patient/{patient_id}"}
    from_patient["recipient"] = [{"reference": "Practitioner/prac-mette-hansen"}]
    own = await gateway.create(from_patient)
    already_read = ehr_message(patient_id)
    already_read["received"] = "2026-01-05T10:00:00+01:00"
    read = await gateway.create(already_read)

    assert await watch.sweep() >= 1
    [notice] = await notifications_for(gateway, written["id"])
    assert notice["recipient"] == [{"reference": f"Patient/{patient_id}"}]
    assert notice["medium"][0]["coding"][0]["code"] == "EMAILWRIT"
    address = next(e for e in notice["extension"][0]["extension"] if e["url"] == "address")
    assert address["valueString"] == patient["telecom"][0]["value"]
    text = notice["topic"]["text"] + notice["payload"][0]["contentString"]
    assert "Biopsy" not in text and "Benign" not in text and "Mette" not in text
    assert f"{settings.public_url}/messages" in text
    # the patient's own message and a message already read are not announced
    assert await notifications_for(gateway, own["id"]) == []
    assert await notifications_for(gateway, read["id"]) == []

    # sweeping again (the overlap re-reads it) or handling it again sends nothing new
    await watch.sweep()
    await watch.handle(await gateway.read("Communication", written["id"]))
    assert len(await notifications_for(gateway, written["id"])) == 1
    await watch.marks.close()


async def test_the_watermark_survives_a_restart(gateway, settings, tmp_path) -> None:
    """Messages written while the portal was down are found by the first sweep after."""
    watch = await watcher(gateway, settings, tmp_path)
    assert watch.marks is not None
    await watch.marks.set(
        inbox_watch.WATERMARK, (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    )
    await watch.marks.close()
    patient_id = await new_patient(gateway)
    written = await gateway.create(ehr_message(patient_id))  # "while the portal was down"
    restarted = await watcher(gateway, settings, tmp_path)
    assert await restarted.sweep() >= 1
    assert len(await notifications_for(gateway, written["id"])) == 1
    assert restarted.marks is not None
    await restarted.marks.close()


async def test_the_hook_needs_the_secret_and_is_idempotent(client, gateway, settings) -> None:
    patient_id = await new_patient(gateway)
    written = await gateway.create(ehr_message(patient_id))
    url = f"/hooks/fhir/Communication/{written['id']}"
    headers = {"Content-Type": "application/fhir+json"}
    refused = await client.put(url, json=written, headers={**headers, inbox_watch.HOOK_HEADER: "nope"})
    assert refused.status == 401
    assert (await refused.json(content_type=None))["issue"][0]["diagnostics"] == "unauthorized"

    secret = {**headers, inbox_watch.HOOK_HEADER: inbox_watch.hook_secret(settings)}
    # the body is not trusted: a forged copy changes nothing, the server's copy counts
    forged = {**written, "recipient": [{"reference": "Patient/pat-anna"}]}
    results = await asyncio.gather(*(client.put(url, json=forged, headers=secret) for _ in range(3)))
    assert [r.status for r in results] == [200, 200, 200]
    # a FHIR server's hook client parses the answer as a resource (HAPI retries otherwise)
    assert [(await r.json(content_type=None))["resourceType"] for r in results] == ["OperationOutcome"] * 3
    [notice] = await notifications_for(gateway, written["id"])
    assert notice["subject"]["reference"] == f"Patient/{patient_id}"
    assert (await client.post("/hooks/fhir", headers=secret)).status == 200  # empty ping
    assert (await client.get("/hooks/fhir", headers=secret)).status == 405


async def test_the_email_reaches_the_patient(gateway, settings, tmp_path) -> None:
    watch = await watcher(gateway, settings, tmp_path)
    patient_id = await new_patient(gateway)
    address = (await gateway.read("Patient", patient_id))["telecom"][0]["value"]
    written = await gateway.create(ehr_message(patient_id, body="Your HbA1c is 48."))
    await watch.handle(written)
    [notice] = await notifications_for(gateway, written["id"])
    with SmtpSink() as sink:
        mail_settings = Settings(**{**settings.__dict__, "smtp_host": sink.host, "smtp_port": sink.port})
        # deliver this notification the way the outbox worker does (claim, send, complete)
        item = await notifications.notification(gateway, notice["id"])
        assert item is not None
        claimed = await notifications.claim(gateway, item, base=30, cap=60)
        assert claimed is not None
        await send_email(mail_settings, to=claimed.to, subject=claimed.subject, text=claimed.body)
        await notifications.complete(gateway, claimed)
        message = await sink.wait_for_async(address, timeout=10)
    assert message["Subject"] == "You have a new message"
    body = body_of(message)
    assert f"{settings.public_url}/messages" in body and "HbA1c" not in body
    assert (await gateway.read("Communication", notice["id"], fresh=True))["status"] == "completed"
    assert watch.marks is not None
    await watch.marks.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_real_subscription_delivers_the_message_to_the_portal(
    aiohttp_server, gateway, fhir_base_url, tmp_path
) -> None:
    port = _free_port()
    settings = Settings(
        data_dir=tmp_path,
        secret_key=f"subscription-{port}",
        fhir_base_url=fhir_base_url,
        public_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings)
    server = await aiohttp_server(app, port=port)
    watch = app[inbox_watch.INBOX_WATCH]
    subscription_id = inbox_watch.subscription_id(settings)
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline:
        try:
            current = await gateway.read("Subscription", subscription_id, fresh=True)
            status = current["status"]
        except Exception:  # not created yet
            status = ""
        if status == "active":
            break
        await asyncio.sleep(0.5)
    assert status == "active", status
    assert current["criteria"] == inbox_watch.CRITERIA
    assert current["channel"]["endpoint"] == f"{settings.public_url}/hooks/fhir"
    assert current["channel"]["header"] == [
        f"{inbox_watch.HOOK_HEADER}: {inbox_watch.hook_secret(settings)}"
    ]
    assert app[keys.SETTINGS].public_url == settings.public_url

    async def delivered(message_id: str, seconds: float) -> list[dict]:
        found: list[dict] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = await notifications_for(gateway, message_id)
            if found:
                break
            await asyncio.sleep(0.25)
        return found

    patient_id = await new_patient(gateway)
    # HAPI may mark a new Subscription active a little before its matcher has it loaded
    # (on a busy server, until its next registry sync): the first message proves the
    # subscription is live. Only the hook can deliver here: the sweep runs once a minute
    # and its first round only sets the watermark.
    warm_up = await gateway.create(ehr_message(patient_id))
    assert len(await delivered(warm_up["id"], 90)) == 1
    before = watch.enqueued
    written = await gateway.create(ehr_message(patient_id))
    # a live subscription delivers within seconds; wait for THIS message's notification (a
    # message of an earlier test may reach the new subscription too; other portals on a
    # shared test server may enqueue it as well: the dedupe key keeps it one)
    assert len(await delivered(written["id"], 20)) == 1
    assert watch.enqueued > before

    await server.close()
    await app.shutdown()
    await app.cleanup()
    # it stays active over a restart (no churn on the server); the sweep covers the gap
    stopped = await gateway.read("Subscription", subscription_id, fresh=True)
    assert stopped["status"] == "active"
    await inbox_watch.subscription_off(gateway, settings)  # this test portal is gone for good
    assert (await gateway.read("Subscription", subscription_id, fresh=True))["status"] == "off"
