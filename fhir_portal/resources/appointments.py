"""The patient's appointments: lists, one appointment, cancelling.

Appointments are read in the patient's compartment (``Appointment?actor=Patient/x``) with
their practitioner and location included; whatever an EHR booked shows up as well, with
display texts taken from the references or, where missing, from the included resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from fhir_portal.fhir import FhirConflict, FhirNotFound, PatientScope, SearchPage
from fhir_portal.fhir.gateway import Resource
from fhir_portal.fhir.model import aware, codeable_text, human_name, parse_datetime, reference_id
from fhir_portal.i18n import N_

KIND_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/appointment-kind"
PROFILE = "http://fhir-portal.example.org/fhir/StructureDefinition/portal-appointment"
BOOKING_SYSTEM = "http://fhir-portal.example.org/fhir/appointment-booking"
INSTANT, VIRTUAL, CLINIC = "instant-virtual", "virtual", "clinic"
KINDS: dict[str, str] = {
    INSTANT: N_("Instant virtual visit"),
    VIRTUAL: N_("Virtual appointment"),
    CLINIC: N_("Clinic appointment"),
}
STATUS_LABELS: dict[str, str] = {
    "proposed": N_("Proposed"),
    "pending": N_("Pending"),
    "booked": N_("Booked"),
    "arrived": N_("Checked in"),
    "checked-in": N_("Checked in"),
    "fulfilled": N_("Completed"),
    "cancelled": N_("Cancelled"),
    "noshow": N_("Not attended"),
    "entered-in-error": N_("Entered in error"),
    "waitlist": N_("Waiting in queue"),
}
# Statuses of an appointment that still lies ahead of the patient.
ACTIVE = ("proposed", "pending", "booked", "arrived", "checked-in", "waitlist")
CANCELLABLE = ("proposed", "pending", "booked", "waitlist")


class NotCancellable(Exception):
    """The appointment is past, already cancelled, or otherwise beyond cancelling."""

    def __init__(self, appointment_id: str, item: AppointmentItem | None = None) -> None:
        super().__init__(appointment_id)
        self.item = item


@dataclass
class AppointmentItem:
    id: str
    kind: str | None
    kind_label: str
    start: datetime | None
    end: datetime | None
    status: str
    status_label: str
    practitioner: str
    specialty: str
    location: str | None
    location_address: str | None = None
    description: str = ""
    slot_ids: list[str] = field(default_factory=list)
    created: datetime | None = None

    @property
    def is_past(self) -> bool:
        now = datetime.now(UTC)
        if self.status in ("fulfilled", "cancelled", "noshow", "entered-in-error"):
            return True
        moment = self.end or self.start
        return moment is not None and moment < now

    @property
    def can_cancel(self) -> bool:
        if self.status not in CANCELLABLE:
            return False
        return self.start is None or self.start > datetime.now(UTC)

    @property
    def can_check_in(self) -> bool:
        return self.status == "booked" and self.kind != INSTANT and not self.is_past

    @property
    def is_virtual(self) -> bool:
        return self.kind in (VIRTUAL, INSTANT)


def kind_of(appointment: Resource) -> str | None:
    for coding in (appointment.get("appointmentType") or {}).get("coding", []):
        if coding.get("system") == KIND_SYSTEM and coding.get("code") in KINDS:
            return str(coding["code"])
    return None


def _address(location: Resource | None) -> str | None:
    if not location:
        return None
    address = location.get("address") or {}
    if address.get("text"):
        return str(address["text"])
    parts = [*address.get("line", []),
             " ".join(p for p in (address.get("postalCode"), address.get("city")) if p)]
    text = ", ".join(p for p in parts if p)
    return text or None


def to_item(appointment: Resource, page: SearchPage | None = None) -> AppointmentItem:
    """The view model of one Appointment (``page`` resolves included actors)."""
    practitioner = location = ""
    address = None
    for participant in appointment.get("participant", []):
        actor = participant.get("actor") or {}
        ref = str(actor.get("reference") or "")
        included = page.resolve(ref) if page and ref else None
        if ref.startswith("Practitioner/") and not practitioner:
            practitioner = str(actor.get("display") or "") or human_name(
                (included or {}).get("name"), ""
            )
        elif ref.startswith("Location/") and not location:
            location = str(actor.get("display") or (included or {}).get("name") or "")
            address = _address(included)
    kind = kind_of(appointment)
    status = str(appointment.get("status") or "")
    specialties = [codeable_text(c) for c in appointment.get("specialty", [])]
    return AppointmentItem(
        id=str(appointment.get("id")),
        kind=kind,
        kind_label=KINDS.get(kind or "") or codeable_text(
            appointment.get("appointmentType"), N_("Appointment")
        ),
        start=parse_datetime(appointment.get("start")),
        end=parse_datetime(appointment.get("end")),
        status=status,
        status_label=STATUS_LABELS.get(status, status),
        practitioner=practitioner,
        specialty=next((s for s in specialties if s), ""),
        location=location or None,
        location_address=address,
        description=str(appointment.get("description") or ""),
        slot_ids=[
            sid for sid in (reference_id(s, "Slot") for s in appointment.get("slot", [])) if sid
        ],
        created=parse_datetime(appointment.get("created")),
    )


def _sort_key(item: AppointmentItem) -> datetime:
    return aware(item.start) or aware(item.created) or datetime.max.replace(tzinfo=UTC)


async def upcoming(scope: PatientScope, *, limit: int = 3) -> list[AppointmentItem]:
    """The next appointments ahead of the patient, soonest first (the home page)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    page = await scope.search(
        "Appointment",
        {
            "date": f"ge{now}",
            "status": ",".join(s for s in ACTIVE if s != "waitlist"),
            "_sort": "date",
            "_count": str(max(limit, 1)),
            "_include": "Appointment:actor",
        },
        single_page=True,  # the first few only: fresh, and not stored by the server
    )
    items = [to_item(a, page) for a in page.resources]
    items.sort(key=_sort_key)
    return items[:limit]


