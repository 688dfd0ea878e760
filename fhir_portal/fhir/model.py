"""Small helpers to read FHIR JSON the way any valid R4 record may be written.

Every optional element may be missing; codes may come without a display; references may
point at nothing on the server. These helpers never raise on such data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

Json = dict[str, Any]


def codeable_text(concept: Json | None, default: str = "") -> str:
    """CodeableConcept.text, then the first coding.display, then the first code."""
    if not concept:
        return default
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []):
        if coding.get("display"):
            return str(coding["display"])
    for coding in concept.get("coding", []):
        if coding.get("code"):
            return str(coding["code"])
    return default


def codeable_texts(concepts: list[Json] | None) -> list[str]:
    return [text for text in (codeable_text(c) for c in concepts or []) if text]


def has_code(concept: Json | None, system: str, code: str) -> bool:
    return any(
        c.get("system") == system and c.get("code") == code
        for c in (concept or {}).get("coding", [])
    )


def human_name(names: list[Json] | None, default: str = "") -> str:
    """The official (else usual, else first) name as one line."""
    if not names:
        return default
    ranked = sorted(names, key=lambda n: {"official": 0, "usual": 1}.get(n.get("use", ""), 2))
    name = ranked[0]
    if name.get("text"):
        return str(name["text"])
    parts = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
    return " ".join(p for p in parts if p) or default


def telecom(points: list[Json] | None, system: str) -> str | None:
    """The first (preferring rank 1, then use home/mobile) contact point of a system."""
    matching = [p for p in points or [] if p.get("system") == system and p.get("value")]
    if not matching:
        return None
    matching.sort(key=lambda p: (p.get("rank", 99), p.get("use") not in ("mobile", "home")))
    return str(matching[0]["value"])


def reference_display(reference: Json | None, default: str = "") -> str:
    if not reference:
        return default
    return str(reference.get("display") or reference.get("reference") or default)


def reference_id(reference: Json | None, resource_type: str | None = None) -> str | None:
    """The id of a relative (or absolute) literal reference, optionally of one type."""
    value = (reference or {}).get("reference")
    if not value or value.startswith("#") or "/" not in value:
        return None
    kind, ident = value.rstrip("/").split("/")[-2:]
    if resource_type and kind != resource_type:
        return None
    return ident


def contained(resource: Json, reference: Json | None) -> Json | None:
    """A contained resource a ``#id`` reference points at."""
    value = (reference or {}).get("reference") or ""
    if not value.startswith("#"):
        return None
    for item in resource.get("contained", []):
        if item.get("id") == value[1:]:
            return item
    return None


def parse_datetime(value: str | None) -> datetime | None:
    """A FHIR date or dateTime (any precision) as a datetime, or None."""
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    for candidate in (text, text + "-01", text + "-01-01"):
        try:
            if len(candidate) <= 10:
                return datetime.combine(date.fromisoformat(candidate), datetime.min.time())
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    return None
