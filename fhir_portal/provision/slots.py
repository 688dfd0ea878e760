"""Free appointment slots generated from the Schedules, for the coming weeks.

Working days Monday to Friday, 30-minute slots from 08:00 to 16:00 local time with a
lunch break from 12:00 to 12:30. A deterministic few are already busy (booked through
other channels), so the same day always gives the same slots and ids: topping up is
idempotent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SLOT_MINUTES = 30
DAY_START = time(8, 0)
DAY_END = time(16, 0)
LUNCH = (time(12, 0), time(12, 30))
BUSY_PER_MILLE = 150


def slot_id(schedule_id: str, start: datetime) -> str:
    slug = schedule_id.removeprefix("sched-")
    return f"slot-{slug}-{start.strftime('%Y%m%d%H%M')}"[:64]


def _busy(identifier: str) -> bool:
    digest = hashlib.sha256(identifier.encode()).digest()
    return int.from_bytes(digest[:2], "big") % 1000 < BUSY_PER_MILLE


def _times(day: date, tz: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
    moment = datetime.combine(day, DAY_START, tzinfo=tz)
    end_of_day = datetime.combine(day, DAY_END, tzinfo=tz)
    while moment < end_of_day:
        end = moment + timedelta(minutes=SLOT_MINUTES)
        if not (LUNCH[0] <= moment.time() < LUNCH[1]):
            yield moment, end
        moment = end


def generate_slots(
    schedules: list[dict[str, Any]], first_day: date, days: int, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """Slot resources for every working day in ``[first_day, first_day + days)``."""
    slots: list[dict[str, Any]] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for schedule in schedules:
            if schedule.get("active") is False:
                continue
            for start, end in _times(day, tz):
                identifier = slot_id(schedule["id"], start)
                slot: dict[str, Any] = {
                    "resourceType": "Slot",
                    "id": identifier,
                    "schedule": {"reference": f"Schedule/{schedule['id']}"},
                    "status": "busy" if _busy(identifier) else "free",
                    "start": start.isoformat(timespec="seconds"),
                    "end": end.isoformat(timespec="seconds"),
                }
                for key in ("specialty", "serviceType", "serviceCategory"):
                    if schedule.get(key):
                        slot[key] = schedule[key]
                slots.append(slot)
    return slots
