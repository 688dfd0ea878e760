"""load-fixtures against the real server: valid, idempotent, and always free slots ahead."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fhir_portal.provision.loader import LoadReport, fixture_sets, load, validate_resources
from fhir_portal.provision.slots import generate_slots

TYPES = [
    "CodeSystem", "ValueSet", "StructureDefinition", "Organization", "Location", "Practitioner",
    "PractitionerRole", "Schedule", "Patient", "Condition", "CarePlan", "Communication",
    "DocumentReference", "Slot",
]


async def _counts(gateway) -> dict[str, int]:
    counts = {}
    for resource_type in TYPES:
        page = await gateway.search(resource_type, {"_summary": "count"}, fresh=True)
        counts[resource_type] = page.total or 0
    return counts


async def test_a_second_load_leaves_the_same_counts(gateway, settings):
    before = await _counts(gateway)
    report = await load(gateway, settings)
    after = await _counts(gateway)
    assert after == before
    assert report.slots_created == 0
    assert report.skipped > 0  # patient records already there are not rewritten


async def test_every_fixture_resource_passes_validate(gateway, settings):
    tz = ZoneInfo(settings.timezone)
    groups = fixture_sets(datetime.now(tz).date(), tz)
    resources = [r for group in groups.values() for r in group]
    assert len(resources) > 150
    schedules = [r for r in groups["directory"] if r["resourceType"] == "Schedule"]
    slots = generate_slots(schedules, datetime.now(tz).date(), 7, tz)
    sample = random.Random(7).sample(slots, 10)
    report = LoadReport()
    await validate_resources(gateway, resources + sample, report)
    assert report.validated == len(resources) + 10
    assert report.validation_errors == []


async def test_validate_reports_errors_for_a_broken_resource(gateway):
    report = LoadReport()
    broken = {"resourceType": "Appointment", "id": "broken-appt", "participant": [],
              "meta": {"profile": [
                  "http://fhir-portal.example.org/fhir/StructureDefinition/portal-appointment"]}}
    await validate_resources(gateway, [broken], report)
    assert report.validation_errors, "an Appointment without status must not validate"


async def test_free_slots_exist_in_each_of_the_coming_weeks(gateway, settings):
    tz = ZoneInfo(settings.timezone)
    today = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    for week in range(3):
        start = today + timedelta(days=1 + 7 * week)
        end = start + timedelta(days=7)
        page = await gateway.search(
            "Slot",
            {"status": "free", "start": [f"ge{start.isoformat()}", f"lt{end.isoformat()}"],
             "_summary": "count"},
            fresh=True,
        )
        assert (page.total or 0) > 100, f"week {week}: too few free slots"
