"""Check-in: the signed link, personal details, insurance (Coverage), and arriving.

The link in the booking notification is ``/checkin/<token>``: ``token`` is
``base64url(appointment id "." expiry) "." base64url(HMAC-SHA256(secret_key, "checkin:" +
payload))``. It names the appointment only; the patient must also be signed in as the
patient of that appointment (the scope answers "not found" otherwise).

Checking in moves the Appointment to ``arrived`` (versioned update; the chosen Coverage is
put in ``supportingInformation``) and creates an ``Encounter`` with status ``arrived``,
``appointment`` and ``subject`` set, through a conditional create on the identifier
``checkin-<appointment id>``, so a repeated or concurrent check-in never makes two.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from fhir_portal.fhir import FhirConflict, FhirInvalid, PatientScope
from fhir_portal.fhir.gateway import Resource, version_of
from fhir_portal.fhir.model import codeable_text, human_name, reference_display, reference_id
from fhir_portal.fhir.model import telecom as telecom_of
from fhir_portal.i18n import N_
from fhir_portal.resources import appointments
from fhir_portal.resources.appointments import INSTANT, AppointmentItem

TOKEN_GRACE = timedelta(hours=12)
ENCOUNTER_SYSTEM = "http://fhir-portal.example.org/fhir/checkin"
MEMBER_SYSTEM = "http://fhir-portal.example.org/fhir/insurance-member-id"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RELATIONSHIPS: dict[str, str] = {
    "self": N_("Self"),
    "spouse": N_("Spouse or partner"),
    "child": N_("Child"),
    "parent": N_("Parent"),
    "other": N_("Other"),
}
MEMBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{1,39}$")


class TokenInvalid(Exception):
    """The link was changed, cut short, or signed with another key."""


class TokenExpired(Exception):
    """The link is too old."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"checkin:{payload}".encode(), hashlib.sha256).digest())


def make_token(secret: str, appointment_id: str, until: datetime | None) -> str:
    """A link token for an appointment, valid until ``until`` plus a grace period."""
    moment = (until or datetime.now(UTC)) + TOKEN_GRACE
    payload = _b64(f"{appointment_id}.{int(moment.timestamp())}".encode())
    return f"{payload}.{_sign(secret, payload)}"


