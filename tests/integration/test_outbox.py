"""The notification outbox against the real FHIR server and a real SMTP sink."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import respx

from fhir_portal.fhir import FhirGateway
from fhir_portal.notify.outbox import Outbox
from fhir_portal.resources import notifications
from fhir_portal.settings import Settings
from tests.smtp import SmtpSink, body_of


async def _patient(gateway: FhirGateway) -> str:
    created = await gateway.create({"resourceType": "Patient", "name": [{"family": "Outbox"}]})
    return str(created["id"])


async def test_enqueue_twice_with_one_key_records_one_communication(gateway: FhirGateway) -> None:
    patient_id = await _patient(gateway)
    key = f"test-{uuid.uuid4().hex}"
    first = await notifications.enqueue(
        gateway, patient_id=patient_id, medium="email", to="a@example.org",
        subject="Hello", body="Body", dedupe_key=key,
    )
    second = await notifications.enqueue(
        gateway, patient_id=patient_id, medium="email", to="a@example.org",
        subject="Hello", body="Body", dedupe_key=key,
    )
    assert first == second
    found = await gateway.search(
        "Communication", {"identifier": f"{notifications.NOTIFICATION_KEY_SYSTEM}|{key}"},
        fresh=True,
    )
    assert [r["id"] for r in found.resources] == [first]
    resource = found.resources[0]
    assert resource["status"] == "in-progress"
    assert resource["recipient"] == [{"reference": f"Patient/{patient_id}"}]
    assert resource["medium"][0]["coding"][0]["code"] == "EMAILWRIT"
    assert resource["category"][0]["coding"][0]["code"] == "notification"


async def test_email_waits_while_smtp_is_down_and_is_delivered_once_it_is_back(
    gateway: FhirGateway, tmp_path
) -> None:
    sink = SmtpSink()  # a port, but nothing listening yet: the SMTP server is down
    settings = Settings(data_dir=tmp_path, secret_key="x", smtp_host=sink.host,
                        smtp_port=sink.port)
    outbox = Outbox(gateway, settings, interval=0.2, base=0.5, cap=2)
    patient_id = await _patient(gateway)
    address = f"outbox-{uuid.uuid4().hex[:8]}@example.org"
    comm_id = await notifications.enqueue(
        gateway, patient_id=patient_id, medium="email", to=address,
        subject="Your appointment", body="See you soon", dedupe_key=f"t-{uuid.uuid4().hex}",
    )
    await outbox.run_once()
    await outbox.run_once()
    waiting = await notifications.notification(gateway, comm_id)
    assert waiting is not None and waiting.status == "in-progress"
    assert waiting.attempts == 0  # no attempt spent while the server does not answer

    sink.start()
    try:
        for _ in range(50):
            await outbox.run_once()
            state = await notifications.notification(gateway, comm_id)
            if state is not None and state.status == "completed":
                break
        message = await sink.wait_for_async(address, timeout=10)
        assert message["Subject"] == "Your appointment"
        assert "See you soon" in body_of(message)
        done = await notifications.notification(gateway, comm_id)
        assert done is not None and done.status == "completed" and done.attempts == 1
        assert done.resource.get("sent")
        # a later round sends nothing twice
        await outbox.run_once()
        assert len(sink.messages_to(address)) == 1
    finally:
        sink.stop()


async def test_failed_sms_is_retried_with_backoff_then_delivered(
    gateway: FhirGateway, tmp_path
) -> None:
    hook = "https://sms.example.test/send"
    settings = Settings(data_dir=tmp_path, secret_key="x", sms_webhook_url=hook,
                        sms_webhook_token="tok")
    outbox = Outbox(gateway, settings, interval=0.2, base=2, cap=4)
    patient_id = await _patient(gateway)
    number = "+45 20 " + uuid.uuid4().hex[:6].translate(str.maketrans("abcdef", "123456"))
    comm_id = await notifications.enqueue(
        gateway, patient_id=patient_id, medium="sms", to=number,
        subject="", body="Booked", dedupe_key=f"t-{uuid.uuid4().hex}",
    )
    with respx.mock() as mock:  # the SMS webhook is outside HTTP (FHIR goes over aiohttp)
        route = mock.post(hook).mock(side_effect=[httpx.Response(503), httpx.Response(202)])
        await outbox.run_once()
        failed = await notifications.notification(gateway, comm_id)
        assert failed is not None and failed.status == "in-progress"
        assert failed.attempts == 1 and failed.last_error == "SmsError"
        assert failed.next_attempt is not None
        await outbox.run_once()  # not due yet: the backoff holds it back
        assert route.call_count == 1
        await asyncio.sleep(2.2)
        await outbox.run_once()
        assert route.call_count == 2
    done = await notifications.notification(gateway, comm_id)
    assert done is not None and done.status == "completed" and done.attempts == 2


async def test_stopping_the_smtp_server_loses_nothing(gateway: FhirGateway, tmp_path) -> None:
    sink = SmtpSink().start()
    settings = Settings(data_dir=tmp_path, secret_key="x", smtp_host=sink.host,
                        smtp_port=sink.port)
    outbox = Outbox(gateway, settings, interval=0.2, base=0.5, cap=2)
    patient_id = await _patient(gateway)
    address = f"stop-{uuid.uuid4().hex[:8]}@example.org"

    async def enqueue(subject: str) -> str:
        return await notifications.enqueue(
            gateway, patient_id=patient_id, medium="email", to=address, subject=subject,
            body="Body", dedupe_key=f"t-{uuid.uuid4().hex}")

    async def deliver_until(comm_id: str) -> None:
        for _ in range(50):
            await outbox.run_once()
            state = await notifications.notification(gateway, comm_id)
            if state is not None and state.status == "completed":
                return
        raise AssertionError("not delivered")

    try:
        first = await enqueue("Before the outage")
        await deliver_until(first)
        assert len(sink.messages_to(address)) == 1
        sink.stop()  # the SMTP server goes down
        second = await enqueue("During the outage")
        for _ in range(3):
            await outbox.run_once()
        waiting = await notifications.notification(gateway, second)
        assert waiting is not None and waiting.status == "in-progress"
        sink.start()  # back on the same port
        await deliver_until(second)
        subjects = [m["Subject"] for m in sink.messages_to(address)]
        assert subjects == ["Before the outage", "During the outage"]
    finally:
        sink.stop()
