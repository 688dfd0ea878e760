"""The FHIR gateway: the only code that talks to the FHIR server (and imports fhirpy)."""

from fhir_portal.fhir.errors import (
    FhirConflict,
    FhirError,
    FhirForbidden,
    FhirInvalid,
    FhirNotFound,
    FhirUnavailable,
)
from fhir_portal.fhir.gateway import FhirGateway, SearchPage
from fhir_portal.fhir.scope import PatientScope

__all__ = [
    "FhirConflict",
    "FhirError",
    "FhirForbidden",
    "FhirGateway",
    "FhirInvalid",
    "FhirNotFound",
    "FhirUnavailable",
    "PatientScope",
    "SearchPage",
]