def read_token(secret: str, token: str, *, now: float | None = None) -> str:
    """The appointment id of a valid token; raises ``TokenInvalid`` / ``TokenExpired``."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or len(token) > 300:
        raise TokenInvalid(token[:8])
    if not hmac.compare_digest(_sign(secret, payload), signature):
        raise TokenInvalid(token[:8])
    try:
        appointment_id, _, expiry = _unb64(payload).decode().rpartition(".")
        expires = int(expiry)
    except (ValueError, UnicodeDecodeError):
        raise TokenInvalid(token[:8]) from None
    if not appointment_id:
        raise TokenInvalid(token[:8])
    if (now if now is not None else time.time()) > expires:
        raise TokenExpired(appointment_id)
    return appointment_id


# -- the appointment being checked in ---------------------------------------------------------

@dataclass
class CheckinContext:
    item: AppointmentItem
    checked_in: bool
    can_check_in: bool


async def context(scope: PatientScope, appointment_id: str) -> CheckinContext:
    item = await appointments.detail(scope, appointment_id)
    checked_in = item.status in ("arrived", "checked-in", "fulfilled")
    return CheckinContext(item=item, checked_in=checked_in,
                          can_check_in=item.can_check_in and item.kind != INSTANT)


# -- personal details -----------------------------------------------------------------------

@dataclass
class Personal:
    name: str
    birth_date: str
    email: str
    mobile: str
    address_line: str
    postal_code: str
    city: str
    version: str


async def personal(scope: PatientScope) -> Personal:
    patient = await scope.patient(fresh=True)
    address = (patient.get("address") or [{}])[0]
    mobile = next((str(p.get("value")) for p in patient.get("telecom", [])
                   if p.get("system") in ("phone", "sms") and p.get("use") == "mobile"), "")
    return Personal(
        name=human_name(patient.get("name")),
        birth_date=str(patient.get("birthDate") or ""),
        email=telecom_of(patient.get("telecom"), "email") or "",
        mobile=mobile or telecom_of(patient.get("telecom"), "phone") or "",
        address_line=", ".join(address.get("line", [])),
        postal_code=str(address.get("postalCode") or ""),
        city=str(address.get("city") or ""),
        version=version_of(patient) or "",
    )


async def update_personal(scope: PatientScope, values: Personal) -> None:
    """Versioned update of contact details and address (``values.version`` as If-Match)."""
    patient = await scope.patient(fresh=True)
    updated = {k: v for k, v in patient.items() if k != "meta"}
    points = [p for p in patient.get("telecom", [])
              if not (p.get("system") == "email")
              and not (p.get("system") in ("phone", "sms") and p.get("use") == "mobile")]
    if values.email:
        points.insert(0, {"system": "email", "value": values.email, "use": "home", "rank": 1})
    if values.mobile:
        points.append({"system": "phone", "value": values.mobile, "use": "mobile"})
    updated["telecom"] = points
    addresses = list(patient.get("address") or [])
    first = dict(addresses[0]) if addresses else {"use": "home", "type": "physical"}
    first["line"] = [values.address_line] if values.address_line else []
    first["postalCode"] = values.postal_code
    first["city"] = values.city
    first = {k: v for k, v in first.items() if v not in ("", [], None)}
    first.pop("text", None)
    updated["address"] = [first, *addresses[1:]] if len(first) > 2 else addresses[1:]
    if not updated["address"]:
        updated.pop("address")
    await scope.update(updated, if_match=values.version or version_of(patient))


# -- insurance --------------------------------------------------------------------------------

@dataclass
class CoverageItem:
    id: str
    payor: str
    member_id: str
    plan: str
    relationship: str
    period: str


@dataclass
class NewCoverage:
    payor_id: str = ""
    payor_name: str = ""
    member_id: str = ""
    plan: str = ""
    group: str = ""
    relationship: str = "self"
    start: str = ""
    end: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def validate(self, insurers: dict[str, str]) -> bool:
        self.errors = {}
        if self.payor_id and self.payor_id not in insurers:
            self.errors["payor"] = N_("Choose an insurer from the list.")
        if not self.payor_id and not self.payor_name.strip():
            self.errors["payor"] = N_("Choose your insurer, or type its name.")
        if not MEMBER_ID.match(self.member_id.strip()):
            self.errors["member_id"] = N_(
                "Enter the member number from your insurance card (letters and digits).")
        if self.relationship not in RELATIONSHIPS:
            self.errors["relationship"] = N_("Choose how you are related to the policy holder.")
        start = end = None
        try:
            start = date.fromisoformat(self.start) if self.start else None
        except ValueError:
            self.errors["start"] = N_("Enter the date the insurance starts.")
        if start is None and "start" not in self.errors:
            self.errors["start"] = N_("Enter the date the insurance starts.")
        try:
            end = date.fromisoformat(self.end) if self.end else None
        except ValueError:
            self.errors["end"] = N_("Enter a valid end date, or leave it empty.")
        if start and end and end < start:
            self.errors["end"] = N_("The end date must be after the start date.")
        if end and end < date.today():
            self.errors["end"] = N_("This insurance has ended. Enter a current one.")
        return not self.errors


async def insurers(scope: PatientScope) -> dict[str, str]:
    """Insurer Organizations in the directory (type ``ins``): id → name."""
    page = await scope.directory.search(
        "Organization",
        {"type": "http://terminology.hl7.org/CodeSystem/organization-type|ins",
         "_count": "100"},
    )
    return {str(o["id"]): str(o.get("name") or o["id"]) for o in page.resources}


def _coverage_item(resource: Resource) -> CoverageItem:
    member = next((str(i.get("value")) for i in resource.get("identifier", [])
                   if any(c.get("code") == "MB" for c in
                          (i.get("type") or {}).get("coding", []))),
                  str(resource.get("subscriberId") or ""))
    plan = ", ".join(str(c.get("name") or c.get("value")) for c in resource.get("class", []))
    period = resource.get("period") or {}
    return CoverageItem(
        id=str(resource["id"]),
        payor=", ".join(reference_display(p) for p in resource.get("payor", [])),
        member_id=member, plan=plan,
        relationship=codeable_text(resource.get("relationship")),
        period=" – ".join(p for p in (period.get("start", ""), period.get("end", "")) if p),
    )


async def coverages(scope: PatientScope) -> list[CoverageItem]:
    page = await scope.search("Coverage", {"status": "active", "_count": "50"}, fresh=True)
    return [_coverage_item(r) for r in page.resources]


async def add_coverage(scope: PatientScope, new: NewCoverage, insurers_: dict[str, str]) -> str:
    """Create a Coverage (conditional on the member id, so a resubmit does not repeat it)."""
    payor: Resource = (
        {"reference": f"Organization/{new.payor_id}", "display": insurers_[new.payor_id]}
        if new.payor_id else {"display": new.payor_name.strip()[:120]}
    )
    member = new.member_id.strip()
    classes = []
    if new.plan.strip():
        classes.append({"type": {"coding": [{"system": CLASS_SYSTEM, "code": "plan"}]},
                        "value": new.plan.strip()[:80], "name": new.plan.strip()[:80]})
    if new.group.strip():
        classes.append({"type": {"coding": [{"system": CLASS_SYSTEM, "code": "group"}]},
                        "value": new.group.strip()[:80], "name": new.group.strip()[:80]})
    coverage: Resource = {
        "resourceType": "Coverage",
        "status": "active",
        "identifier": [{
            "type": {"coding": [{"system": V2_0203, "code": "MB", "display": "Member Number"}]},
            "system": MEMBER_SYSTEM, "value": member,
        }],
        "beneficiary": {"reference": scope.patient_ref},
        "subscriberId": member,
        "relationship": {"coding": [{"system": RELATIONSHIP_SYSTEM, "code": new.relationship,
                                     "display": new.relationship.capitalize()}]},
        "period": {k: v for k, v in (("start", new.start), ("end", new.end)) if v},
        "payor": [payor],
    }
    if new.relationship == "self":
        coverage["subscriber"] = {"reference": scope.patient_ref}
        coverage["policyHolder"] = {"reference": scope.patient_ref}
    if classes:
        coverage["class"] = classes
    created = await scope.create(
        coverage,
        if_none_exist=f"identifier={MEMBER_SYSTEM}|{member}&beneficiary={scope.patient_ref}",
    )
    return str(created["id"])


# -- arriving ---------------------------------------------------------------------------------

@dataclass
class CheckedIn:
    appointment_id: str
    encounter_id: str
    virtual: bool


async def check_in(scope: PatientScope, appointment_id: str, coverage_id: str | None) -> CheckedIn:
    """Appointment → arrived and an Encounter (arrived) for it; safe to repeat."""
    appointment = await scope.read("Appointment", appointment_id, fresh=True)
    item = appointments.to_item(appointment)
    if coverage_id:
        await scope.read("Coverage", coverage_id)  # must be the patient's own
    if appointment.get("status") not in ("booked", "arrived", "checked-in"):
        raise FhirInvalid(f"appointment {appointment_id} cannot be checked in")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    virtual = item.is_virtual
    encounter: Resource = {
        "resourceType": "Encounter",
        "identifier": [{"system": ENCOUNTER_SYSTEM, "value": appointment_id}],
        "status": "arrived",
        "class": {"system": ACT_CODE, "code": "VR" if virtual else "AMB",
                  "display": "virtual" if virtual else "ambulatory"},
        "subject": {"reference": scope.patient_ref},
        "appointment": [{"reference": f"Appointment/{appointment_id}"}],
        "period": {"start": now},
        "statusHistory": [{"status": "arrived", "period": {"start": now}}],
    }
    if appointment.get("serviceType"):
        encounter["serviceType"] = appointment["serviceType"][0]
    for participant in appointment.get("participant", []):
        actor = participant.get("actor") or {}
        if reference_id(actor, "Practitioner"):
            encounter.setdefault("participant", []).append({"individual": actor})
        elif reference_id(actor, "Location"):
            encounter["location"] = [{"location": actor, "status": "active"}]
    created = await scope.create(
        encounter, if_none_exist=f"identifier={ENCOUNTER_SYSTEM}|{appointment_id}"
    )
    for _ in range(3):
        if appointment.get("status") != "booked":
            break
        arrived = {k: v for k, v in appointment.items() if k != "meta"}
        profiles = (appointment.get("meta") or {}).get("profile")
        if profiles:
            arrived["meta"] = {"profile": profiles}
        arrived["status"] = "arrived"
        if coverage_id:
            arrived["supportingInformation"] = [
                *[s for s in appointment.get("supportingInformation", [])
                  if not str(s.get("reference", "")).startswith("Coverage/")],
                {"reference": f"Coverage/{coverage_id}"},
            ]
        try:
            await scope.update(arrived, if_match=version_of(appointment))
            break
        except FhirConflict:
            appointment = await scope.read("Appointment", appointment_id, fresh=True)
    return CheckedIn(appointment_id=appointment_id, encounter_id=str(created["id"]),
                     virtual=virtual)
