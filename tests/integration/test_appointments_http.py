"""The appointment pages over HTTP against the real FHIR server (no JavaScript)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime

from aiohttp.test_utils import TestClient

from fhir_portal import keys
from fhir_portal.auth.roles import Role
from fhir_portal.resources import checkin, notifications
from tests.integration.booking_support import TZ, new_patient, private_slot
from tests.integration.conftest import make_patient_account, make_staff_account
from tests.support import csrf_of, sign_in


async def _patient_client(aiohttp_client, server, gateway, *, mobile: str | None = None):  # type: ignore[no-untyped-def]
    email = f"appt-{uuid.uuid4().hex[:8]}@example.org"
    patient_id = await new_patient(gateway, email=email, mobile=mobile)
    store = server.app[keys.ACCOUNTS]
    await make_patient_account(store, patient_id, email=email)
    client: TestClient = await aiohttp_client(server)
    response = await sign_in(client, email)
    assert response.status == 303
    return client, patient_id, email


def _wizard_values(slot: dict) -> dict[str, str]:
    start = datetime.fromisoformat(slot["start"]).astimezone(TZ)
    return {"kind": "clinic", "specialty": "419772000", "postal": "2300",
            "location": "loc-copenhagen", "date": start.date().isoformat(), "slot": slot["id"]}


async def test_clinic_booking_walks_every_step_without_javascript(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    server = await aiohttp_server(app)
    client, patient_id, email = await _patient_client(aiohttp_client, server, gateway)
    slot = await private_slot(gateway)
    values = _wizard_values(slot)

    page = await (await client.get("/appointments/new")).text()
    assert 'name="kind" value="clinic"' in page
    page = await (await client.get("/appointments/new", params={"step": "specialty",
                                                                 "kind": "clinic"})).text()
    assert "Family medicine" in page and 'name="specialty"' in page
    # Next without choosing: the same step with a clear error
    page = await (await client.get("/appointments/new", params={"step": "place",
                                                                 "kind": "clinic"})).text()
    assert "Choose a specialty." in page
    page = await (await client.get("/appointments/new", params={
        "step": "place", "kind": "clinic", "specialty": "419772000", "postal": "2300"})).text()
    # nearest first, with the distance; the previous step keeps the choices
    assert page.index("Contoso Clinic Copenhagen") < page.index("Contoso Clinic Aarhus")
    assert re.search(r"about [0-9.]+ km away", page)
    assert "specialty=419772000" in page and "kind=clinic" in page
    page = await (await client.get("/appointments/new", params={
        **{k: values[k] for k in ("kind", "specialty", "postal", "location", "date")},
        "step": "when"})).text()
    assert f'value="{slot["id"]}"' in page
    page = await (await client.get("/appointments/new", params={**values,
                                                                 "step": "contact"})).text()
    assert f'value="{email}"' in page
    token = csrf_of(page)
    confirm = await client.post("/appointments/new/confirm",
                                data={"csrf_token": token, **values, "email": email,
                                      "mobile": "+45 20 11 22 33"})
    page = await confirm.text()
    assert confirm.status == 200 and "Confirm your appointment" in page and "Mette Hansen" in page
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page).group(1)
    # a forged slot at Confirm is refused: everything is re-checked on the server
    forged = await client.post("/appointments/new/book", data={
        "csrf_token": token, **values, "slot": "slot-does-not-exist", "email": email,
        "mobile": "", "key": key}, allow_redirects=False)
    assert forged.status in (303, 409)
    booked = await client.post("/appointments/new/book", data={
        "csrf_token": token, **values, "email": email, "mobile": "+45 20 11 22 33", "key": key},
        allow_redirects=False)
    assert booked.status == 303, await booked.text()
    location = booked.headers["Location"]
    appointment_id = location.split("/")[2].split("?")[0]
    detail = await (await client.get(location)).text()
    assert "Mette Hansen" in detail and "Østerbrogade 120" in detail and "Booked" in detail
    # the EHR sees the booked appointment on a busy slot
    resource = await gateway.read("Appointment", appointment_id, fresh=True)
    assert resource["status"] == "booked"
    assert (await gateway.read("Slot", slot["id"], fresh=True))["status"] == "busy"
    # the confirmation is queued for email (SMS only where a webhook is configured)
    found = await gateway.search("Communication", {
        "identifier": f"{notifications.NOTIFICATION_KEY_SYSTEM}|booked-{appointment_id}-email"},
        fresh=True)
    assert len(found.resources) == 1
    body = found.resources[0]["payload"][0]["contentString"]
    assert "/checkin/" in body and "Mette Hansen" in body
    # the edited mobile number was saved on the Patient (versioned update)
    patient = await gateway.read("Patient", patient_id, fresh=True)
    assert any(t.get("value") == "+45 20 11 22 33" for t in patient.get("telecom", []))
    # a repeated Confirm (same key) books nothing twice
    again = await client.post("/appointments/new/book", data={
        "csrf_token": token, **values, "email": email, "mobile": "", "key": key},
        allow_redirects=False)
    assert again.status == 303 and again.headers["Location"].startswith(
        f"/appointments/{appointment_id}")


async def test_twenty_concurrent_confirmations_over_http_one_booking(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    server = await aiohttp_server(app)
    slot = await private_slot(gateway)
    values = _wizard_values(slot)
    clients = await asyncio.gather(*(
        _patient_client(aiohttp_client, server, gateway) for _ in range(20)))

    async def ready(entry):  # type: ignore[no-untyped-def]
        client, _, email = entry
        page = await (await client.get("/appointments/new", params={**values,
                                                                     "step": "contact"})).text()
        token = csrf_of(page)
        confirm = await (await client.post("/appointments/new/confirm", data={
            "csrf_token": token, **values, "email": email, "mobile": ""})).text()
        key = re.search(r'name="key" value="([0-9a-f]{32})"', confirm).group(1)
        return client, {"csrf_token": token, **values, "email": email, "mobile": "", "key": key}

    prepared = await asyncio.gather(*(ready(e) for e in clients))
    responses = await asyncio.gather(*(
        client.post("/appointments/new/book", data=form, allow_redirects=False)
        for client, form in prepared))
    statuses = [r.status for r in responses]
    assert statuses.count(303) == 1, statuses
    winner = next(r for r in responses if r.status == 303)
    assert winner.headers["Location"].endswith("?booked=1")
    assert statuses.count(409) == 19, statuses
    for response in responses:
        if response.status == 409:
            page = await response.text()
            assert "This time was just taken" in page and "Next free times" in page
    on_slot = await gateway.search("Appointment", {"slot": f"Slot/{slot['id']}"}, fresh=True)
    assert len(on_slot.resources) == 1
    assert (await gateway.read("Slot", slot["id"], fresh=True))["status"] == "busy"


async def _book(client, gateway, slot, email):  # type: ignore[no-untyped-def]
    values = _wizard_values(slot)
    page = await (await client.get("/appointments/new", params={**values,
                                                                 "step": "contact"})).text()
    token = csrf_of(page)
    confirm = await (await client.post("/appointments/new/confirm", data={
        "csrf_token": token, **values, "email": email, "mobile": ""})).text()
    key = re.search(r'name="key" value="([0-9a-f]{32})"', confirm).group(1)
    booked = await client.post("/appointments/new/book", data={
        "csrf_token": token, **values, "email": email, "mobile": "", "key": key},
        allow_redirects=False)
    assert booked.status == 303
    return booked.headers["Location"].split("/")[2].split("?")[0]


async def test_cancel_with_confirmation_frees_the_slot(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    server = await aiohttp_server(app)
    client, _, email = await _patient_client(aiohttp_client, server, gateway)
    slot = await private_slot(gateway)
    appointment_id = await _book(client, gateway, slot, email)
    form = await client.get(f"/appointments/{appointment_id}/cancel")
    page = await form.text()
    assert "Do you want to cancel this appointment?" in page
    done = await client.post(f"/appointments/{appointment_id}/cancel",
                             data={"csrf_token": csrf_of(page)}, allow_redirects=False)
    assert done.status == 303
    assert (await gateway.read("Appointment", appointment_id, fresh=True))["status"] == "cancelled"
    assert (await gateway.read("Slot", slot["id"], fresh=True))["status"] == "free"
    listing = await (await client.get(done.headers["Location"])).text()
    assert "The appointment has been cancelled" in listing
    again = await client.post(f"/appointments/{appointment_id}/cancel",
                              data={"csrf_token": csrf_of(page)})
    assert again.status == 409 and "already cancelled" in await again.text()


async def test_checkin_with_a_new_coverage_creates_one_encounter(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    server = await aiohttp_server(app)
    client, patient_id, email = await _patient_client(aiohttp_client, server, gateway)
    slot = await private_slot(gateway, days_ahead=1)
    appointment_id = await _book(client, gateway, slot, email)
    secret = app[keys.SETTINGS].secret_key
    token = checkin.make_token(secret, appointment_id,
                               datetime.fromisoformat(slot["end"]))
    base = f"/checkin/{token}"
    start = await (await client.get(base)).text()
    assert "Start here" in start and "Mette Hansen" in start
    assert "Confirm the details" in await (await client.get(f"{base}/details")).text()
    personal = await (await client.get(f"{base}/personal")).text()
    version = re.search(r'name="version" value="([^"]*)"', personal).group(1)
    bad = await client.post(f"{base}/personal", data={
        "csrf_token": csrf_of(personal), "version": version, "email": "not-an-email",
        "mobile": "", "address_line": "", "postal_code": "", "city": ""})
    assert bad.status == 400 and "Enter an email address" in await bad.text()
    saved = await client.post(f"{base}/personal", data={
        "csrf_token": csrf_of(personal), "version": version, "email": email,
        "mobile": "+45 30 40 50 60", "address_line": "Testvej 1", "postal_code": "2100",
        "city": "København Ø"}, allow_redirects=False)
    assert saved.status == 303 and saved.headers["Location"] == f"{base}/insurance"
    patient = await gateway.read("Patient", patient_id, fresh=True)
    assert patient["address"][0]["line"] == ["Testvej 1"]
    insurance = await (await client.get(f"{base}/insurance")).text()
    invalid = await client.post(f"{base}/insurance", data={
        "csrf_token": csrf_of(insurance), "coverage": "new", "payor_name": "",
        "member_id": "", "relationship": "self", "start": "2026-01-01", "end": "2025-01-01"})
    text = await invalid.text()
    assert invalid.status == 400 and "Choose your insurer" in text and "member number" in text
    member = f"M{uuid.uuid4().hex[:8]}"
    added = await client.post(f"{base}/insurance", data={
        "csrf_token": csrf_of(insurance), "coverage": "new", "payor_name": "Sygeforsikring danmark",
        "member_id": member, "plan": "Gruppe 1", "relationship": "self",
        "start": "2026-01-01", "end": ""}, allow_redirects=False)
    assert added.status == 303
    join_url = added.headers["Location"]
    coverage_id = join_url.split("coverage=")[1]
    coverage = await gateway.read("Coverage", coverage_id, fresh=True)
    assert coverage["beneficiary"]["reference"] == f"Patient/{patient_id}"
    assert coverage["identifier"][0]["type"]["coding"][0]["code"] == "MB"
    assert coverage["payor"][0]["display"] == "Sygeforsikring danmark"
    join = await (await client.get(join_url)).text()
    assert "Check in" in join
    refused = await client.post(f"{base}/join", data={"csrf_token": csrf_of(join),
                                                      "coverage": coverage_id})
    assert refused.status == 400
    forms = [client.post(f"{base}/join", data={"csrf_token": csrf_of(join),
                                               "coverage": coverage_id, "accept": "yes"},
                         allow_redirects=False) for _ in range(2)]
    results = await asyncio.gather(*forms)
    assert any(r.status == 303 for r in results)
    appointment = await gateway.read("Appointment", appointment_id, fresh=True)
    assert appointment["status"] == "arrived"
    assert {"reference": f"Coverage/{coverage_id}"} in appointment["supportingInformation"]
    encounters = await gateway.search("Encounter", {
        "identifier": f"{checkin.ENCOUNTER_SYSTEM}|{appointment_id}"}, fresh=True)
    assert len(encounters.resources) == 1
    encounter = encounters.resources[0]
    assert encounter["status"] == "arrived"
    assert encounter["appointment"] == [{"reference": f"Appointment/{appointment_id}"}]
    assert encounter["subject"]["reference"] == f"Patient/{patient_id}"
    # the used link says so, and creates nothing twice
    used = await client.get(base)
    assert used.status == 409 and "already checked in" in await used.text()
    # forged and expired links get a clear page
    forged = await client.get(f"{base[:-3]}AAA")
    assert forged.status == 400 and "not valid" in await forged.text()
    old = checkin.make_token(secret, appointment_id, datetime(2020, 1, 1, tzinfo=TZ))
    expired = await client.get(f"/checkin/{old}")
    assert expired.status == 410 and "expired" in await expired.text()


async def test_checkin_link_of_another_patient_is_not_found(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    server = await aiohttp_server(app)
    owner, _, email = await _patient_client(aiohttp_client, server, gateway)
    slot = await private_slot(gateway)
    appointment_id = await _book(owner, gateway, slot, email)
    other, _, _ = await _patient_client(aiohttp_client, server, gateway)
    token = checkin.make_token(app[keys.SETTINGS].secret_key, appointment_id, None)
    response = await other.get(f"/checkin/{token}")
    assert response.status == 404
    anonymous = await aiohttp_client(server)
    redirect = await anonymous.get(f"/checkin/{token}", allow_redirects=False)
    assert redirect.status == 303 and redirect.headers["Location"].startswith("/login?next=")


async def test_instant_queue_join_take_and_leave(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    server = await aiohttp_server(app)
    client, patient_id, _ = await _patient_client(aiohttp_client, server, gateway)
    page = await (await client.get("/appointments/new", params={
        "step": "confirm", "kind": "instant-virtual", "specialty": "419772000"})).text()
    assert "Join the queue" in page
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page).group(1)
    joined = await client.post("/appointments/queue/join", data={
        "csrf_token": csrf_of(page), "kind": "instant-virtual", "specialty": "419772000",
        "key": key}, allow_redirects=False)
    assert joined.status == 303
    appointment_id = joined.headers["Location"].split("/")[2]
    room = await (await client.get(f"/appointments/{appointment_id}/queue")).text()
    assert "in the queue" in room and "Estimated wait" in room
    state = await (await client.get(f"/appointments/{appointment_id}/queue.json")).json()
    assert state["status"] == "waiting" and state["position"] >= 1
    assert state["estimated_minutes"] >= 1 and str(state["estimated_minutes"]) in state["estimate_text"]
    resource = await gateway.read("Appointment", appointment_id, fresh=True)
    assert resource["status"] == "waitlist" and "slot" not in resource
    # a clinician takes this patient
    store = server.app[keys.ACCOUNTS]
    staff_email = await make_staff_account(store, Role.CLINICIAN, "prac-mette-hansen")
    staff = await aiohttp_client(server)
    await sign_in(staff, staff_email)
    console = await staff.get("/staff/queue")
    assert console.status == 200
    taken = await staff.post("/staff/queue/take", data={
        "csrf_token": csrf_of(await console.text()), "appointment": appointment_id})
    text = await taken.text()
    assert taken.status == 200 and "Start the video visit" in text
    state = await (await client.get(f"/appointments/{appointment_id}/queue.json")).json()
    assert state["status"] == "ready" and state["practitioner"] == "Mette Hansen"
    assert appointment_id in state["visit_url"]
    # patients cannot open the clinician's queue, nor someone else's waiting room
    assert (await client.get("/staff/queue")).status == 403
    stranger, _, _ = await _patient_client(aiohttp_client, server, gateway)
    peek = await stranger.get(f"/appointments/{appointment_id}/queue.json",
                              headers={"Accept": "application/json"})
    assert peek.status == 404 and "visit_url" not in await peek.text()

    # a second patient joins and leaves again: that cancels the appointment
    other, _, _ = await _patient_client(aiohttp_client, server, gateway)
    page = await (await other.get("/appointments/new", params={
        "step": "confirm", "kind": "instant-virtual", "specialty": "419772000"})).text()
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page).group(1)
    joined = await other.post("/appointments/queue/join", data={
        "csrf_token": csrf_of(page), "kind": "instant-virtual", "specialty": "419772000",
        "key": key}, allow_redirects=False)
    second = joined.headers["Location"].split("/")[2]
    room = await (await other.get(f"/appointments/{second}/queue")).text()
    left = await other.post(f"/appointments/{second}/queue/leave",
                            data={"csrf_token": csrf_of(room)}, allow_redirects=False)
    assert left.status == 303
    assert (await gateway.read("Appointment", second, fresh=True))["status"] == "cancelled"


async def test_virtual_checkin_waits_in_the_video_room(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    server = await aiohttp_server(app)
    client, _, email = await _patient_client(aiohttp_client, server, gateway)
    slot = await private_slot(gateway, "sched-jens-rasmussen", days_ahead=1)
    start = datetime.fromisoformat(slot["start"]).astimezone(TZ)
    values = {"kind": "virtual", "specialty": "394579002", "date": start.date().isoformat(),
              "slot": slot["id"]}
    page = await (await client.get("/appointments/new", params={**values,
                                                                 "step": "contact"})).text()
    token = csrf_of(page)
    confirm = await (await client.post("/appointments/new/confirm", data={
        "csrf_token": token, **values, "email": email, "mobile": ""})).text()
    assert "Online (video)" in confirm
    key = re.search(r'name="key" value="([0-9a-f]{32})"', confirm).group(1)
    booked = await client.post("/appointments/new/book", data={
        "csrf_token": token, **values, "email": email, "mobile": "", "key": key},
        allow_redirects=False)
    appointment_id = booked.headers["Location"].split("/")[2].split("?")[0]
    resource = await gateway.read("Appointment", appointment_id, fresh=True)
    assert not any(p["actor"]["reference"].startswith("Location/")
                   for p in resource["participant"])
    link = checkin.make_token(app[keys.SETTINGS].secret_key, appointment_id, None)
    join = await (await client.get(f"/checkin/{link}/join")).text()
    assert "Wait in queue" in join
    done = await client.post(f"/checkin/{link}/join", data={
        "csrf_token": csrf_of(join), "accept": "yes"}, allow_redirects=False)
    assert done.headers["Location"] == f"/appointments/{appointment_id}/queue"
    room = await (await client.get(done.headers["Location"])).text()
    assert "You are checked in" in room and appointment_id in room
    state = await (await client.get(f"/appointments/{appointment_id}/queue.json")).json()
    assert state["status"] == "checked-in" and appointment_id in state["visit_url"]
    encounters = await gateway.search("Encounter", {
        "identifier": f"{checkin.ENCOUNTER_SYSTEM}|{appointment_id}"}, fresh=True)
    assert encounters.resources[0]["class"]["code"] == "VR"


async def test_wizard_and_lists_speak_danish(aiohttp_client, aiohttp_server, app, gateway) -> None:
    server = await aiohttp_server(app)
    client, _, _ = await _patient_client(aiohttp_client, server, gateway)
    client.session.cookie_jar.update_cookies({"portal_lang": "da"})
    slot = await private_slot(gateway, days_ahead=7)
    values = _wizard_values(slot)
    page = await (await client.get("/appointments/new", params={
        **{k: values[k] for k in ("kind", "specialty", "postal", "location", "date")},
        "step": "when"})).text()
    assert "Vælg dato og tid" in page and "Ledige tider" in page
    weekday = datetime.fromisoformat(slot["start"]).astimezone(TZ).strftime("%w")
    danish_days = ["søndag", "mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag"]
    assert danish_days[int(weekday)] in page
    listing = await (await client.get("/appointments")).text()
    assert "Kommende" in listing and "Book ny aftale" in listing


async def test_two_clinicians_never_take_the_same_patient(
    aiohttp_client, aiohttp_server, app, gateway
) -> None:
    from fhir_portal.resources import queue as queue_resource

    server = await aiohttp_server(app)
    client, _, _ = await _patient_client(aiohttp_client, server, gateway)
    page = await (await client.get("/appointments/new", params={
        "step": "confirm", "kind": "instant-virtual", "specialty": "394579002"})).text()
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page).group(1)
    joined = await client.post("/appointments/queue/join", data={
        "csrf_token": csrf_of(page), "kind": "instant-virtual", "specialty": "394579002",
        "key": key}, allow_redirects=False)
    appointment_id = joined.headers["Location"].split("/")[2]
    results = await asyncio.gather(*(
        queue_resource.take(gateway, practitioner, name, appointment_id)
        for practitioner, name in (("prac-henrik-christensen", "Henrik Christensen"),
                                   ("prac-camilla-moller", "Camilla Møller"))))
    assert sum(r is not None for r in results) == 1
    resource = await gateway.read("Appointment", appointment_id, fresh=True)
    practitioners = [p for p in resource["participant"]
                     if p["actor"]["reference"].startswith("Practitioner/")]
    assert resource["status"] == "arrived" and len(practitioners) == 1
    # the loser's console says so instead of "nobody is waiting"
    store = server.app[keys.ACCOUNTS]
    staff_email = await make_staff_account(store, Role.CLINICIAN, "prac-camilla-moller")
    staff = await aiohttp_client(server)
    await sign_in(staff, staff_email)
    console = await (await staff.get("/staff/queue")).text()
    late = await staff.post("/staff/queue/take", data={"csrf_token": csrf_of(console),
                                                       "appointment": appointment_id})
    assert late.status == 409 and "no longer waiting" in await late.text()


async def test_the_queue_speed_is_measured_from_visits_taken_while_people_waited(gateway) -> None:
    """Instant visits on a day of their own in the past: four patients who joined at 9:00
    were taken every 7 minutes; one more came at 11:00 and was taken at once."""
    import random
    from datetime import UTC, datetime, timedelta

    from fhir_portal.fhir import PatientScope
    from fhir_portal.resources import queue

    day = datetime(2001, 1, 1, 9, 0, tzinfo=UTC) + timedelta(days=random.randrange(7000))
    patient_id = (await gateway.create({"resourceType": "Patient", "name": [{"family": "Q"}]}))["id"]
    kind = {"coding": [{"system": queue.KIND_SYSTEM, "code": queue.INSTANT}]}
    for joined, taken in ((0, 0), (0, 7), (0, 14), (0, 21), (120, 120)):
        start = day + timedelta(minutes=taken)
        await gateway.create({
            "resourceType": "Appointment", "status": "fulfilled", "appointmentType": kind,
            "created": (day + timedelta(minutes=joined)).isoformat(),
            "start": start.isoformat(), "end": (start + timedelta(minutes=5)).isoformat(),
            "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
        })
    scope = PatientScope(gateway, patient_id)
    assert await queue.minutes_per_patient(scope, now=day + timedelta(hours=2, minutes=30)) == 7
    # the same day seen from long after: nothing in the window, so no measurement
    assert await queue.minutes_per_patient(scope, now=day + timedelta(days=2)) is None
