"""The instant virtual visit queue.

Model (documented choice): joining the queue creates an Appointment of the
``instant-virtual`` kind with **status ``waitlist``**, no slot and no start/end (R4
invariant app-3 allows that only for proposed, cancelled and waitlist), ``created`` the
arrival time, and the patient as the only participant. The queue is every such
Appointment, ordered by ``created`` (then id). A clinician who takes the next patient
turns it, with ``If-Match`` on its version so two clinicians never take the same one, into
``arrived`` with ``start`` now, an estimated ``end``, and the practitioner as an accepted
participant; both then see the visit link (``Settings.visit_url_template``). Leaving the
queue cancels the Appointment.

The estimated wait is the patient's place in the queue times the minutes the queue has
recently taken per patient: over the instant visits taken in the last ``SERVICE_WINDOW``,
the median time between two takes when the second patient was already waiting at the
first (so quiet spells, when nobody waited, do not count). With fewer than
``MIN_SAMPLES`` such gaps it falls back to ``MINUTES_PER_PATIENT``. The page says "about".
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fhir_portal.fhir import FhirConflict, FhirGateway, PatientScope
from fhir_portal.fhir.gateway import Resource, version_of
from fhir_portal.fhir.model import codeable_text, human_name, parse_datetime, reference_id
from fhir_portal.resources import appointments
from fhir_portal.resources.appointments import (
    BOOKING_SYSTEM,
    INSTANT,
    KIND_SYSTEM,
    KINDS,
    PROFILE,
)
from fhir_portal.resources.directory import SNOMED, DirectoryNames, Specialty

MINUTES_PER_PATIENT = 10
SERVICE_WINDOW = timedelta(hours=3)
MIN_SAMPLES = 3
VISIT_MINUTES = 15
KIND_TOKEN = f"{KIND_SYSTEM}|{INSTANT}"


@dataclass
class QueueState:
    appointment_id: str
    status: str  # waiting | ready | checked-in | booked | left | done
    position: int | None
    estimated_minutes: int | None
    practitioner: str
    specialty: str
    is_instant: bool
    start: datetime | None

    def visit_url(self, template: str) -> str | None:
        if self.status not in ("ready", "checked-in"):
            return None
        return template.format(appointment_id=self.appointment_id)


@dataclass
class QueueEntry:
    appointment_id: str
    patient_id: str | None
    patient: str
    specialty: str
    arrived: datetime | None
    practitioner: str | None = None

    @property
    def waited_minutes(self) -> int | None:
        if self.arrived is None:
            return None
        moment = self.arrived if self.arrived.tzinfo else self.arrived.replace(tzinfo=UTC)
        return max(0, int((datetime.now(UTC) - moment).total_seconds() // 60))


def _order(resource: Resource) -> tuple[str, str]:
    return (str(resource.get("created") or "9999"), str(resource.get("id")))


WAITING = {"status": "waitlist", "appointment-type": KIND_TOKEN}


async def _waiting(gateway: FhirGateway) -> list[Resource]:
    page = await gateway.search_all("Appointment", {**WAITING, "_count": "200"}, fresh=True)
    return sorted(page.resources, key=_order)


async def join(scope: PatientScope, specialty: Specialty, *, key: str) -> str:
    """Put the patient in the queue (or return the queue place they already hold)."""
    mine = await scope.search(
        "Appointment", {"status": "waitlist", "appointment-type": KIND_TOKEN}, fresh=True
    )
    if mine.resources:
        return str(sorted(mine.resources, key=_order)[0]["id"])
    kind = {"coding": [{"system": KIND_SYSTEM, "code": INSTANT, "display": KINDS[INSTANT]}]}
    appointment: Resource = {
        "resourceType": "Appointment",
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": BOOKING_SYSTEM, "value": key}],
        "status": "waitlist",
        "appointmentType": kind,
        "serviceType": [kind],
        "specialty": [{"coding": [{"system": SNOMED, "code": specialty.code}],
                       "text": specialty.label}],
        "created": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "participant": [{"actor": {"reference": scope.patient_ref}, "required": "required",
                         "status": "accepted"}],
    }
    created = await scope.create(appointment, if_none_exist=f"identifier={BOOKING_SYSTEM}|{key}")
    return str(created["id"])


class QueueSpeed:
    """``minutes_per_patient`` remembered for ``ttl`` seconds (one per app): every waiting
    patient's page asks every few seconds, and the figure moves slowly. It is a statistic
    of the shared service, the same for every patient."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._value: float | None = None
        self._at = -math.inf
        self._lock = asyncio.Lock()

    async def minutes(self, scope: PatientScope) -> float | None:
        if time.monotonic() - self._at < self.ttl:
            return self._value
        async with self._lock:  # one query however many patients ask at once
            if time.monotonic() - self._at >= self.ttl:
                self._value = await minutes_per_patient(scope)
                self._at = time.monotonic()
            return self._value


