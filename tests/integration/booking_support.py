"""Helpers for the booking tests: fresh patients and a private free slot on a real schedule."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fhir_portal.fhir import FhirGateway

TZ = ZoneInfo("Europe/Copenhagen")


async def new_patient(gateway: FhirGateway, *, email: str | None = None,
                      mobile: str | None = None) -> str:
    telecom = []
    if email:
        telecom.append({"system": "email", "value": email})
    if mobile:
        telecom.append({"system": "phone", "value": mobile, "use": "mobile"})
    created = await gateway.create({
        "resourceType": "Patient",
        "name": [{"family": "Booking", "given": [f"Test{uuid.uuid4().hex[:4]}"]}],
        "telecom": telecom,
    })
    return str(created["id"])


async def private_slot(gateway: FhirGateway, schedule_id: str = "sched-mette-hansen", *,
                       days_ahead: int | None = None) -> dict:
    """A free Slot on a real schedule at an odd early-morning time nobody else offers."""
    schedule = await gateway.read("Schedule", schedule_id)
    days = days_ahead if days_ahead is not None else random.randint(2, 20)
    day = (datetime.now(TZ) + timedelta(days=days)).date()
    minute = random.randint(0, 59)
    start = datetime(day.year, day.month, day.day, 6, minute, tzinfo=TZ)
    slot = {
        "resourceType": "Slot",
        "id": f"slot-test-{uuid.uuid4().hex[:12]}",
        "schedule": {"reference": f"Schedule/{schedule_id}"},
        "status": "free",
        "start": start.isoformat(timespec="seconds"),
        "end": (start + timedelta(minutes=15)).isoformat(timespec="seconds"),
        "specialty": schedule["specialty"],
        "serviceType": schedule["serviceType"],
    }
    return await gateway.update(slot)
