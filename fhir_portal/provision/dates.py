"""Relative dates in fixture files.

Fixture files are written once but loaded on any day, so dates that must sit around
"today" (due activities, recent visits, upcoming appointments) are written as tokens:

* ``${today}``, ``${today+3}``, ``${today-30}``: a FHIR ``date`` (YYYY-MM-DD);
* ``${today+3T09:30}``: a FHIR ``dateTime`` at that local time in the portal's time zone,
  with its UTC offset (e.g. ``2026-11-28T09:30:00+01:00``).

A token must be the whole string value. Everything else is left as it is.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

_TOKEN = re.compile(r"^\$\{today(?:([+-])(\d+))?(?:T(\d{2}):(\d{2}))?\}$")


def expand_token(value: str, today: date, tz: ZoneInfo) -> str:
    match = _TOKEN.match(value)
    if match is None:
        return value
    sign, days, hour, minute = match.groups()
    offset = int(days or 0) * (-1 if sign == "-" else 1)
    day = today + timedelta(days=offset)
    if hour is None:
        return day.isoformat()
    moment = datetime.combine(day, time(int(hour), int(minute)), tzinfo=tz)
    return moment.isoformat(timespec="seconds")


def expand(value: Any, today: date, tz: ZoneInfo) -> Any:
    """Return a copy of a JSON value with every date token replaced."""
    if isinstance(value, str):
        return expand_token(value, today, tz) if value.startswith("${") else value
    if isinstance(value, list):
        return [expand(item, today, tz) for item in value]
    if isinstance(value, dict):
        return {key: expand(item, today, tz) for key, item in value.items()}
    return value
