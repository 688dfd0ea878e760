"""Booking benchmark: slot-search latency, booking throughput and p95, double bookings.

Run against a FHIR server with the demo fixtures loaded (e.g. the shared test server):

    .venv/bin/python bench/booking.py --fhir http://127.0.0.1:8092/fhir

It measures, in one run:
1. slot search: the portal's free-slot search for one specialty over two weeks
   (``resources.directory.free_slots``: one Slot search with ``_include=Slot:schedule``
   plus name look-ups) against the same raw FHIR search alone; p50/p95 and their ratio;
2. booking with 20 concurrent patients on 20 different slots (``resources.booking.book``:
   re-validation + one transaction each): throughput (bookings/s), p50/p95 latency, and
   p95 against the p50 of one raw booking transaction measured in the same run;
3. contention: 20 patients confirming ONE slot at once, several rounds; exactly one
   winner per round;
4. double bookings over every slot the run touched (a slot with more than one active
   Appointment, or a busy slot without one, or an Appointment on a free slot): must be 0.
Exit code 0 when there are no double bookings and every contention round had one winner.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fhir_portal.fhir import FhirGateway, PatientScope  # noqa: E402
from fhir_portal.fhir.connection import PooledFhirClient  # noqa: E402
from fhir_portal.fhir.scope import DirectoryReader  # noqa: E402
from fhir_portal.resources import booking, directory  # noqa: E402

TZ = ZoneInfo("Europe/Copenhagen")
SCHEDULE = "sched-mette-hansen"
SPECIALTY = "419772000"
KIND_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/appointment-kind"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def make_patients(gateway: FhirGateway, n: int) -> list[str]:
    created = await asyncio.gather(*(gateway.create({
        "resourceType": "Patient", "name": [{"family": "Bench", "given": [f"B{i}"]}],
    }) for i in range(n)))
    return [str(p["id"]) for p in created]


async def make_slots(gateway: FhirGateway, n: int, schedule: dict) -> list[dict]:
    """Free slots at 05:00–06:59 on days nobody else books at that hour (unique ids)."""
    slots = []
    for _ in range(n):
        day = (datetime.now(TZ) + timedelta(days=random.randint(2, 25))).date()
        start = datetime(day.year, day.month, day.day, 5, 0, tzinfo=TZ) + timedelta(
            minutes=random.randint(0, 119))
        slots.append({
            "resourceType": "Slot", "id": f"slot-bench-{uuid.uuid4().hex[:12]}",
            "schedule": {"reference": f"Schedule/{schedule['id']}"}, "status": "free",
            "start": start.isoformat(timespec="seconds"),
            "end": (start + timedelta(minutes=10)).isoformat(timespec="seconds"),
            "specialty": schedule["specialty"], "serviceType": schedule["serviceType"],
        })
    await gateway.transaction([{"resource": s, "request": {
        "method": "PUT", "url": f"Slot/{s['id']}"}} for s in slots])
    return slots


def values_for(slot: dict) -> dict[str, str]:
    start = datetime.fromisoformat(slot["start"]).astimezone(TZ)
    return {"kind": "clinic", "specialty": SPECIALTY, "postal": "2100",
            "location": "loc-copenhagen", "date": start.date().isoformat(), "slot": slot["id"]}


async def slot_search(gateway: FhirGateway, rounds: int) -> None:
    reader = DirectoryReader(gateway)
    start = datetime.now(UTC)
    end = start + timedelta(days=14)
    raw_params = {
        "status": "free", "specialty": f"http://snomed.info/sct|{SPECIALTY}",
        "service-type": f"{KIND_SYSTEM}|clinic",
        "start": [f"ge{start.isoformat(timespec='seconds')}",
                  f"lt{end.isoformat(timespec='seconds')}"],
        "_include": "Slot:schedule", "_sort": "start", "_count": "200",
    }
    portal, raw = [], []
    found = 0
    for _ in range(3):  # warm-up
        await directory.free_slots(reader, kind="clinic", specialty=SPECIALTY, start=start,
                                   end=end)
    for _ in range(rounds):
        t = time.perf_counter()
        options = await directory.free_slots(reader, kind="clinic", specialty=SPECIALTY,
                                             start=start, end=end)
        portal.append(time.perf_counter() - t)
        found = len(options)
        t = time.perf_counter()
        await gateway.search("Slot", raw_params, fresh=True)
        raw.append(time.perf_counter() - t)
    print(f"Slot search, one specialty over two weeks ({found} free slots shown, "
          f"{rounds} rounds):")
    print(f"  portal free_slots  p50 {ms(statistics.median(portal))}  p95 {ms(pct(portal, .95))}")
    print(f"  raw FHIR search    p50 {ms(statistics.median(raw))}  p95 {ms(pct(raw, .95))}")
    print(f"  ratio portal/raw (p50): {statistics.median(portal) / statistics.median(raw):.2f}")


async def raw_transaction_p50(gateway: FhirGateway, schedule: dict, n: int = 10) -> float:
    """One booking transaction alone (PUT Slot If-Match + POST Appointment), sequentially."""
    patient = (await make_patients(gateway, 1))[0]
    slots = await make_slots(gateway, n, schedule)
    times = []
    for slot in slots:
        current = await gateway.read("Slot", slot["id"], fresh=True)
        busy = {**slot, "status": "busy"}
        t = time.perf_counter()
        await gateway.transaction([
            {"resource": busy, "request": {"method": "PUT", "url": f"Slot/{slot['id']}",
                                           "ifMatch": f'W/"{current["meta"]["versionId"]}"'}},
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": {
                "resourceType": "Appointment", "status": "booked",
                "slot": [{"reference": f"Slot/{slot['id']}"}],
                "start": slot["start"], "end": slot["end"],
                "participant": [{"actor": {"reference": f"Patient/{patient}"},
                                 "status": "accepted"}]},
             "request": {"method": "POST", "url": "Appointment"}},
        ])
        times.append(time.perf_counter() - t)
    return statistics.median(times)


async def throughput(gateway: FhirGateway, schedule: dict, rounds: int,
                     touched: list[str]) -> None:
    latencies: list[float] = []
    booked = 0
    wall = 0.0
    for _ in range(rounds):
        patients = await make_patients(gateway, 20)
        slots = await make_slots(gateway, 20, schedule)
        touched.extend(s["id"] for s in slots)

        async def one(patient: str, slot: dict) -> bool:
            scope = PatientScope(gateway, patient)
            t = time.perf_counter()
            try:
                await booking.book(scope, values_for(slot), key=booking.new_key(), tz=TZ)
            except booking.SlotTaken:
                return False
            finally:
                latencies.append(time.perf_counter() - t)
            return True

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(p, s) for p, s in zip(patients, slots,
                                                                    strict=True)))
        wall += time.perf_counter() - t0
        booked += sum(results)
    single = await raw_transaction_p50(gateway, schedule)
    print(f"Booking, 20 concurrent patients on 20 slots, {rounds} rounds "
          f"({booked}/{20 * rounds} booked):")
    print(f"  throughput {booked / wall:.1f} bookings/s; latency p50 "
          f"{ms(statistics.median(latencies))}, p95 {ms(pct(latencies, .95))}")
    print(f"  one raw booking transaction alone p50 {ms(single)}; "
          f"ratio portal p95 under load / raw p50: {pct(latencies, .95) / single:.1f}")


async def contention(gateway: FhirGateway, schedule: dict, rounds: int,
                     touched: list[str]) -> bool:
    winners_per_round = []
    latencies: list[float] = []
    for _ in range(rounds):
        patients = await make_patients(gateway, 20)
        slot = (await make_slots(gateway, 1, schedule))[0]
        touched.append(slot["id"])

        async def one(patient: str, slot: dict = slot) -> bool:
            t = time.perf_counter()
            try:
                await booking.book(PatientScope(gateway, patient), values_for(slot),
                                   key=booking.new_key(), tz=TZ)
            except booking.SlotTaken:
                return False
            finally:
                latencies.append(time.perf_counter() - t)
            return True

        winners_per_round.append(sum(await asyncio.gather(*(one(p) for p in patients))))
    print(f"Contention, 20 patients confirming one slot at once, {rounds} rounds:")
    print(f"  winners per round {winners_per_round}; confirm latency p50 "
          f"{ms(statistics.median(latencies))}, p95 {ms(pct(latencies, .95))}")
    return all(w == 1 for w in winners_per_round)


async def double_bookings(gateway: FhirGateway, slot_ids: list[str]) -> int:
    bad = 0
    for start in range(0, len(slot_ids), 50):
        chunk = slot_ids[start:start + 50]
        refs = ",".join(f"Slot/{s}" for s in chunk)
        appts = await gateway.search_all("Appointment", {"slot": refs, "_count": "200"},
                                         fresh=True)
        slots = await gateway.search_all("Slot", {"_id": ",".join(chunk), "_count": "200"},
                                         fresh=True)
        active: dict[str, int] = {}
        for a in appts.resources:
            if a.get("status") not in ("cancelled", "entered-in-error", "noshow"):
                for ref in a.get("slot", []):
                    key = str(ref.get("reference", "")).rpartition("/")[2]
                    active[key] = active.get(key, 0) + 1
        for slot in slots.resources:
            count = active.get(slot["id"], 0)
            if count > 1 or (slot["status"] == "busy") != (count == 1):
                bad += 1
    return bad


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhir", default="http://127.0.0.1:8092/fhir")
    parser.add_argument("--search-rounds", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=50)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        gateway = FhirGateway(PooledFhirClient(args.fhir, http))
        schedule = await gateway.read("Schedule", SCHEDULE)
        await slot_search(gateway, args.search_rounds)
        touched: list[str] = []
        await throughput(gateway, schedule, args.rounds, touched)
        one_winner = await contention(gateway, schedule, args.rounds, touched)
        doubles = await double_bookings(gateway, touched)
        print(f"Double bookings over {len(touched)} slots touched: {doubles} (must be 0)")
    return 0 if doubles == 0 and one_winner else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