@dataclass
class AppointmentLists:
    upcoming: list[AppointmentItem]
    past: list[AppointmentItem]


async def all_appointments(scope: PatientScope) -> AppointmentLists:
    """Every appointment of the patient, split into upcoming and past (or cancelled)."""
    page = await scope.search(
        "Appointment",
        {"_count": "100", "_include": "Appointment:actor", "_sort": "-date"},
        fresh=True,
        all_pages=True,
    )
    items = [to_item(a, page) for a in page.resources]
    ahead = sorted((i for i in items if i.status in ACTIVE and not i.is_past), key=_sort_key)
    behind = sorted(
        (i for i in items if not (i.status in ACTIVE and not i.is_past)),
        key=_sort_key,
        reverse=True,
    )
    return AppointmentLists(upcoming=ahead, past=behind)


async def detail(scope: PatientScope, appointment_id: str) -> AppointmentItem:
    """One of the patient's appointments (not found when it is not theirs): one search that
    includes its practitioner and location."""
    page = await scope.search(
        "Appointment", {"_id": appointment_id, "_include": "Appointment:actor"}, fresh=True
    )
    appointment = next((a for a in page.resources if str(a.get("id")) == appointment_id), None)
    if appointment is None:
        raise FhirNotFound("Appointment: not found")
    return to_item(appointment, page)


def _cancelled(item: AppointmentItem) -> AppointmentItem:
    return replace(item, status="cancelled", status_label=STATUS_LABELS["cancelled"])


async def cancel(scope: PatientScope, appointment_id: str) -> AppointmentItem:
    """Cancel one of the patient's appointments and free its slot (one transaction).

    Raises ``NotCancellable`` (carrying the current ``item``) when it is beyond cancelling."""
    item = await detail(scope, appointment_id)
    if not item.can_cancel:
        raise NotCancellable(appointment_id, item)
    try:
        await scope.cancel(appointment_id)
    except FhirConflict:
        # changed meanwhile (e.g. cancelled in another tab): decide on the fresh state
        item = await detail(scope, appointment_id)
        if item.status == "cancelled":
            return item
        if not item.can_cancel:
            raise NotCancellable(appointment_id, item) from None
        await scope.cancel(appointment_id)
    return _cancelled(item)
