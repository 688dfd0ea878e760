"""AuditEvent resources: who viewed or changed which patient data, and sign-ins.

One AuditEvent per request lists every entity the request touched (references only:
never names, values or query strings). Sign-in attempts are DICOM 110114 "User
Authentication" events. Each event names the Patient as an entity, so
``AuditEvent?patient=Patient/x`` finds everything about that patient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fhir_portal.fhir.gateway import Resource, reference_of
from fhir_portal.fhir.model import reference_id
from fhir_portal.fhir.scope import COMPARTMENT, _values_at

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ACCOUNT_SYSTEM = "http://fhir-portal.example.org/fhir/sid/account"
MAX_ENTITIES = 200

# scope action -> (AuditEvent.action, restful interaction)
_ACTIONS = {
    "read": ("R", "read"),
    "search": ("R", "search-type"),
    "create": ("C", "create"),
    "update": ("U", "update"),
    "delete": ("D", "delete"),
}
_STRENGTH = {"R": 0, "C": 1, "U": 2, "D": 3}


@dataclass(frozen=True)
class Actor:
    """Who acted: the account, and the Patient or Practitioner it is (if any)."""

    account_id: int | None
    patient_id: str | None = None
    practitioner_id: str | None = None
    address: str | None = None

    def agent(self) -> Resource:
        agent: Resource = {
            "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                                 "display": "information recipient"}]},
            "requestor": True,
        }
        if self.practitioner_id:
            agent["who"] = {"reference": f"Practitioner/{self.practitioner_id}"}
        elif self.patient_id:
            agent["who"] = {"reference": f"Patient/{self.patient_id}"}
        elif self.account_id is not None:
            agent["who"] = {"identifier": {"system": ACCOUNT_SYSTEM, "value": str(self.account_id)}}
        if self.account_id is not None:
            agent["altId"] = str(self.account_id)
        if self.address:
            agent["network"] = {"address": self.address, "type": "2"}
        return agent


def patients_of(resource: Resource) -> set[str]:
    """The ids of the patients whose compartment a resource lies in."""
    kind = resource.get("resourceType", "")
    if kind == "Patient":
        return {str(resource["id"])} if resource.get("id") else set()
    compartment = COMPARTMENT.get(kind)
    if compartment is None:
        return set()
    found: set[str] = set()
    for path in compartment.paths:
        for value in _values_at(resource, path.split(".")):
            target = reference_id(value if isinstance(value, dict) else None, "Patient")
            if target:
                found.add(target)
    return found


def is_patient_data(resource: Resource) -> bool:
    """Resources whose reading is audited: the patient compartment, and the files
    (``Binary``) that messages link (read only through such a message)."""
    kind = resource.get("resourceType")
    return kind in ("Patient", "Binary") or (kind in COMPARTMENT and kind != "AuditEvent")


@dataclass
class AccessLog:
    """What one request did with patient data (the PatientScope's on_access collects it).

    ``patient_id`` is the signed-in patient; staff requests may touch several patients,
    gathered in ``patients`` from the resources themselves.
    """

    patient_id: str | None = None
    actions: list[tuple[str, list[str]]] = field(default_factory=list)
    patients: set[str] = field(default_factory=set)

    def record(self, action: str, resources: list[Resource]) -> None:
        kept = [r for r in resources if r.get("resourceType") and r.get("id")
                and is_patient_data(r)]
        refs = [reference_of(r) for r in kept]
        if refs:
            self.actions.append((action, refs))
            for resource in kept:
                self.patients |= patients_of(resource)

    def __bool__(self) -> bool:
        return bool(self.actions)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _source() -> Resource:
    return {
        "observer": {"display": "FHIR patient portal"},
        "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
    }


def _patient_entity(patient_id: str) -> Resource:
    return {
        "what": {"reference": f"Patient/{patient_id}"},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def access_event(log: AccessLog, actor: Actor) -> Resource:
    """One AuditEvent for everything a request read or wrote of one patient's data."""
    interactions = _unique(_ACTIONS.get(action, ("R", "read"))[1] for action, _ in log.actions)
    action = max((_ACTIONS.get(a, ("R", "read"))[0] for a, _ in log.actions),
                 key=lambda code: _STRENGTH[code])
    patients = _unique([log.patient_id] if log.patient_id else [])
    patients += sorted(log.patients - set(patients))
    patient_refs = {f"Patient/{p}" for p in patients}
    refs = _unique(ref for _, refs in log.actions for ref in refs if ref not in patient_refs)
    entities: list[Resource] = [_patient_entity(p) for p in patients[:MAX_ENTITIES]]
    entities += [
        {"what": {"reference": ref},
         "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}}
        for ref in refs[:MAX_ENTITIES]
    ]
    return {
        "resourceType": "AuditEvent",
        "type": {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": RESTFUL, "code": code} for code in interactions],
        "action": action,
        "recorded": _now(),
        "outcome": "0",
        "agent": [actor.agent()],
        "source": _source(),
        "entity": entities,
    }


def authentication_event(actor: Actor, *, success: bool, logout: bool = False,
                         method: str = "password") -> Resource:
    """A DICOM 110114 User Authentication event (login 110122 / logout 110123)."""
    subtype = ("110123", "Logout") if logout else ("110122", "Login")
    event: Resource = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": "110114", "display": "User Authentication"},
        "subtype": [{"system": DCM, "code": subtype[0], "display": subtype[1]}],
        "action": "E",
        "recorded": _now(),
        "outcome": "0" if success else "4",
        "outcomeDesc": method,
        "agent": [actor.agent()],
        "source": _source(),
    }
    if actor.patient_id:
        event["entity"] = [_patient_entity(actor.patient_id)]
    return event

