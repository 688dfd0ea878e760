"""``fhir-portal load-fixtures``: install profiles/ and fixtures/ on the FHIR server.

Idempotent: conformance resources, the directory and the knowledge articles are written
with PUT (HAPI keeps no new version when nothing changed); a patient's records are only
created when missing, so what the patient or an EHR changed since is never reverted;
slots are topped up so the coming weeks always have free times, and an existing slot
(which may have been booked) is never touched.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from fhir_portal.fhir import FhirGateway
from fhir_portal.fhir.connection import PooledFhirClient
from fhir_portal.provision.dates import expand
from fhir_portal.provision.slots import generate_slots
from fhir_portal.settings import ROOT, Settings

PROFILES_DIR = ROOT / "profiles"
FIXTURES_DIR = ROOT / "fixtures"
SLOT_DAYS = 28
BATCH = 250


@dataclass
class LoadReport:
    written: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    slots_created: int = 0
    validation_errors: list[str] = field(default_factory=list)
    validated: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.validation_errors

    def count(self, resource_type: str, n: int = 1) -> None:
        self.written[resource_type] = self.written.get(resource_type, 0) + n

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {t}" for t, n in sorted(self.written.items()))
        lines = [
            f"Loaded in {self.seconds:.1f} s: {kinds or 'nothing new'}; "
            f"{self.skipped} patient records already present; {self.slots_created} new slots."
        ]
        if self.validated:
            lines.append(f"Validated {self.validated} resources: "
                         f"{len(self.validation_errors)} with errors.")
            lines.extend(f"  {error}" for error in self.validation_errors[:50])
        return "\n".join(lines)


def read_bundle(path: Path, today: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    resources = [entry["resource"] for entry in data.get("entry", [])]
    return [expand(resource, today, tz) for resource in resources]


def fixture_sets(today: date, tz: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    """Every fixture resource, grouped: profiles, directory, articles, patients."""
    groups: dict[str, list[dict[str, Any]]] = {"profiles": [], "directory": [], "articles": [],
                                               "patients": []}
    for path in sorted(PROFILES_DIR.glob("*.json")):
        groups["profiles"].extend(read_bundle(path, today, tz))
    directory = FIXTURES_DIR / "directory.json"
    if directory.exists():
        groups["directory"] = read_bundle(directory, today, tz)
    articles = FIXTURES_DIR / "articles.json"
    if articles.exists():
        groups["articles"] = read_bundle(articles, today, tz)
    for path in sorted((FIXTURES_DIR / "patients").glob("*.json")):
        groups["patients"].extend(read_bundle(path, today, tz))
    return groups


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


async def _put_all(gateway: FhirGateway, resources: list[dict[str, Any]], report: LoadReport) -> None:
    for start in range(0, len(resources), BATCH):
        chunk = resources[start : start + BATCH]
        await gateway.transaction([_put(r) for r in chunk])
        for resource in chunk:
            report.count(resource["resourceType"])


async def _existing_ids(gateway: FhirGateway, resources: list[dict[str, Any]]) -> set[str]:
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource["id"])
    found: set[str] = set()
    for resource_type, ids in by_type.items():
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            page = await gateway.search_all(
                resource_type,
                {"_id": ",".join(chunk), "_elements": "id", "_count": "100"},
                fresh=True,
            )
            found.update(f"{resource_type}/{r['id']}" for r in page.resources)
    return found


async def top_up_slots(gateway: FhirGateway, settings: Settings, today: date) -> int:
    """Create the missing slots of the coming weeks; existing ones are left as they are."""
    tz = ZoneInfo(settings.timezone)
    schedules = (await gateway.search_all("Schedule", {"active": "true", "_count": "200"},
                                          fresh=True)).resources
    wanted = generate_slots(schedules, today, SLOT_DAYS, tz)
    if not wanted:
        return 0
    first = datetime.combine(today, datetime.min.time(), tzinfo=tz).isoformat()
    existing = await gateway.search_all(
        "Slot", {"start": f"ge{first}", "_elements": "id", "_count": "500"},
        fresh=True, max_pages=200,
    )
    have = {slot["id"] for slot in existing.resources}
    missing = [slot for slot in wanted if slot["id"] not in have]
    for start in range(0, len(missing), BATCH):
        await gateway.transaction([_put(slot) for slot in missing[start : start + BATCH]])
    return len(missing)


async def validate_resources(
    gateway: FhirGateway, resources: list[dict[str, Any]], report: LoadReport
) -> None:
    """Run ``$validate`` on each resource; keep error-severity issues."""
    from fhir_portal.fhir import FhirInvalid

    for resource in resources:
        report.validated += 1
        try:
            outcome = await gateway.operation(
                f"{resource['resourceType']}/$validate", method="post", body=resource
            )
        except FhirInvalid as exc:
            outcome = exc.outcome or {}
        for issue in outcome.get("issue", []):
            if issue.get("severity") in ("error", "fatal"):
                report.validation_errors.append(
                    f"{resource['resourceType']}/{resource['id']}: {issue.get('diagnostics')}"
                )


async def load(gateway: FhirGateway, settings: Settings, *, validate: bool = False,
               today: date | None = None) -> LoadReport:
    started = time.perf_counter()
    tz = ZoneInfo(settings.timezone)
    today = today or datetime.now(tz).date()
    report = LoadReport()
    groups = fixture_sets(today, tz)
    await _put_all(gateway, groups["profiles"], report)
    await _put_all(gateway, groups["directory"], report)
    await _put_all(gateway, groups["articles"], report)
    existing = await _existing_ids(gateway, groups["patients"])
    missing = [r for r in groups["patients"] if f"{r['resourceType']}/{r['id']}" not in existing]
    report.skipped = len(groups["patients"]) - len(missing)
    await _put_all(gateway, missing, report)
    report.slots_created = await top_up_slots(gateway, settings, today)
    if validate:
        everything = [r for group in groups.values() for r in group]
        await validate_resources(gateway, everything, report)
    report.seconds = time.perf_counter() - started
    return report


async def load_all(settings: Settings, *, validate: bool = False) -> LoadReport:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        gateway = FhirGateway(PooledFhirClient(settings.effective_fhir_base_url, http))
        return await load(gateway, settings, validate=validate)
