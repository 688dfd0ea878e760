"""The shared care directory for booking: specialties, places, free slots.

Everything here is read through ``scope.directory`` (unscoped, read-only directory data):
``Schedule.serviceType`` / ``Slot.serviceType`` carry the appointment kinds a role
offers (appointment-kind CodeSystem), ``specialty`` the SNOMED specialty, and
``Schedule.actor`` the PractitionerRole, Practitioner and (for clinic visits) Location.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fhir_portal.fhir import FhirError, FhirInvalid, FhirNotFound
from fhir_portal.fhir.gateway import Params, Resource, SearchPage
from fhir_portal.fhir.model import (
    codeable_text,
    human_name,
    parse_datetime,
    reference_id,
    reference_key,
)
from fhir_portal.fhir.scope import DirectoryReader
from fhir_portal.resources.appointments import CLINIC, INSTANT, KIND_SYSTEM, VIRTUAL

SNOMED = "http://snomed.info/sct"

# Approximate centres of Danish postal-code areas (WGS84), for distances where a
# Location has no position. Enough for the demo's clinics and the larger towns.
POSTAL_CENTROIDS: dict[str, tuple[float, float]] = {
    "1050": (55.6794, 12.5850), "1550": (55.6736, 12.5625), "2000": (55.6786, 12.5222),
    "2100": (55.7093, 12.5772), "2200": (55.6975, 12.5450), "2300": (55.6600, 12.6000),
    "2400": (55.7080, 12.5250), "2500": (55.6620, 12.5130), "2800": (55.7704, 12.5038),
    "2900": (55.7310, 12.5700), "3000": (56.0361, 12.6136), "3400": (55.9267, 12.3110),
    "3700": (55.1009, 14.7066), "4000": (55.6419, 12.0878), "4700": (55.2299, 11.7609),
    "5000": (55.3957, 10.3820), "5200": (55.3930, 10.3400), "6000": (55.4904, 9.4722),
    "6400": (54.9138, 9.7922), "6700": (55.4765, 8.4594), "7100": (55.7113, 9.5364),
    "7400": (56.1393, 8.9738), "7500": (56.3601, 8.6161), "8000": (56.1541, 10.2059),
    "8200": (56.1833, 10.1889), "8700": (55.8607, 9.8503), "8900": (56.4607, 10.0364),
    "9000": (57.0488, 9.9217), "9200": (57.0250, 9.8900), "9800": (57.4642, 9.9823),
}


@dataclass(frozen=True)
class Specialty:
    code: str
    label: str


@dataclass
class Place:
    """A clinic found by postal code, with who works there and how far it is."""

    id: str
    name: str
    address: str
    postal_code: str
    exact: bool
    distance_km: float | None
    practitioners: list[str] = field(default_factory=list)


@dataclass
class SlotOption:
    id: str
    start: datetime
    end: datetime | None
    practitioner: str
    practitioner_id: str | None
    location: str | None
    location_id: str | None
    schedule_id: str


def _kind_token(kind: str) -> str:
    return f"{KIND_SYSTEM}|{kind}"


def specialty_codes(concepts: list[Resource] | None) -> dict[str, str]:
    """SNOMED specialty code → label, from a list of CodeableConcepts."""
    found: dict[str, str] = {}
    for concept in concepts or []:
        for coding in concept.get("coding", []):
            if coding.get("system") == SNOMED and coding.get("code"):
                found.setdefault(str(coding["code"]), codeable_text(concept, coding["code"]))
    return found


async def schedules_for(directory: DirectoryReader, kind: str) -> list[Resource]:
    """Active schedules that offer an appointment kind (instant visits: virtual ones)."""
    kinds = [VIRTUAL, INSTANT] if kind == INSTANT else [kind]
    page = await directory.search(
        "Schedule",
        {"service-type": ",".join(_kind_token(k) for k in kinds), "active": "true",
         "_count": "200"},
        all_pages=True,
    )
    return page.resources


async def specialties(
    directory: DirectoryReader, kind: str, *, schedules: list[Resource] | None = None
) -> list[Specialty]:
    """The specialties on offer for a kind of appointment, by label."""
    found: dict[str, str] = {}
    if schedules is None:
        schedules = await schedules_for(directory, kind)
    for schedule in schedules:
        for code, label in specialty_codes(schedule.get("specialty")).items():
            found.setdefault(code, label)
    return sorted((Specialty(c, t) for c, t in found.items()), key=lambda s: s.label.lower())


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(
        (lon2 - lon1) / 2
    ) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _position(location: Resource) -> tuple[float, float] | None:
    position = location.get("position") or {}
    if "latitude" in position and "longitude" in position:
        return float(position["latitude"]), float(position["longitude"])
    return POSTAL_CENTROIDS.get(_postal(location))


def _postal(location: Resource) -> str:
    return str((location.get("address") or {}).get("postalCode") or "").strip()


def address_line(location: Resource) -> str:
    address = location.get("address") or {}
    if address.get("text"):
        return str(address["text"])
    parts = [*address.get("line", []),
             " ".join(p for p in (address.get("postalCode"), address.get("city")) if p)]
    return ", ".join(p for p in parts if p)


def normalise_postal_code(value: str) -> str | None:
    """A Danish postal code (four digits) or None."""
    code = "".join(value.split())
    return code if len(code) == 4 and code.isdigit() else None


def rank_places(postal_code: str, locations: list[Resource]) -> list[Place]:
    """Exact matches first, then the nearest: haversine where positions are known (the
    searched code's position comes from a location with that code, else the centroid
    table), otherwise by how close the postal codes are as numbers."""
    origin: tuple[float, float] | None = None
    for location in locations:
        if _postal(location) == postal_code and (location.get("position") or {}):
            origin = _position(location)
            break
    origin = origin or POSTAL_CENTROIDS.get(postal_code)
    places: list[tuple[tuple[int, float, float], Place]] = []
    for location in locations:
        code = _postal(location)
        here = _position(location)
        distance = haversine_km(origin, here) if origin and here else None
        exact = code == postal_code
        numeric = abs(int(code) - int(postal_code)) if code.isdigit() else 10_000.0
        key = (0 if exact else 1, distance if distance is not None else math.inf, numeric)
        places.append((key, Place(
            id=str(location["id"]), name=str(location.get("name") or ""),
            address=address_line(location), postal_code=code, exact=exact,
            distance_km=round(distance, 1) if distance is not None else None,
        )))
    places.sort(key=lambda item: item[0])
    return [place for _, place in places]


async def places_near(
    directory: DirectoryReader, postal_code: str, *, kind: str, specialty: str, limit: int = 8,
    schedules: list[Resource] | None = None,
) -> list[Place]:
    """Clinics offering ``kind`` and ``specialty``, nearest to a postal code first."""
    if schedules is None:
        schedules = await schedules_for(directory, kind)
    schedules = [s for s in schedules if specialty in specialty_codes(s.get("specialty"))]
    by_location: dict[str, list[str]] = {}
    for schedule in schedules:
        location_id = _actor_id(schedule, "Location")
        if location_id:
            by_location.setdefault(location_id, []).append(_actor_display(schedule, "Practitioner"))
    if not by_location:
        return []
    page = await directory.search(
        "Location", {"_id": ",".join(sorted(by_location)), "_count": "200"}
    )
    places = rank_places(postal_code, page.resources)[:limit]
    for place in places:
        place.practitioners = sorted(p for p in by_location.get(place.id, []) if p)
    return places


async def place(directory: DirectoryReader, location_id: str) -> Place | None:
    try:
        location = await directory.read("Location", location_id)
    except (FhirNotFound, FhirInvalid):  # unknown or malformed ids: no such place
        return None
    return Place(id=str(location["id"]), name=str(location.get("name") or ""),
                 address=address_line(location), postal_code=_postal(location), exact=True,
                 distance_km=None)


def _actor_id(schedule: Resource, resource_type: str) -> str | None:
    for actor in schedule.get("actor", []):
        found = reference_id(actor, resource_type)
        if found:
            return found
    return None


def _actor_display(schedule: Resource, resource_type: str) -> str:
    for actor in schedule.get("actor", []):
        if reference_id(actor, resource_type):
            return str(actor.get("display") or "")
    return ""


class Searcher(Protocol):
    """What DirectoryNames reads through: a DirectoryReader, or a staff gateway."""

    async def search(self, resource_type: str, params: Params | None = None) -> SearchPage: ...


NAMED_TYPES = ("Practitioner", "PractitionerRole", "Organization", "Location")
ID_BATCH = 100


def display_name(resource: Resource | None) -> str:
    """A resource's everyday name; a PractitionerRole is named by its practitioner."""
    if not resource:
        return ""
    kind = resource.get("resourceType")
    if kind in ("Practitioner", "Patient", "RelatedPerson"):
        return human_name(resource.get("name"))
    if kind == "PractitionerRole":
        return str((resource.get("practitioner") or {}).get("display") or "")
    return str(resource.get("name") or "")


