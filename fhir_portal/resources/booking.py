"""Booking a new appointment: validating the wizard's choices and the race-safe booking.

The wizard keeps its state in the page (query parameters and hidden fields), so nothing
the browser sends is trusted: every step re-validates the choices so far against the
directory, and ``book`` re-checks everything once more on the server before writing.

Booking is ONE FHIR transaction (``PatientScope.book``): PUT the Slot with status busy and
``If-Match`` on the version just read, plus a conditional POST of the Appointment
(``ifNoneExist`` on its booking identifier). Either both happen or neither does; of many
patients confirming one slot at once exactly one wins, the others get ``SlotTaken`` with
the next free times.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhir_portal.fhir import FhirConflict, PatientScope
from fhir_portal.fhir.gateway import Resource, version_of
from fhir_portal.fhir.model import day_bounds, telecom
from fhir_portal.fhir.scope import DirectoryReader
from fhir_portal.i18n import N_
from fhir_portal.resources import directory, notifications
from fhir_portal.resources.appointments import (
    BOOKING_SYSTEM,
    CLINIC,
    INSTANT,
    KIND_SYSTEM,
    KINDS,
    PROFILE,
)
from fhir_portal.resources.directory import SNOMED, Place, SlotOption, Specialty

STEPS: dict[str, tuple[str, ...]] = {
    INSTANT: ("kind", "specialty", "confirm"),
    "virtual": ("kind", "specialty", "when", "contact", "confirm"),
    CLINIC: ("kind", "specialty", "place", "when", "contact", "confirm"),
}


class ChoiceError(Exception):
    """A wizard value is missing or no longer valid; ``step`` is where to fix it."""

    def __init__(self, step: str, field_name: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.field = field_name
        self.message = message


class SlotTaken(Exception):
    """Someone else booked the slot first (or it is no longer free)."""

    def __init__(self, alternatives: list[SlotOption]) -> None:
        super().__init__("slot taken")
        self.alternatives = alternatives


@dataclass
class Choice:
    """The wizard's choices as far as they go, each checked against the directory."""

    kind: str | None = None
    specialty: Specialty | None = None
    postal_code: str | None = None
    place: Place | None = None
    day: date | None = None
    slot: SlotOption | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def steps(self) -> tuple[str, ...]:
        return STEPS.get(self.kind or "", ("kind",))


@dataclass
class Contact:
    email: str
    mobile: str


@dataclass
class Booked:
    appointment_id: str
    start: datetime | None
    practitioner: str
    location: str | None
    already: bool = False


async def validate(
    directory_reader: DirectoryReader, values: dict[str, str], upto: str, *, tz: Any
) -> Choice:
    """Validate the wizard values needed before step ``upto`` (raises ``ChoiceError``)."""
    choice = Choice()
    kind = values.get("kind", "")
    if kind not in KINDS:
        raise ChoiceError("kind", "kind", N_("Choose the kind of appointment."))
    choice.kind = kind
    order = choice.steps()
    if upto not in order:
        upto = order[-1]
    needed = order[: order.index(upto)]
    schedules = await directory.schedules_for(directory_reader, kind) if (
        "specialty" in needed) else []
    if "specialty" in needed:
        offered = await directory.specialties(directory_reader, kind, schedules=schedules)
        chosen = next((s for s in offered if s.code == values.get("specialty")), None)
        if chosen is None:
            raise ChoiceError("specialty", "specialty", N_("Choose a specialty."))
        choice.specialty = chosen
    if "place" in needed:
        assert choice.specialty is not None
        postal = directory.normalise_postal_code(values.get("postal", ""))
        if postal is None:
            raise ChoiceError("place", "postal", N_("Enter a postal code of four digits."))
        choice.postal_code = postal
        location_id = values.get("location", "")
        places = await directory.places_near(
            directory_reader, postal, kind=kind, specialty=choice.specialty.code, limit=50,
            schedules=schedules,
        )
        chosen_place = next((p for p in places if p.id == location_id), None)
        if chosen_place is None:
            raise ChoiceError("place", "location", N_("Choose a clinic."))
        choice.place = chosen_place
    if "when" in needed:
        assert choice.specialty is not None
        try:
            day = date.fromisoformat(values.get("date", ""))
        except ValueError:
            raise ChoiceError("when", "date", N_("Choose a date.")) from None
        today = datetime.now(tz).date()
        if day < today or day > today + timedelta(days=365):
            raise ChoiceError("when", "date", N_("Choose a date from today on."))
        choice.day = day
        slot = await check_slot(directory_reader, choice, values.get("slot", ""), tz=tz)
        if slot is None:
            raise ChoiceError("when", "slot", N_("Choose one of the free times."))
        choice.slot = slot
    return choice