async def state(
    scope: PatientScope, appointment_id: str, *, speed: QueueSpeed | None = None
) -> QueueState:
    """Where the patient stands: position and estimate, or ready with a clinician.

    The position comes from ``PatientScope.position_in``: ids and arrival times only, so
    this poll (every few seconds per waiting patient) never loads other patients' data."""
    appointment = await scope.read("Appointment", appointment_id, fresh=True)
    item = appointments.to_item(appointment)
    status = appointment.get("status")
    position = estimate = None
    if status == "waitlist":
        measure = speed.minutes(scope) if speed is not None else minutes_per_patient(scope)
        position, measured = await asyncio.gather(scope.position_in(appointment, WAITING), measure)
        estimate = max(1, round(position * (measured or MINUTES_PER_PATIENT)))
        label = "waiting"
    elif item.kind == INSTANT and status in ("arrived", "checked-in") and item.practitioner:
        label = "ready"  # a clinician took the patient from the queue
    elif status in ("arrived", "checked-in"):
        label = "checked-in"  # a scheduled virtual visit: the video room is open
    elif status == "booked":
        label = "booked"  # not checked in yet
    elif status == "cancelled":
        label = "left"
    else:
        label = "done"
    return QueueState(
        appointment_id=appointment_id, status=label, position=position,
        estimated_minutes=estimate, practitioner=item.practitioner, specialty=item.specialty,
        is_instant=item.kind == INSTANT, start=item.start,
    )


def service_minutes(taken: list[Resource]) -> float | None:
    """Minutes per patient while people were waiting: the median gap between consecutive
    takes (``start``) where the later patient had joined (``created``) before the earlier
    was taken; None with fewer than ``MIN_SAMPLES`` gaps. Clamped to 1..60 minutes."""
    visits = sorted(
        (start, joined)
        for r in taken
        if (start := _aware(parse_datetime(r.get("start"))))
        and (joined := _aware(parse_datetime(r.get("created"))))
    )
    gaps = [
        (later - earlier).total_seconds() / 60
        for (earlier, _), (later, joined) in zip(visits, visits[1:], strict=False)
        if joined <= earlier
    ]
    if len(gaps) < MIN_SAMPLES:
        return None
    return min(60.0, max(1.0, statistics.median(gaps)))


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def minutes_per_patient(scope: PatientScope, *, now: datetime | None = None) -> float | None:
    """How fast the queue has moved lately (see ``service_minutes``); only the number."""
    until = now or datetime.now(UTC)
    since = until - SERVICE_WINDOW
    taken = {
        "appointment-type": KIND_TOKEN,
        "status": "arrived,checked-in,fulfilled",
        "date": [f"ge{since.isoformat(timespec='seconds')}", f"le{until.isoformat(timespec='seconds')}"],
    }
    return await scope.statistic("Appointment", taken, ("start", "created"), service_minutes)


async def leave(scope: PatientScope, appointment_id: str) -> None:
    """Leaving the queue cancels the waiting appointment."""
    await appointments.cancel(scope, appointment_id)


# -- the clinician's side (staff gateway) ---------------------------------------------------

async def waiting(gateway: FhirGateway) -> list[QueueEntry]:
    """The queue as a clinician sees it, first come first."""
    return await _entries(gateway, await _waiting(gateway))


async def _entries(gateway: FhirGateway, queue: list[Resource]) -> list[QueueEntry]:
    patient_ids = {
        pid for r in queue for p in r.get("participant", [])
        if (pid := reference_id(p.get("actor"), "Patient"))
    }
    names: dict[str, str] = {}
    if patient_ids:
        page = await gateway.search("Patient", {"_id": ",".join(sorted(patient_ids)),
                                                "_count": "200"})
        names = {str(p["id"]): human_name(p.get("name")) for p in page.resources}
    entries = []
    for resource in queue:
        pid = next((reference_id(p.get("actor"), "Patient") for p in resource.get("participant", [])
                    if reference_id(p.get("actor"), "Patient")), None)
        entries.append(QueueEntry(
            appointment_id=str(resource["id"]), patient_id=pid,
            patient=names.get(pid or "", "") or (pid or ""),
            specialty=next((codeable_text(s) for s in resource.get("specialty", [])), ""),
            arrived=parse_datetime(resource.get("created")),
        ))
    return entries


async def take(
    gateway: FhirGateway, practitioner_id: str, practitioner_name: str,
    appointment_id: str | None = None,
) -> QueueEntry | None:
    """Take the next waiting patient (or a given one); None when the queue is empty.

    Two clinicians taking at once never get the same patient: the update carries
    ``If-Match`` and the loser moves on to the next in line.
    """
    for _ in range(20):
        queue = await _waiting(gateway)  # fresh: each entry carries its current version
        if appointment_id is not None:
            queue = [r for r in queue if str(r.get("id")) == appointment_id]
        if not queue:
            return None
        resource = queue[0]
        if resource.get("status") != "waitlist":
            continue
        now = datetime.now(UTC)
        taken = {k: v for k, v in resource.items() if k != "meta"}
        taken["meta"] = {"profile": [PROFILE]}
        taken["status"] = "arrived"
        taken["start"] = now.isoformat(timespec="seconds")
        taken["end"] = (now + timedelta(minutes=VISIT_MINUTES)).isoformat(timespec="seconds")
        taken["participant"] = [
            *resource.get("participant", []),
            {"actor": {"reference": f"Practitioner/{practitioner_id}",
                       "display": practitioner_name},
             "required": "required", "status": "accepted"},
        ]
        try:
            await gateway.update(taken, if_match=version_of(resource))
        except FhirConflict:
            continue
        [entry] = await _entries(gateway, [resource])
        entry.practitioner = practitioner_name
        return entry
    return None


async def practitioner_name(gateway: FhirGateway, practitioner_id: str, default: str) -> str:
    """The clinician's name as the directory has it; the account's name when it has none."""
    names = DirectoryNames(gateway, types=("Practitioner",), lenient=True)
    await names.load([f"Practitioner/{practitioner_id}"])
    return names.name(f"Practitioner/{practitioner_id}") or default
