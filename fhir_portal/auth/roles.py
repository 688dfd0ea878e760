"""Web roles and the principal a request acts for."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    AGENT = "agent"
    CLINICIAN = "clinician"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.AGENT, Role.CLINICIAN, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who is signed in: an account, its roles, and the patient or practitioner it is."""

    account_id: int
    email: str
    display_name: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    patient_id: str | None = None
    practitioner_id: str | None = None
    locale: str | None = None
    profile_complete: bool = True

    @property
    def is_patient(self) -> bool:
        return Role.PATIENT in self.roles and self.patient_id is not None

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    def has(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))
