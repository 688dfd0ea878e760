"""Domain errors of the FHIR gateway; the error middleware maps them to pages."""

from __future__ import annotations

from typing import Any


class FhirError(Exception):
    """Something went wrong talking to the FHIR server."""

    def __init__(self, message: str, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome

    @property
    def issues(self) -> list[str]:
        """Diagnostics of the OperationOutcome, if the server sent one."""
        if not self.outcome:
            return []
        return [
            str(issue.get("diagnostics") or issue.get("details", {}).get("text") or "")
            for issue in self.outcome.get("issue", [])
        ]


class FhirUnavailable(FhirError):
    """The FHIR server cannot be reached or answers with a server error."""


class FhirNotFound(FhirError):
    """No such resource, or not one the caller may see (both look the same)."""


class FhirConflict(FhirError):
    """A versioned write lost against a concurrent change (HAPI 409, FHIR 412)."""


class FhirInvalid(FhirError):
    """The server refused the resource or the request as invalid (400/422)."""


class FhirForbidden(FhirError):
    """The caller may not do this (a write outside the patient's compartment, 401/403)."""
