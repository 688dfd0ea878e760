"""The patient scope: what one signed-in patient may read and write.

``PatientScope`` is built from the signed-in principal. It can only search inside that
patient's compartment (every search carries the compartment parameter) and a read of a
resource outside it answers "not found", exactly like a resource that does not exist, so
an id typed into an address reveals nothing. Shared directory data (practitioners,
locations, schedules, slots, knowledge articles) is read through the explicit, read-only
``DirectoryReader``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fhir_portal.fhir.binary import linked_binary
from fhir_portal.fhir.errors import FhirConflict, FhirError, FhirForbidden, FhirNotFound
from fhir_portal.fhir.gateway import FhirGateway, Params, Resource, SearchPage, version_of


@dataclass(frozen=True)
class Compartment:
    """How a resource type belongs to a patient: search parameters and element paths."""

    params: tuple[str, ...]
    paths: tuple[str, ...]


# R4 Patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html),
# limited to the types the portal touches; the first parameter is the default.
COMPARTMENT: dict[str, Compartment] = {
    "AllergyIntolerance": Compartment(("patient",), ("patient",)),
    "Appointment": Compartment(("actor",), ("participant.actor",)),
    "AuditEvent": Compartment(("patient",), ("entity.what",)),
    "CarePlan": Compartment(("patient",), ("subject",)),
    "CareTeam": Compartment(("patient",), ("subject",)),
    "Communication": Compartment(
        ("subject", "recipient", "sender"), ("subject", "recipient", "sender")
    ),
    "Composition": Compartment(("subject",), ("subject",)),
    "Condition": Compartment(("patient",), ("subject",)),
    "Coverage": Compartment(
        ("beneficiary", "subscriber", "policy-holder"),
        ("beneficiary", "subscriber", "policyHolder"),
    ),
    "DiagnosticReport": Compartment(("subject",), ("subject",)),
    "DocumentReference": Compartment(("subject",), ("subject",)),
    "Encounter": Compartment(("patient",), ("subject",)),
    "Goal": Compartment(("subject",), ("subject",)),
    "MedicationRequest": Compartment(("subject",), ("subject",)),
    "MedicationStatement": Compartment(("subject",), ("subject",)),
    "Observation": Compartment(("subject",), ("subject",)),
    "Task": Compartment(("subject",), ("for",)),
}

# Shared data any signed-in user may read; never patient-specific.
DIRECTORY_TYPES = frozenset(
    {
        "CodeSystem",
        "HealthcareService",
        "Location",
        "Medication",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Schedule",
        "Slot",
        "ValueSet",
    }
)
KNOWLEDGE_TYPE = (
    "http://fhir-portal.example.org/fhir/CodeSystem/document-type|knowledge-article"
)


def _values_at(node: Any, path: list[str]) -> Iterator[Any]:
    if not path:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _values_at(item, path)
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _values_at(node[path[0]], path[1:])


def _points_at(reference: Any, target: str) -> bool:
    if not isinstance(reference, dict):
        return False
    value = str(reference.get("reference") or "")
    return value == target or value.endswith("/" + target)


def is_knowledge_article(resource: Resource) -> bool:
    if resource.get("resourceType") != "DocumentReference":
        return False
    system, _, code = KNOWLEDGE_TYPE.partition("|")
    codings = (resource.get("type") or {}).get("coding", [])
    return any(
        c.get("system") == system and c.get("code") == code for c in codings
    )


class DirectoryReader:
    """Read-only access to shared directory data and knowledge articles."""

    def __init__(self, gateway: FhirGateway) -> None:
        self._gateway = gateway

    def _check(self, resource_type: str) -> None:
        if resource_type not in DIRECTORY_TYPES and resource_type != "DocumentReference":
            raise FhirForbidden(f"{resource_type} is not directory data")

    async def read(self, resource_type: str, resource_id: str) -> Resource:
        self._check(resource_type)
        resource = await self._gateway.read(resource_type, resource_id)
        if resource_type == "DocumentReference" and not is_knowledge_article(resource):
            raise FhirNotFound("DocumentReference: not found")
        return resource

    async def search(
        self, resource_type: str, params: Params | None = None, *, fresh: bool = False,
        all_pages: bool = False,
    ) -> SearchPage:
        self._check(resource_type)
        query = dict(params or {})
        if resource_type == "DocumentReference":
            query["type"] = KNOWLEDGE_TYPE
        if all_pages:
            page = await self._gateway.search_all(resource_type, query, fresh=fresh)
        else:
            page = await self._gateway.search(resource_type, query, fresh=fresh)
        return _directory_only(page)


def _is_directory_data(resource: Resource) -> bool:
    return resource.get("resourceType") in DIRECTORY_TYPES or is_knowledge_article(resource)


def _directory_only(page: SearchPage) -> SearchPage:
    """Whatever a directory search matched or included, only directory data is kept."""
    page.resources = [r for r in page.resources if _is_directory_data(r)]
    page.included = {k: r for k, r in page.included.items() if _is_directory_data(r)}
    return page


# resource types a patient's page may compute a shared statistic over (PatientScope.statistic)
STATISTIC_TYPES = frozenset({"Appointment"})

# Told of every access to patient data: ("read" | "search" | "create" | "update", resources).
AccessRecorder = Callable[[str, list[Resource]], None]


class PatientScope:
    """Reads and writes limited to one patient's compartment."""

    def __init__(
        self, gateway: FhirGateway, patient_id: str, *, on_access: AccessRecorder | None = None
    ) -> None:
        if not patient_id:
            raise ValueError("a patient scope needs a patient id")
        self._gateway = gateway
        self.patient_id = patient_id
        self.patient_ref = f"Patient/{patient_id}"
        self.directory = DirectoryReader(gateway)
        self._on_access = on_access

    def _record(self, action: str, resources: list[Resource]) -> None:
        if self._on_access is not None and resources:
            self._on_access(action, resources)

    # -- membership -------------------------------------------------------------
    def owns(self, resource: Resource) -> bool:
        """Whether a resource lies in this patient's compartment."""
        resource_type = resource.get("resourceType", "")
        if resource_type == "Patient":
            return resource.get("id") == self.patient_id
        compartment = COMPARTMENT.get(resource_type)
        if compartment is None:
            return False
        return any(
            _points_at(value, self.patient_ref)
            for path in compartment.paths
            for value in _values_at(resource, path.split("."))
        )

    def _visible_include(self, resource: Resource) -> bool:
        return _is_directory_data(resource) or self.owns(resource)

    # -- reads --------------------------------------------------------------------
    async def patient(self, *, fresh: bool = False) -> Resource:
        resource = await self._gateway.read("Patient", self.patient_id, fresh=fresh)
        self._record("read", [resource])
        return resource

    async def read(self, resource_type: str, resource_id: str, *, fresh: bool = False) -> Resource:
        if resource_type == "Patient" and resource_id != self.patient_id:
            raise FhirNotFound("Patient: not found")
        if resource_type != "Patient" and resource_type not in COMPARTMENT:
            raise FhirNotFound(f"{resource_type}: not found")
        resource = await self._gateway.read(resource_type, resource_id, fresh=fresh)
        if not self.owns(resource):
            raise FhirNotFound(f"{resource_type}: not found")
        self._record("read", [resource])
        return resource

    async def linked_binary(self, owner: Resource, url: str) -> Resource:
        """A file one of the patient's own resources links by URL (see fhir/binary.py)."""
        if not self.owns(owner):
            raise FhirNotFound("Binary: not found")
        binary = await linked_binary(
            self._gateway, owner, url, contexts=frozenset({self.patient_ref})
        )
        self._record("read", [binary])
        return binary

    async def search(
        self,
        resource_type: str,
        params: Params | None = None,
        *,
        via: str | None = None,
        fresh: bool = False,
        all_pages: bool = False,
        single_page: bool = False,
    ) -> SearchPage:
        """Search inside the compartment; ``via`` picks the compartment parameter;
        ``single_page`` as in ``FhirGateway.search``."""
        query = self._compartment_query(resource_type, params, via)
        if all_pages:
            page = await self._gateway.search_all(
                resource_type, query, fresh=fresh, single_page=single_page
            )
        else:
            page = await self._gateway.search(
                resource_type, query, fresh=fresh, single_page=single_page
            )
        return self._filtered(page)

    async def count(
        self, resource_type: str, params: Params | None = None, *, via: str | None = None
    ) -> int:
        """How many of the patient's resources match, counted fresh by the server (no
        resource leaves the server, so nothing is recorded as seen)."""
        return await self._gateway.count(
            resource_type, self._compartment_query(resource_type, params, via)
        )

    def _compartment_query(
        self, resource_type: str, params: Params | None, via: str | None
    ) -> dict[str, Any]:
        compartment = COMPARTMENT.get(resource_type)
        if compartment is None:
            raise FhirForbidden(f"{resource_type} is not in the patient compartment")
        param = via or compartment.params[0]
        if param not in compartment.params:
            raise FhirForbidden(f"{resource_type}.{param} is not a compartment parameter")
        query = {k: v for k, v in (params or {}).items() if k not in compartment.params}
        query[param] = self.patient_ref
        return query

    async def next_page(self, page: SearchPage) -> SearchPage | None:
        following = await self._gateway.next_page(page)
        return self._filtered(following) if following is not None else None

    def _filtered(self, page: SearchPage) -> SearchPage:
        page.resources = [r for r in page.resources if self.owns(r)]
        page.included = {k: r for k, r in page.included.items() if self._visible_include(r)}
        self._record("search", page.resources)
        return page

    async def position_in(
        self, resource: Resource, params: Params, *, order_by: str = "created"
    ) -> int:
        """The 1-based place of one of the patient's own resources among every resource of
        its type matching ``params`` (all patients), ordered by ``order_by`` then id; one
        past the last when the search does not find it (yet). Only ``id`` and ``order_by``
        are fetched and only the number leaves this method: nothing of other patients
        reaches the caller."""
        resource_type = str(resource.get("resourceType", ""))
        resource_id = str(resource.get("id", ""))
        if not self.owns(resource):
            raise FhirNotFound(f"{resource_type}: not found")
        query = {**params, "_elements": f"id,{order_by}", "_count": "500"}
        page = await self._gateway.search_all(resource_type, query, fresh=True)
        ordered = sorted(
            page.resources, key=lambda r: (str(r.get(order_by) or "9999"), str(r.get("id")))
        )
        ids = [str(r.get("id")) for r in ordered]
        return ids.index(resource_id) + 1 if resource_id in ids else len(ids) + 1

    async def statistic(
        self,
        resource_type: str,
        params: Params,
        elements: tuple[str, ...],
        reduce: Callable[[list[Resource]], float | None],
    ) -> float | None:
        """One number worked out over every patient's resources of a shared service (e.g.
        how fast the instant-visit queue moves). Only ``elements`` are fetched, only the
        number leaves: like ``position_in``, nothing of other patients reaches the caller.
        Limited to the types where such statistics are meaningful."""
        if resource_type not in STATISTIC_TYPES:
            raise FhirForbidden(f"no statistics over {resource_type}")
        query = {**params, "_elements": ",".join(elements), "_count": "500"}
        page = await self._gateway.search_all(resource_type, query, single_page=True, max_pages=4)
        return reduce(page.resources)

    async def everything(self) -> Resource:
        """The patient's whole record as a Bundle (``Patient/$everything``, all pages)."""
        bundle = await self._gateway.operation(
            f"Patient/{self.patient_id}/$everything", params={"_count": "200"}
        )
        entries = list(bundle.get("entry", []))
        page = SearchPage.from_bundle(bundle)
        while page.next_url:
            following = await self._gateway.fetch_url(page.next_url)
            entries.extend(following.get("entry", []))
            page = SearchPage.from_bundle(following)
        kept = [e for e in entries if self._visible_include(e.get("resource", {}))]
        self._record("read", [e["resource"] for e in kept if self.owns(e["resource"])])
        return {"resourceType": "Bundle", "type": "searchset", "total": len(kept), "entry": kept}

    # -- writes -------------------------------------------------------------------
    def _in_compartment(self, resource_type: str, condition: str | None) -> str | None:
        """A conditional-create query narrowed to this patient's compartment, so a business
        identifier another patient chose can never match (and hand back) their resource."""
        if not condition:
            return None
        compartment = COMPARTMENT.get(resource_type)
        if compartment is None:
            raise FhirForbidden(f"{resource_type} is not in the patient compartment")
        return f"{condition}&{compartment.params[0]}={self.patient_ref}"

    async def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Resource:
        """Create a resource of this patient; a retried conditional create returns the first."""
        resource_type = str(resource.get("resourceType", ""))
        if not self.owns(resource):
            raise FhirForbidden(f"{resource_type} outside the patient's compartment")
        created = await self._gateway.create(
            resource, if_none_exist=self._in_compartment(resource_type, if_none_exist)
        )
        if not self.owns(created):  # defence in depth: never hand back someone else's
            raise FhirConflict(f"{resource_type}: the identifier is already in use")
        self._record("create", [created])
        return created

    async def update(self, resource: Resource, *, if_match: str | None) -> Resource:
        """A versioned update of a resource that is (and stays) in the compartment."""
        if not self.owns(resource):
            raise FhirForbidden(f"{resource.get('resourceType')} outside the patient's compartment")
        current = await self.read(resource["resourceType"], resource["id"], fresh=True)
        if if_match is None:
            if_match = version_of(current)
        updated = await self._gateway.update(resource, if_match=if_match)
        self._record("update", [updated])
        return updated

    # -- scheduling -------------------------------------------------------------------
    # Booking and cancelling are the only writes a patient makes to directory data: they
    # flip Slot.status (and nothing else), always together with the patient's own
    # Appointment in ONE transaction, and the Slot write carries If-Match on the version
    # read, so of many patients racing for one slot exactly one wins (HAPI 8.8 enforces
    # ``request.ifMatch`` inside transaction entries: tested, 409 for the losers).

    async def book(
        self, slot_id: str, appointment: Resource, *, if_none_exist: str | None = None
    ) -> str:
        """Mark a free Slot busy and create the patient's Appointment on it, atomically.

        Returns the new (or, for a retried create matching ``if_none_exist``, the existing)
        Appointment id. Raises ``FhirConflict`` when the slot is not free or was taken by
        a concurrent booking, ``FhirForbidden`` for an appointment of someone else or not
        on this slot.
        """
        if appointment.get("resourceType") != "Appointment" or not self.owns(appointment):
            raise FhirForbidden("Appointment outside the patient's compartment")
        slot_refs = [s.get("reference", "") for s in appointment.get("slot", [])]
        if slot_refs != [f"Slot/{slot_id}"]:
            raise FhirForbidden("the Appointment must be on exactly the slot booked")
        slot = await self._gateway.read("Slot", slot_id, fresh=True)
        version = version_of(slot)
        if slot.get("status") != "free" or version is None:
            raise FhirConflict("Slot is not free")
        busy = {**slot, "status": "busy"}
        busy.pop("meta", None)
        post: Resource = {"method": "POST", "url": "Appointment"}
        if if_none_exist:
            post["ifNoneExist"] = self._in_compartment("Appointment", if_none_exist)
        result = await self._gateway.transaction(
            [
                {
                    "resource": busy,
                    "request": {"method": "PUT", "url": f"Slot/{slot_id}",
                                "ifMatch": f'W/"{version}"'},
                },
                {"fullUrl": "urn:uuid:" + _uuid4(), "resource": appointment, "request": post},
            ]
        )
        appointment_id = _created_id(result, 1, "Appointment")
        self._record("create", [{**appointment, "id": appointment_id}])
        return appointment_id

    async def cancel(self, appointment_id: str) -> Resource:
        """Cancel the patient's Appointment and free its Slot(s), atomically and versioned.

        Returns the Appointment as it was before. Raises ``FhirNotFound`` for an
        appointment that is not the patient's, ``FhirConflict`` when it (or its slot)
        changed meanwhile.
        """
        appointment = await self.read("Appointment", appointment_id, fresh=True)
        version = version_of(appointment)
        cancelled = {**appointment, "status": "cancelled"}
        cancelled.pop("meta", None)
        for participant in cancelled.get("participant", []):
            if _points_at(participant.get("actor"), self.patient_ref):
                participant["status"] = "declined"
        entries: list[Resource] = [
            {
                "resource": cancelled,
                "request": {"method": "PUT", "url": f"Appointment/{appointment_id}",
                            **({"ifMatch": f'W/"{version}"'} if version else {})},
            }
        ]
        for ref in appointment.get("slot", []):
            slot_id = str(ref.get("reference", "")).rpartition("Slot/")[2]
            if not slot_id:
                continue
            slot = await self._gateway.read("Slot", slot_id, fresh=True)
            if slot.get("status") != "busy":
                continue
            freed = {**slot, "status": "free"}
            freed.pop("meta", None)
            entries.append(
                {
                    "resource": freed,
                    "request": {"method": "PUT", "url": f"Slot/{slot_id}",
                                "ifMatch": f'W/"{version_of(slot)}"'},
                }
            )
        await self._gateway.transaction(entries)
        self._record("update", [cancelled])
        return appointment


def _uuid4() -> str:
    import uuid

    return str(uuid.uuid4())


def _created_id(bundle: Resource, index: int, resource_type: str) -> str:
    """The id in the ``index``-th entry's response location of a transaction response."""
    entries = bundle.get("entry", []) if bundle else []
    location = ""
    if index < len(entries):
        location = str((entries[index].get("response") or {}).get("location") or "")
    parts = location.split("/")
    if resource_type in parts:
        return parts[parts.index(resource_type) + 1]
    raise FhirError(f"the transaction response did not name the {resource_type}")