async def slots_for_day(directory_reader: DirectoryReader, choice: Choice, day: date, *,
                        tz: Any) -> list[SlotOption]:
    assert choice.kind and choice.specialty
    start, end = day_bounds(day, tz)
    start = max(start, datetime.now(UTC))
    if end <= start:
        return []
    return await directory.free_slots(
        directory_reader, kind=choice.kind, specialty=choice.specialty.code, start=start,
        end=end, location_id=choice.place.id if choice.place else None,
    )


async def check_slot(
    directory_reader: DirectoryReader, choice: Choice, slot_id: str, *, tz: Any
) -> SlotOption | None:
    """The slot if it is (still) free and fits every choice made; otherwise None.

    One search reads the slot with its schedule (not the whole day's free slots)."""
    if not slot_id or not choice.kind or not choice.specialty:
        return None
    found = await directory.bookable_slot(
        directory_reader, slot_id, kind=choice.kind,
        location_id=choice.place.id if choice.place else None,
    )
    if found is None:
        return None
    slot, option = found
    start = option.start
    if slot.get("status") != "free" or start <= datetime.now(UTC):
        return None
    if choice.day is not None and start.astimezone(tz).date() != choice.day:
        return None
    if choice.specialty.code not in directory.specialty_codes(slot.get("specialty")):
        return None
    kinds = {
        c.get("code") for concept in slot.get("serviceType", [])
        for c in concept.get("coding", []) if c.get("system") == KIND_SYSTEM
    }
    if choice.kind not in kinds:
        return None
    return option


async def next_free(directory_reader: DirectoryReader, choice: Choice, *, tz: Any,
                    limit: int = 5) -> list[SlotOption]:
    """The next free times for the same kind, specialty (and clinic) from the chosen day."""
    assert choice.kind and choice.specialty
    first = datetime.now(UTC)
    if choice.day is not None:
        first = max(first, day_bounds(choice.day, tz)[0])
    options = await directory.free_slots(
        directory_reader, kind=choice.kind, specialty=choice.specialty.code, start=first,
        end=first + timedelta(days=21),
        location_id=choice.place.id if choice.place else None, limit=60,
    )
    taken = choice.slot.id if choice.slot else None
    return [o for o in options if o.id != taken][:limit]


async def contact_of(scope: PatientScope) -> Contact:
    patient = await scope.patient(fresh=True)
    points = patient.get("telecom")
    mobile = next(
        (str(p["value"]) for p in points or []
         if p.get("system") in ("phone", "sms") and p.get("use") == "mobile" and p.get("value")),
        None,
    )
    return Contact(email=telecom(points, "email") or "", mobile=mobile or "")


async def save_contact(scope: PatientScope, contact: Contact) -> None:
    """Update the Patient's email and mobile number where they changed (versioned)."""
    patient = await scope.patient(fresh=True)
    points: list[Resource] = list(patient.get("telecom") or [])
    changed = False

    def put(system: str, value: str, use: str | None) -> None:
        nonlocal changed
        for point in points:
            if point.get("system") == system and (use is None or point.get("use") == use):
                if point.get("value") != value:
                    point["value"] = value
                    changed = True
                return
        if value:
            points.append({"system": system, "value": value, **({"use": use} if use else {})})
            changed = True

    put("email", contact.email, None)
    if contact.mobile:
        put("phone", contact.mobile, "mobile")
    if changed:
        updated = {**patient, "telecom": [p for p in points if p.get("value")]}
        updated.pop("meta", None)
        await scope.update(updated, if_match=version_of(patient))


