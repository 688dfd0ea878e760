"""Small helpers to read FHIR JSON the way any valid R4 record may be written.

Every optional element may be missing; codes may come without a display; references may
point at nothing on the server. These helpers never raise on such data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
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


def reference_key(reference: Json | str | None) -> str:
    """``Type/id`` of a relative or absolute literal reference (a Reference or its string);
    "" for a contained (``#id``), missing or malformed one. Absolute URLs and ``_history``
    are not told apart from relative ones: ``http://x/fhir/Patient/1`` gives ``Patient/1``.
    """
    value = reference.get("reference") if isinstance(reference, dict) else reference
    if not value or not isinstance(value, str) or value.startswith("#"):
        return ""
    parts = value.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return ""
    return f"{parts[-2]}/{parts[-1]}"


def reference_id(reference: Json | None, resource_type: str | None = None) -> str | None:
    """The id of a relative (or absolute) literal reference, optionally of one type."""
    key = reference_key(reference)
    if not key:
        return None
    kind, ident = key.split("/")
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


def aware(moment: datetime | None, tz: tzinfo = UTC) -> datetime | None:
    """``moment`` with a time zone: a naive value (a FHIR date, or a dateTime written
    without an offset) is taken to be in ``tz`` (UTC unless given)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=tz)
    return moment


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The start of ``day`` and of the next day in ``tz`` (a local day may last 23 or 25 h)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)


def end_of(value: str | None, tz: Any) -> datetime | None:
    """The instant a FHIR date/dateTime *ends*, as an aware datetime.

    A date-only value (``2026-11-25``, ``2026-11`` or ``2026``) lasts until the end of that
    day, month or year in ``tz``; a dateTime without an offset is read in ``tz``.
    """
    if not value:
        return None

    if len(value) <= 10:
        parts = value.split("-")
        try:
            year = int(parts[0])
            if len(parts) == 1:
                first_after = date(year + 1, 1, 1)
            elif len(parts) == 2:
                month = int(parts[1])
                first_after = date(year + (month == 12), month % 12 + 1, 1)
            else:
                first_after = date.fromisoformat(value) + timedelta(days=1)
        except ValueError:
            return None
        return datetime.combine(first_after, datetime.min.time(), tzinfo=tz)
    moment = parse_datetime(value)
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def start_of(value: str | None, tz: Any) -> datetime | None:
    """The instant a FHIR date/dateTime begins, as an aware datetime (dates in ``tz``)."""
    moment = parse_datetime(value)
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def attachment_text(attachment: Json | None, *, limit: int = 200_000) -> str | None:
    """The text of an Attachment's inline ``data`` when it is text (text/*, or no type).

    Returns None for binary content or undecodable data; the charset in the content
    type is honoured (UTF-8 by default).
    """
    import base64
    import binascii

    if not attachment or not attachment.get("data"):
        return None
    content_type = str(attachment.get("contentType") or "text/plain").lower()
    mime, _, params = content_type.partition(";")
    if not (mime.strip().startswith("text/") or mime.strip() in ("application/json", "")):
        return None
    charset = "utf-8"
    for param in params.split(";"):
        key, _, val = param.strip().partition("=")
        if key == "charset" and val:
            charset = val.strip('"')
    try:
        raw = base64.b64decode(str(attachment["data"]), validate=False)[:limit]
        return raw.decode(charset, errors="replace")
    except (binascii.Error, LookupError, ValueError):
        return None


def narrative_text(narrative: Json | None) -> str:
    """Plain text of a Narrative's XHTML ``div`` (tags dropped, block ends as new lines)."""
    import html
    import re

    div = str((narrative or {}).get("div") or "")
    if not div:
        return ""
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])>", "\n", div)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [" ".join(line.split()) for line in html.unescape(text).splitlines()]
    return "\n".join(line for line in lines if line)
