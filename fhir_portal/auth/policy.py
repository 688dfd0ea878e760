"""Password rules: 8 to 128 characters of any script, and not one of the most common."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from fhir_portal.auth.passwords import MAX_LENGTH, MIN_LENGTH
from fhir_portal.i18n import N_

COMMON_PASSWORDS = Path(__file__).parent / "common_passwords.txt"


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    if not COMMON_PASSWORDS.exists():
        return frozenset()
    return frozenset(
        line.strip().lower() for line in COMMON_PASSWORDS.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )


def normalize(password: str) -> str:
    """NFKC, so the same password typed on another keyboard or OS still matches."""
    return unicodedata.normalize("NFKC", password)


def check_password(password: str) -> str | None:
    """None when acceptable, else the (untranslated) reason to show."""
    length = len(normalize(password))
    if length < MIN_LENGTH:
        return N_("Use at least 8 characters.")
    if length > MAX_LENGTH:
        return N_("Use at most 128 characters.")
    if normalize(password).lower() in _common():
        return N_("This password is too common. Choose one that is harder to guess.")
    return None
