"""Activities from care plans: overdue is computed from the scheduled end (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from fhir_portal.fhir.model import end_of
from fhir_portal.resources.activities import activities_of, day_bounds

TZ = ZoneInfo("Europe/Copenhagen")
PID = "pat-unit"
ME = {"reference": f"Patient/{PID}"}


class FakeScope:
    patient_id = PID
    patient_ref = f"Patient/{PID}"


def plan(*activities: dict, status: str = "active") -> dict:
    return {
        "resourceType": "CarePlan",
        "id": "cp1",
        "meta": {"versionId": "3"},
        "status": status,
        "intent": "plan",
        "subject": ME,
        "title": "Plan",
        "activity": list(activities),
    }


def detail(status: str = "not-started", **extra: object) -> dict:
    return {"detail": {"status": status, "code": {"text": "Do it"}, "performer": [ME], **extra}}


def one(activity: dict, now: datetime, tasks: dict | None = None) -> object:
    items = activities_of([plan(activity)], tasks or {}, FakeScope(), TZ, now)  # type: ignore[arg-type]
    assert len(items) == 1
    return items[0]


def test_date_only_end_lasts_until_the_end_of_that_day_in_the_patients_time_zone() -> None:
    activity = detail(scheduledPeriod={"end": "2026-11-25"})
    # 23:30 Copenhagen time on the 25th (22:30 UTC): still current
    assert one(activity, datetime(2026, 11, 25, 22, 30, tzinfo=UTC)).state == "current"
    # 00:30 Copenhagen time on the 26th (23:30 UTC on the 25th): overdue
    assert one(activity, datetime(2026, 11, 25, 23, 30, tzinfo=UTC)).state == "overdue"


def test_end_of_partial_dates_and_datetimes() -> None:
    assert end_of("2026", TZ) == datetime(2027, 1, 1, tzinfo=TZ)
    assert end_of("2026-12", TZ) == datetime(2027, 1, 1, tzinfo=TZ)
    assert end_of("2026-02", TZ) == datetime(2026, 3, 1, tzinfo=TZ)
    assert end_of("2026-11-25T10:00:00+01:00", TZ) == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert end_of("2026-11-25T10:00:00", TZ) == datetime(2026, 11, 25, 10, 0, tzinfo=TZ)
    assert end_of(None, TZ) is None and end_of("garbage", TZ) is None


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("completed", "completed"),
        ("cancelled", "cancelled"),
        ("stopped", "cancelled"),
        ("not-started", "overdue"),
        ("in-progress", "overdue"),
        ("scheduled", "overdue"),
        ("unknown", "overdue"),
    ],
)
def test_only_open_activities_can_be_overdue(status: str, state: str) -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert one(detail(status, scheduledPeriod={"end": "2026-11-20"}), now).state == state


def test_timing_bounds_end_and_events_give_the_end() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    bounded = detail(
        scheduledTiming={
            "repeat": {
                "boundsPeriod": {"start": "2026-11-01", "end": "2026-11-24"},
                "frequency": 1,
                "period": 1,
                "periodUnit": "d",
            }
        }
    )
    assert one(bounded, now).state == "overdue"
    events = detail(scheduledTiming={"event": ["2026-11-20T09:00:00+01:00", "2026-11-30T09:00:00+01:00"]})
    assert one(events, now).state == "current"
    unscheduled = detail(scheduledString="Whenever you can")
    item = one(unscheduled, now)
    assert item.state == "current" and item.schedule_text == "Whenever you can"


def test_a_referenced_task_uses_its_restriction_period_and_status() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    task = {
        "resourceType": "Task",
        "id": "t1",
        "meta": {"versionId": "1"},
        "status": "requested",
        "intent": "plan",
        "for": ME,
        "owner": ME,
        "description": "Watch the video",
        "restriction": {"period": {"end": "2026-11-24"}},
    }
    item = one({"reference": {"reference": "Task/t1"}}, now, {"t1": task})
    assert (item.source, item.state, item.title, item.version) == ("task", "overdue", "Watch the video", "1")
    assert item.can_mark_done
    done = one({"reference": {"reference": "Task/t1"}}, now, {"t1": {**task, "status": "completed"}})
    assert done.state == "completed" and not done.can_mark_done


def test_a_reference_to_a_missing_task_and_entered_in_error_details_are_left_out() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    items = activities_of(
        [plan({"reference": {"reference": "Task/gone"}}, detail("entered-in-error"))],
        {},
        FakeScope(),
        TZ,
        now,  # type: ignore[arg-type]
    )
    assert items == []


def test_only_the_patients_own_activities_can_be_marked_done() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    clinician = {
        "detail": {
            "status": "scheduled",
            "kind": "Appointment",
            "code": {"text": "Visit"},
            "performer": [{"reference": "Practitioner/p1", "display": "Dr. P"}],
        }
    }
    item = one(clinician, now)
    assert not item.self_care and not item.can_mark_done and item.performers == ["Dr. P"]
    own = one(detail(), now)
    assert own.self_care and own.can_mark_done and own.version == "3" and own.index == 0


def test_today_is_the_patients_day() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    start, end = day_bounds(now.astimezone(TZ).date(), TZ)
    todays = one(detail(scheduledPeriod={"start": "2026-11-25", "end": "2026-11-25"}), now)
    tomorrow = one(detail(scheduledPeriod={"start": "2026-11-26", "end": "2026-11-26"}), now)
    ongoing = one(detail(scheduledPeriod={"start": "2026-11-01", "end": "2026-12-01"}), now)
    unscheduled = one(detail(), now)
    assert todays.is_on(start, end) and ongoing.is_on(start, end)
    assert not tomorrow.is_on(start, end) and not unscheduled.is_on(start, end)