class DirectoryNames:
    """Directory resources and their names by reference, for one request.

    ``load`` reads every reference not read yet with ONE ``_id=a,b,c`` search per resource
    type (all types at once); ``seed`` records a name a reference already carries
    (its ``display``), which wins over a lookup and saves it. Only ``types`` are looked up;
    ``lenient`` turns a failed search into unknown names instead of an error.
    """

    def __init__(
        self, reader: Searcher, *, types: Iterable[str] = NAMED_TYPES, lenient: bool = False
    ) -> None:
        self._reader = reader
        self._types = frozenset(types)
        self._lenient = lenient
        self._found: dict[str, Resource | None] = {}
        self._names: dict[str, str] = {}

    def seed(self, reference: Any, name: str | None = None) -> None:
        """Remember the name a reference carries (its ``display`` unless ``name`` is given)."""
        key = reference_key(reference)
        if name is None and isinstance(reference, dict):
            name = str(reference.get("display") or "")
        if key and name and key not in self._names:
            self._names[key] = name

    async def load(self, references: Iterable[Any], *, unnamed_only: bool = False) -> None:
        """Read the referenced resources not read yet (with ``unnamed_only``: nor named)."""
        wanted: dict[str, set[str]] = {}
        for reference in references:
            key = reference_key(reference)
            if not key or key in self._found or (unnamed_only and key in self._names):
                continue
            kind, _, ident = key.partition("/")
            if kind in self._types:
                wanted.setdefault(kind, set()).add(ident)
        kinds = sorted(wanted)
        found = await asyncio.gather(*(self._search(kind, wanted[kind]) for kind in kinds))
        for kind, resources in zip(kinds, found, strict=True):
            for ident in wanted[kind]:
                self._found[f"{kind}/{ident}"] = resources.get(ident)

    async def _search(self, kind: str, ids: set[str]) -> dict[str, Resource]:
        ordered = sorted(ids)
        chunks = [ordered[i:i + ID_BATCH] for i in range(0, len(ordered), ID_BATCH)]
        pages = await asyncio.gather(
            *(self._reader.search(kind, {"_id": ",".join(c), "_count": str(len(c))})
              for c in chunks),
            return_exceptions=True,
        )
        resources: dict[str, Resource] = {}
        for page in pages:
            if isinstance(page, BaseException):
                if self._lenient and isinstance(page, FhirError):
                    continue
                raise page
            resources.update(
                {str(r.get("id")): r for r in page.resources if r.get("resourceType") == kind}
            )
        return resources

    def resource(self, reference: Any) -> Resource | None:
        return self._found.get(reference_key(reference))

    def name(self, reference: Any) -> str:
        key = reference_key(reference)
        return self._names.get(key, "") or display_name(self._found.get(key))


