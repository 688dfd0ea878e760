"""The patient's own Patient resource as the portal shows it."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_portal.fhir import PatientScope
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
