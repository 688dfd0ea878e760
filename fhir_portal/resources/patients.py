"""The patient's own Patient resource as the portal shows it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from fhir_portal.fhir import FhirConflict, FhirError, FhirGateway, FhirNotFound, PatientScope
from fhir_portal.fhir.gateway import Resource, version_of
from fhir_portal.fhir.model import human_name, telecom


@dataclass(frozen=True)
class PatientSummary:
    id: str
    name: str
    given_name: str
    birth_date: str | None
    email: str | None
    mobile: str | None
    language: str | None


def _language(resource: dict) -> str | None:
    preferred = [c for c in resource.get("communication", []) if c.get("preferred")]
    for item in preferred or resource.get("communication", []):
        for coding in (item.get("language") or {}).get("coding", []):
            code = str(coding.get("code") or "")
            if code:
                return code.split("-")[0].lower()
    return None


def summarize(resource: dict) -> PatientSummary:
    names = resource.get("name", [])
    given = ""
    if names:
        given = " ".join(names[0].get("given", [])[:1])
    return PatientSummary(
        id=resource["id"],
        name=human_name(names),
        given_name=given or human_name(names),
        birth_date=resource.get("birthDate"),
        email=telecom(resource.get("telecom"), "email"),
        mobile=telecom(resource.get("telecom"), "phone"),
        language=_language(resource),
    )


async def summary(scope: PatientScope) -> PatientSummary:
    return summarize(await scope.patient())


# -- profile: read for the form, versioned update -----------------------------------------
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
LANGUAGE_NAMES = {"en": "English", "da": "Dansk"}
REGISTRATION_SYSTEM = "http://fhir-portal.example.org/fhir/sid/registration"


@dataclass(frozen=True)
class ProfileData:
    """What the profile form shows and sends (all strings, as typed)."""

    given: str
    family: str
    birth_date: str
    email: str
    mobile: str
    language: str


@dataclass(frozen=True)
class Profile:
    data: ProfileData
    version: str
    name: str


def _official_name(resource: Resource) -> dict[str, Any] | None:
    names = resource.get("name") or []
    for name in names:
        if name.get("use") == "official":
            return dict(name)
    return dict(names[0]) if names else None


def profile_of(resource: Resource) -> Profile:
    name = _official_name(resource) or {}
    summary = summarize(resource)
    return Profile(
        data=ProfileData(
            given=" ".join(name.get("given", [])),
            family=str(name.get("family") or ""),
            birth_date=str(resource.get("birthDate") or ""),
            email=summary.email or "",
            mobile=_mobile(resource) or "",
            language=summary.language if summary.language in LANGUAGE_NAMES else "",
        ),
        version=version_of(resource) or "",
        name=summary.name,
    )


def _mobile(resource: Resource) -> str | None:
    phones = [p for p in resource.get("telecom") or [] if p.get("system") == "phone" and p.get("value")]
    for phone in phones:
        if phone.get("use") == "mobile":
            return str(phone["value"])
    return str(phones[0]["value"]) if phones else None


async def read_profile(scope: PatientScope) -> Profile:
    return profile_of(await scope.patient(fresh=True))


def apply_profile(resource: Resource, data: ProfileData) -> Resource:
    """The Patient with the profile's elements replaced; everything else kept as it was."""
    updated = copy.deepcopy(resource)
    names = list(updated.get("name") or [])
    given = data.given.split()
    index = next((i for i, n in enumerate(names) if n.get("use") == "official"), 0 if names else -1)
    name = {k: v for k, v in (names[index] if index >= 0 else {"use": "official"}).items()
            if k not in ("text", "given", "family")}
    name["family"] = data.family.strip()
    if given:
        name["given"] = given
    if index >= 0:
        names[index] = name
    else:
        names.append(name)
    updated["name"] = names
    updated["birthDate"] = data.birth_date

    telecom = [dict(p) for p in updated.get("telecom") or []]
    emails = [p for p in telecom if p.get("system") == "email"]
    if emails:
        emails[0]["value"] = data.email
    elif data.email:
        telecom.append({"system": "email", "value": data.email, "use": "home"})
    phones = [p for p in telecom if p.get("system") == "phone"]
    mobile = next((p for p in phones if p.get("use") == "mobile"), phones[0] if phones else None)
    if mobile is not None and data.mobile:
        mobile["value"] = data.mobile
    elif mobile is not None:
        telecom.remove(mobile)
    elif data.mobile:
        telecom.append({"system": "phone", "value": data.mobile, "use": "mobile"})
    updated["telecom"] = [p for p in telecom if p.get("value")]
    if not updated["telecom"]:
        updated.pop("telecom")

    if data.language:
        communication = [dict(c) for c in updated.get("communication") or []]
        found = False
        for item in communication:
            codes = [str(c.get("code") or "").split("-")[0].lower()
                     for c in (item.get("language") or {}).get("coding", [])]
            item["preferred"] = data.language in codes
            found = found or data.language in codes
        if not found:
            communication.append({
                "language": {
                    "coding": [{"system": LANGUAGE_SYSTEM, "code": data.language,
                                "display": LANGUAGE_NAMES[data.language]}],
                    "text": LANGUAGE_NAMES[data.language],
                },
                "preferred": True,
            })
        updated["communication"] = communication
    return updated


async def update_profile(scope: PatientScope, data: ProfileData, version: str) -> Profile:
    """Write the profile with If-Match ``version``; FhirConflict when the record moved on."""
    current = await scope.patient(fresh=True)
    if version_of(current) != version:
        raise FhirConflict("the Patient changed since the form was shown")
    updated = await scope.update(apply_profile(current, data), if_match=version)
    return profile_of(updated)


# -- self-registration --------------------------------------------------------------------
def new_patient(data: ProfileData, registration_id: str) -> Resource:
    """A Patient for a self-registered person, with a business identifier (retry-safe)."""
    resource: Resource = {
        "resourceType": "Patient",
        "identifier": [{"system": REGISTRATION_SYSTEM, "value": registration_id}],
        "active": True,
    }
    return apply_profile(resource, data)


async def register_patient(gateway: FhirGateway, data: ProfileData, registration_id: str) -> str:
    """Create (once, even when retried) the Patient of a registration; its id."""
    created = await gateway.create(
        new_patient(data, registration_id),
        if_none_exist=f"identifier={REGISTRATION_SYSTEM}|{registration_id}",
    )
    if created.get("resourceType") != "Patient" or not created.get("id"):
        # a conditional create that matched may answer without a body on some servers
        page = await gateway.search(
            "Patient", {"identifier": f"{REGISTRATION_SYSTEM}|{registration_id}"}, fresh=True
        )
        if not page.resources:
            raise FhirError("the new Patient could not be found after it was created")
        return str(page.resources[0]["id"])
    return str(created["id"])


async def patient_exists(gateway: FhirGateway, patient_id: str) -> bool:
    try:
        resource = await gateway.read("Patient", patient_id, fresh=True)
    except FhirNotFound:
        return False
    return resource.get("active", True) is not False