async def free_slots(
    directory: DirectoryReader,
    *,
    kind: str,
    specialty: str,
    start: datetime,
    end: datetime,
    location_id: str | None = None,
    limit: int = 200,
) -> list[SlotOption]:
    """Free slots of one specialty and kind in ``[start, end)``, earliest first."""
    page: SearchPage = await directory.search(
        "Slot",
        {
            "status": "free",
            "specialty": f"{SNOMED}|{specialty}",
            "service-type": _kind_token(kind),
            "start": [f"ge{start.isoformat(timespec='seconds')}",
                      f"lt{end.isoformat(timespec='seconds')}"],
            "_include": "Slot:schedule",
            "_sort": "start",
            "_count": str(limit),
        },
        fresh=True,
    )
    options = [
        option for slot in page.resources
        if (option := _slot_option(slot, page, kind=kind, location_id=location_id))
        and option.start >= start
    ]
    await _name_options(directory, options)
    options.sort(key=lambda o: (o.start, o.practitioner))
    return options


def _slot_option(
    slot: Resource, page: SearchPage, *, kind: str, location_id: str | None
) -> SlotOption | None:
    """A bookable option from a Slot and its (included) active Schedule, if it has both."""
    schedule = page.resolve((slot.get("schedule") or {}).get("reference"))
    moment = parse_datetime(slot.get("start"))
    if schedule is None or schedule.get("active") is False or moment is None:
        return None
    loc = _actor_id(schedule, "Location")
    if location_id and loc != location_id:
        return None
    return SlotOption(
        id=str(slot["id"]), start=moment, end=parse_datetime(slot.get("end")),
        practitioner=_actor_display(schedule, "Practitioner"),
        practitioner_id=_actor_id(schedule, "Practitioner"),
        location=_actor_display(schedule, "Location") or None if kind == CLINIC else None,
        location_id=loc if kind == CLINIC else None, schedule_id=str(schedule["id"]),
    )


async def _name_options(directory: DirectoryReader, options: list[SlotOption]) -> None:
    """Names the schedules did not carry, looked up together."""
    names = DirectoryNames(directory)
    await names.load(
        [f"Practitioner/{o.practitioner_id}" for o in options
         if o.practitioner_id and not o.practitioner]
        + [f"Location/{o.location_id}" for o in options if o.location_id and not o.location]
    )
    for option in options:
        if not option.practitioner and option.practitioner_id:
            option.practitioner = names.name(f"Practitioner/{option.practitioner_id}")
        if option.location_id and not option.location:
            option.location = names.name(f"Location/{option.location_id}") or None


async def bookable_slot(
    directory: DirectoryReader, slot_id: str, *, kind: str, location_id: str | None = None
) -> tuple[Resource, SlotOption] | None:
    """One Slot with its Schedule (one search, always fresh) and the option it makes;
    None when there is no such slot or it is not bookable on an active schedule."""
    try:
        page = await directory.search(
            "Slot", {"_id": slot_id, "_include": "Slot:schedule"}, fresh=True
        )
    except (FhirNotFound, FhirInvalid):  # a malformed id is "no such slot" too
        return None
    found = next((r for r in page.resources if str(r.get("id")) == slot_id), None)
    if found is None:
        return None
    option = _slot_option(found, page, kind=kind, location_id=location_id)
    if option is None:
        return None
    await _name_options(directory, [option])
    return found, option
