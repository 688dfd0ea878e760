"""Booking against the real FHIR server: one winner per slot, nothing half done."""

from __future__ import annotations

import asyncio

import pytest

from fhir_portal.fhir import FhirGateway, PatientScope
from fhir_portal.resources import appointments, booking
from fhir_portal.resources.appointments import BOOKING_SYSTEM
from tests.integration.booking_support import TZ, new_patient, private_slot


def _values(slot: dict, **extra: str) -> dict[str, str]:
    from datetime import datetime

    start = datetime.fromisoformat(slot["start"]).astimezone(TZ)
    return {"kind": "clinic", "specialty": "419772000", "postal": "2100",
            "location": "loc-copenhagen", "date": start.date().isoformat(),
            "slot": slot["id"], **extra}


async def test_twenty_patients_confirm_one_slot_exactly_one_books(gateway: FhirGateway) -> None:
    slot = await private_slot(gateway)
    patients = await asyncio.gather(*(new_patient(gateway) for _ in range(20)))
    scopes = [PatientScope(gateway, pid) for pid in patients]

    async def confirm(scope: PatientScope) -> str:
        try:
            result = await booking.book(scope, _values(slot), key=booking.new_key(), tz=TZ)
        except booking.SlotTaken as taken:
            assert all(o.id != slot["id"] for o in taken.alternatives)
            return "taken"
        return result.appointment_id

    outcomes = await asyncio.gather(*(confirm(s) for s in scopes))
    winners = [o for o in outcomes if o != "taken"]
    assert len(winners) == 1
    assert outcomes.count("taken") == 19
    on_slot = await gateway.search("Appointment", {"slot": f"Slot/{slot['id']}"}, fresh=True)
    assert [a["id"] for a in on_slot.resources] == winners
    booked = on_slot.resources[0]
    assert booked["status"] == "booked"
    assert booked["meta"]["profile"] == [appointments.PROFILE]
    actors = {p["actor"]["reference"] for p in booked["participant"]}
    assert actors >= {"Practitioner/prac-mette-hansen", "Location/loc-copenhagen"}
    current = await gateway.read("Slot", slot["id"], fresh=True)
    assert current["status"] == "busy"


async def test_confirm_twice_with_one_key_books_once(gateway: FhirGateway) -> None:
    slot = await private_slot(gateway)
    scope = PatientScope(gateway, await new_patient(gateway))
    key = booking.new_key()
    first, second = await asyncio.gather(
        booking.book(scope, _values(slot), key=key, tz=TZ),
        booking.book(scope, _values(slot), key=key, tz=TZ),
        return_exceptions=True,
    )
    ids = {r.appointment_id for r in (first, second) if isinstance(r, booking.Booked)}
    assert len(ids) == 1, (first, second)
    found = await gateway.search("Appointment", {"identifier": f"{BOOKING_SYSTEM}|{key}"},
                                 fresh=True)
    assert len(found.resources) == 1


async def test_cancel_frees_the_slot_and_a_cancelled_one_cannot_be_cancelled(
    gateway: FhirGateway,
) -> None:
    slot = await private_slot(gateway)
    scope = PatientScope(gateway, await new_patient(gateway))
    result = await booking.book(scope, _values(slot), key=booking.new_key(), tz=TZ)
    item = await appointments.cancel(scope, result.appointment_id)
    assert item.status == "cancelled"
    ehr_view = await gateway.read("Appointment", result.appointment_id, fresh=True)
    assert ehr_view["status"] == "cancelled"
    assert (await gateway.read("Slot", slot["id"], fresh=True))["status"] == "free"
    with pytest.raises(appointments.NotCancellable):
        await appointments.cancel(scope, result.appointment_id)
    # the freed slot can be booked again by someone else
    other = PatientScope(gateway, await new_patient(gateway))
    again = await booking.book(other, _values(slot), key=booking.new_key(), tz=TZ)
    assert again.appointment_id != result.appointment_id


async def test_someone_elses_appointment_cannot_be_cancelled(gateway: FhirGateway) -> None:
    from fhir_portal.fhir import FhirNotFound

    slot = await private_slot(gateway)
    owner = PatientScope(gateway, await new_patient(gateway))
    result = await booking.book(owner, _values(slot), key=booking.new_key(), tz=TZ)
    intruder = PatientScope(gateway, await new_patient(gateway))
    with pytest.raises(FhirNotFound):
        await appointments.cancel(intruder, result.appointment_id)
    assert (await gateway.read("Slot", slot["id"], fresh=True))["status"] == "busy"


async def test_a_past_appointment_cannot_be_cancelled(gateway: FhirGateway) -> None:
    patient_id = await new_patient(gateway)
    past = await gateway.create({
        "resourceType": "Appointment", "status": "booked",
        "start": "2024-01-10T09:00:00+01:00", "end": "2024-01-10T09:30:00+01:00",
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    })
    scope = PatientScope(gateway, patient_id)
    with pytest.raises(appointments.NotCancellable):
        await appointments.cancel(scope, past["id"])
    lists = await appointments.all_appointments(scope)
    assert [i.id for i in lists.past] == [past["id"]] and lists.upcoming == []


async def test_upcoming_lists_the_booked_appointment(gateway: FhirGateway) -> None:
    slot = await private_slot(gateway, days_ahead=3)
    scope = PatientScope(gateway, await new_patient(gateway))
    result = await booking.book(scope, _values(slot), key=booking.new_key(), tz=TZ)
    items = await appointments.upcoming(scope, limit=3)
    assert [i.id for i in items] == [result.appointment_id]
    item = items[0]
    assert item.kind_label == "Clinic appointment" and item.status == "booked"
    assert item.practitioner == "Mette Hansen" and item.specialty == "Family medicine"
    assert item.location == "Contoso Clinic Copenhagen"
    assert item.start is not None and item.start.tzinfo is not None