def _coding(system: str, code: str, display: str) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def appointment_resource(scope: PatientScope, choice: Choice, key: str) -> Resource:
    """The Appointment a confirmed choice becomes (portal-appointment profile)."""
    assert choice.kind and choice.specialty
    kind = _coding(KIND_SYSTEM, choice.kind, KINDS[choice.kind])
    participants: list[Resource] = [
        {"actor": {"reference": scope.patient_ref}, "required": "required",
         "status": "accepted"},
    ]
    resource: Resource = {
        "resourceType": "Appointment",
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": BOOKING_SYSTEM, "value": key}],
        "appointmentType": kind,
        "serviceType": [kind],
        "specialty": [{"coding": [{"system": SNOMED, "code": choice.specialty.code}],
                       "text": choice.specialty.label}],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "participant": participants,
    }
    slot = choice.slot
    if slot is not None:
        resource["status"] = "booked"
        resource["slot"] = [{"reference": f"Slot/{slot.id}"}]
        resource["start"] = slot.start.isoformat(timespec="seconds")
        if slot.end is not None:
            resource["end"] = slot.end.isoformat(timespec="seconds")
            resource["minutesDuration"] = int((slot.end - slot.start).total_seconds() // 60)
        if slot.practitioner_id:
            participants.append({
                "actor": {"reference": f"Practitioner/{slot.practitioner_id}",
                          "display": slot.practitioner},
                "required": "required", "status": "accepted",
            })
        if slot.location_id:
            participants.append({
                "actor": {"reference": f"Location/{slot.location_id}",
                          "display": slot.location or ""},
                "required": "required", "status": "accepted",
            })
    return resource


def new_key() -> str:
    """A fresh booking key: the Appointment's business identifier (idempotency)."""
    return uuid.uuid4().hex


def valid_key(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


async def existing(scope: PatientScope, key: str) -> str | None:
    """The patient's appointment booked with this key already (a repeated Confirm)."""
    page = await scope.search("Appointment", {"identifier": f"{BOOKING_SYSTEM}|{key}"},
                              fresh=True)
    return str(page.resources[0]["id"]) if page.resources else None


async def book(
    scope: PatientScope, values: dict[str, str], *, key: str, tz: Any
) -> Booked:
    """Re-validate everything and book the slot; raises ``ChoiceError`` or ``SlotTaken``."""
    if not valid_key(key):
        raise ChoiceError("confirm", "key", N_("The booking form expired. Please start again."))
    # a repeated Confirm, and everything up to the time (both at once); then the time
    # itself: a slot that is no longer free (or never was) gets the same answer as losing
    # the race, with the next free times
    done, checked = await asyncio.gather(
        existing(scope, key), validate(scope.directory, values, "when", tz=tz),
        return_exceptions=True,
    )
    if isinstance(done, BaseException):
        raise done
    if done is not None:
        return Booked(done, None, "", None, already=True)
    if isinstance(checked, BaseException):
        raise checked
    choice = checked
    if choice.kind == INSTANT:
        raise ChoiceError("kind", "kind", N_("An instant visit has no time to book."))
    try:
        choice.day = date.fromisoformat(values.get("date", ""))
    except ValueError:
        raise ChoiceError("when", "date", N_("Choose a date.")) from None
    choice.slot = await check_slot(scope.directory, choice, values.get("slot", ""), tz=tz)
    if choice.slot is None:
        raise SlotTaken(await next_free(scope.directory, choice, tz=tz))
    appointment = appointment_resource(scope, choice, key)
    try:
        appointment_id = await scope.book(
            choice.slot.id, appointment,
            if_none_exist=f"identifier={BOOKING_SYSTEM}|{key}",
        )
    except FhirConflict:
        done = await existing(scope, key)  # our own earlier attempt may have won
        if done is not None:
            return Booked(done, choice.slot.start, choice.slot.practitioner,
                          choice.slot.location, already=True)
        raise SlotTaken(await next_free(scope.directory, choice, tz=tz)) from None
    return Booked(appointment_id, choice.slot.start, choice.slot.practitioner,
                  choice.slot.location)


async def notify(
    sender: notifications.Sender,
    *,
    patient_id: str,
    key: str,
    contact: Contact,
    subject: str,
    email_text: str,
    sms_text: str,
) -> list[str]:
    """Queue the email (and SMS where a mobile number is known) for one event."""
    ids: list[str] = []
    if contact.email:
        ids.append(await sender.enqueue(
            patient_id=patient_id, medium="email", to=contact.email, subject=subject,
            body=email_text, dedupe_key=f"{key}-email",
        ))
    if contact.mobile and sender.sms_enabled:
        ids.append(await sender.enqueue(
            patient_id=patient_id, medium="sms", to=contact.mobile, subject=subject,
            body=sms_text, dedupe_key=f"{key}-sms",
        ))
    return ids
