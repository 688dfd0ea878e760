"""Care-plan activities: current, completed and overdue, and marking one done.

An activity is a ``CarePlan.activity`` with a ``detail``, or one that references a Task.
FHIR has no "overdue" status: an activity is overdue when it is not completed, cancelled
or stopped and its scheduled end (``scheduledPeriod.end``, the Timing's bounds end, the
last Timing event, or the Task's ``restriction.period.end``) lies before now; a date-only
end lasts until the end of that day in the patient's time zone.

Marking done writes the status back with a versioned update from the version the page
was rendered from; a concurrent change answers ``FhirConflict`` and the page asks again.
Marking an activity that is already completed changes nothing.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from fhir_portal.fhir import FhirConflict, FhirError, FhirNotFound, PatientScope
from fhir_portal.fhir.gateway import Resource, SearchPage, version_of
from fhir_portal.fhir.model import (
    codeable_text,
    day_bounds,
    end_of,
    has_code,
    reference_display,
    reference_id,
    start_of,
)

PLAN_STATUSES = ("active", "on-hold")
DONE = {"completed"}
CLOSED = {"cancelled", "stopped", "rejected", "failed", "revoked"}
TASK_CODE_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/task-code"


@dataclass(frozen=True)
class Activity:
    """One activity as the patient sees it."""

    key: str  # "careplan:<id>:<index>" or "task:<id>"
    source: str  # "careplan" | "task"
    resource_id: str  # the CarePlan or Task that holds the status
    index: int  # the activity's index in CarePlan.activity (-1 for a Task)
    version: str | None  # meta.versionId of that resource when read
    title: str
    description: str | None
    status: str  # the FHIR status code (detail.status or Task.status)
    state: str  # "current" | "overdue" | "completed" | "cancelled"
    kind: str | None
    plan_title: str
    plan_id: str
    start: datetime | None
    end: datetime | None
    date_only: bool  # the schedule was given as dates without a time
    schedule_text: str | None
    performers: list[str]
    location: str | None
    self_care: bool

    @property
    def can_mark_done(self) -> bool:
        return self.self_care and self.state in ("current", "overdue")

    def is_on(self, day_start: datetime, day_end: datetime) -> bool:
        """Whether the schedule touches the day [day_start, day_end)."""
        if self.start is None and self.end is None:
            return False
        starts_before_end = self.start is None or self.start < day_end
        ends_after_start = self.end is None or self.end > day_start
        return starts_before_end and ends_after_start


@dataclass(frozen=True)
class ActivityOverview:
    current: list[Activity]
    overdue: list[Activity]
    completed: list[Activity]
    cancelled: list[Activity]

    @property
    def total(self) -> int:
        return len(self.current) + len(self.overdue) + len(self.completed) + len(self.cancelled)


def _date_only(value: str | None) -> bool:
    return bool(value) and len(str(value)) <= 10


def _schedule(detail: Resource, tz: tzinfo) -> tuple[datetime | None, datetime | None, bool, str | None]:
    """(start, end, date_only, free text) of a CarePlan activity detail's schedule."""
    period = detail.get("scheduledPeriod")
    timing = detail.get("scheduledTiming")
    if isinstance(period, dict):
        start, end = period.get("start"), period.get("end")
        return start_of(start, tz), end_of(end, tz), _date_only(end or start), None
    if isinstance(timing, dict):
        repeat = timing.get("repeat") or {}
        bounds = repeat.get("boundsPeriod") or {}
        events = sorted(str(e) for e in timing.get("event", []) if e)
        start = bounds.get("start") or (events[0] if events else None)
        end = bounds.get("end") or (events[-1] if events else None)
        text = codeable_text(timing.get("code")) or None
        return start_of(start, tz), end_of(end, tz), _date_only(end or start), text
    text = detail.get("scheduledString")
    return None, None, False, str(text) if text else None


def _state(status: str, end: datetime | None, now: datetime) -> str:
    if status in DONE:
        return "completed"
    if status in CLOSED:
        return "cancelled"
    if end is not None and end <= now:
        return "overdue"
    return "current"


def _points_at(reference: Any, target: str) -> bool:
    value = str((reference or {}).get("reference") or "") if isinstance(reference, dict) else ""
    return value == target or value.endswith("/" + target)


def _detail_activity(
    plan: Resource, index: int, detail: Resource, scope: PatientScope, tz: tzinfo, now: datetime
) -> Activity:
    start, end, date_only, text = _schedule(detail, tz)
    status = str(detail.get("status") or "unknown")
    performers = detail.get("performer", [])
    kind = detail.get("kind")
    self_care = any(_points_at(p, scope.patient_ref) for p in performers) or (
        not performers and kind in (None, "Task")
    )
    title = (
        codeable_text(detail.get("code"))
        or codeable_text(detail.get("productCodeableConcept"))
        or str(detail.get("description") or "")
    )
    description = detail.get("description")
    return Activity(
        key=f"careplan:{plan.get('id')}:{index}",
        source="careplan",
        resource_id=str(plan.get("id")),
        index=index,
        version=version_of(plan),
        title=title,
        description=str(description) if description and description != title else None,
        status=status,
        state=_state(status, end, now),
        kind=str(kind) if kind else None,
        plan_title=_plan_title(plan),
        plan_id=str(plan.get("id")),
        start=start,
        end=end,
        date_only=date_only,
        schedule_text=text,
        performers=[
            reference_display(p)
            for p in performers
            if p.get("display") and not _points_at(p, scope.patient_ref)
        ],
        location=reference_display(detail.get("location"))
        if (detail.get("location") or {}).get("display")
        else None,
        self_care=self_care,
    )


def _task_activity(
    plan: Resource, task: Resource, label: str, scope: PatientScope, tz: tzinfo, now: datetime
) -> Activity:
    period = (task.get("restriction") or {}).get("period") or {}
    start, end = start_of(period.get("start"), tz), end_of(period.get("end"), tz)
    status = str(task.get("status") or "unknown")
    owner = task.get("owner")
    self_care = has_code(task.get("code"), TASK_CODE_SYSTEM, "self-care") or _points_at(
        owner, scope.patient_ref
    )
    title = str(task.get("description") or codeable_text(task.get("code")) or label)
    performers = (
        []
        if _points_at(owner, scope.patient_ref) or not (owner or {}).get("display")
        else [reference_display(owner)]
    )
    notes = [str(n["text"]) for n in task.get("note", []) if n.get("text")]
    return Activity(
        key=f"task:{task.get('id')}",
        source="task",
        resource_id=str(task.get("id")),
        index=-1,
        version=version_of(task),
        title=title,
        description=" ".join(notes) or None,
        status=status,
        state=_state(status, end, now),
        kind="Task",
        plan_title=_plan_title(plan),
        plan_id=str(plan.get("id")),
        start=start,
        end=end,
        date_only=_date_only(period.get("end") or period.get("start")),
        schedule_text=None,
        performers=performers,
        location=None,
        self_care=self_care,
    )


def _plan_title(plan: Resource) -> str:
    return str(
        plan.get("title")
        or next((codeable_text(c) for c in plan.get("category", []) if codeable_text(c)), "")
        or plan.get("description")
        or ""
    )


def activities_of(
    plans: list[Resource], tasks: dict[str, Resource], scope: PatientScope, tz: tzinfo, now: datetime
) -> list[Activity]:
    """Every activity of the given plans (referenced Tasks looked up in ``tasks``)."""
    result: list[Activity] = []
    for plan in plans:
        for index, activity in enumerate(plan.get("activity", [])):
            detail = activity.get("detail")
            if isinstance(detail, dict):
                if detail.get("status") == "entered-in-error" or detail.get("doNotPerform") is True:
                    continue
                result.append(_detail_activity(plan, index, detail, scope, tz, now))
                continue
            reference = activity.get("reference") or {}
            task_id = reference_id(reference, "Task")
            task = tasks.get(task_id or "")
            if task is None or task.get("status") == "entered-in-error":
                continue
            result.append(_task_activity(plan, task, reference_display(reference), scope, tz, now))
    return result


async def _load(scope: PatientScope, *, fresh: bool = False) -> tuple[list[Resource], dict[str, Resource]]:
    """The patient's active care plans and the Tasks their activities reference."""
    page: SearchPage = await scope.search(
        "CarePlan",
        {"status": ",".join(PLAN_STATUSES), "_include": "CarePlan:activity-reference", "_count": "100"},
        all_pages=True,
        single_page=True,  # fresh, and cheaper for the server: one page holds a patient's plans
    )
    return page.resources, await referenced_tasks(scope, page.resources, page.included, fresh=fresh)


TASK_BATCH = 100


async def referenced_tasks(
    scope: PatientScope, plans: list[Resource], included: dict[str, Resource], *,
    fresh: bool = False,
) -> dict[str, Resource]:
    """The Tasks the plans' activities reference, by id: those the plan search included,
    the rest with one ``_id=a,b,c`` search in the patient's compartment (a Task that is not
    there, or not the patient's, is simply left out)."""
    tasks = {key.split("/", 1)[1]: r for key, r in included.items() if key.startswith("Task/")}
    missing = sorted(
        {
            task_id
            for plan in plans
            for activity in plan.get("activity", [])
            if (task_id := reference_id(activity.get("reference"), "Task")) and task_id not in tasks
        }
    )
    chunks = [missing[i:i + TASK_BATCH] for i in range(0, len(missing), TASK_BATCH)]
    pages = await asyncio.gather(
        *(scope.search("Task", {"_id": ",".join(c), "_count": str(len(c))}, fresh=fresh)
          for c in chunks),
        return_exceptions=True,
    )
    for page in pages:
        if isinstance(page, FhirError):
            continue  # as before: an unreadable Task leaves its activity without one
        if isinstance(page, BaseException):
            raise page
        tasks.update({str(t["id"]): t for t in page.resources if str(t.get("id")) in missing})
    return tasks


def _sort_key(activity: Activity) -> tuple[float, str]:
    moment = activity.end or activity.start
    return (moment.timestamp() if moment else float("inf"), activity.title.lower())


async def overview(
    scope: PatientScope, tz: tzinfo, *, now: datetime | None = None, fresh: bool = False
) -> ActivityOverview:
    """All activities, grouped: overdue (oldest first), current, completed, cancelled."""
    now = now or datetime.now(UTC)
    plans, tasks = await _load(scope, fresh=fresh)
    items = activities_of(plans, tasks, scope, tz, now)
    groups: dict[str, list[Activity]] = {"current": [], "overdue": [], "completed": [], "cancelled": []}
    for item in items:
        groups[item.state].append(item)
    for name in ("current", "overdue"):
        groups[name].sort(key=_sort_key)
    for name in ("completed", "cancelled"):
        groups[name].sort(key=_sort_key, reverse=True)
    return ActivityOverview(**groups)


@dataclass(frozen=True)
class TodaysActivities:
    today: list[Activity]
    overdue: int


async def today(scope: PatientScope, tz: tzinfo, *, now: datetime | None = None) -> TodaysActivities:
    """Open activities scheduled for today (in ``tz``) and how many are overdue."""
    now = now or datetime.now(UTC)
    groups = await overview(scope, tz, now=now)
    day_start, day_end = day_bounds(now.astimezone(tz).date(), tz)
    todays = [a for a in groups.current + groups.overdue if a.is_on(day_start, day_end)]
    todays.sort(key=_sort_key)
    return TodaysActivities(today=todays, overdue=len(groups.overdue))


# -- marking done --------------------------------------------------------------------
class ActivityChanged(Exception):
    """The activity changed since the page was shown (a version conflict): ask again."""


class NotSelfCare(Exception):
    """The activity is not one the patient performs, so the patient cannot mark it done."""


@dataclass(frozen=True)
class MarkResult:
    activity_title: str
    already_done: bool


def _same_activity(detail: Any, title: str) -> bool:
    if not isinstance(detail, dict):
        return False
    current = (
        codeable_text(detail.get("code"))
        or codeable_text(detail.get("productCodeableConcept"))
        or str(detail.get("description") or "")
    )
    return not title or current == title


async def mark_done(
    scope: PatientScope,
    *,
    source: str,
    resource_id: str,
    index: int,
    version: str | None,
    title: str,
    tz: tzinfo,
    now: datetime | None = None,
) -> MarkResult:
    """Mark a self-care activity completed with a versioned update from ``version``.

    Already completed: nothing is written. Changed since ``version`` (or the activity at
    ``index`` is no longer the one shown): ``ActivityChanged``. Not the patient's own
    activity: ``NotSelfCare``. Not the patient's resource: ``FhirNotFound``.
    """
    now = now or datetime.now(UTC)
    if source == "task":
        task = await scope.read("Task", resource_id, fresh=True)
        if task.get("status") in DONE:
            return MarkResult(str(task.get("description") or title), already_done=True)
        if not _task_is_self_care(task, scope):
            raise NotSelfCare(resource_id)
        updated = copy.deepcopy(task)
        updated["status"] = "completed"
        updated["lastModified"] = now.astimezone(UTC).isoformat(timespec="seconds")
        try:
            await scope.update(updated, if_match=version)
        except FhirConflict as exc:
            raise ActivityChanged(resource_id) from exc
        return MarkResult(str(task.get("description") or title), already_done=False)
    if source != "careplan":
        raise FhirNotFound("unknown activity source")
    plan = await scope.read("CarePlan", resource_id, fresh=True)
    activities = plan.get("activity", [])
    if not 0 <= index < len(activities):
        raise ActivityChanged(resource_id)
    detail = activities[index].get("detail")
    if not _same_activity(detail, title):
        raise ActivityChanged(resource_id)
    assert isinstance(detail, dict)
    if detail.get("status") in DONE:
        return MarkResult(title, already_done=True)
    activity = _detail_activity(plan, index, detail, scope, tz, now)
    if not activity.self_care:
        raise NotSelfCare(resource_id)
    updated = copy.deepcopy(plan)
    updated["activity"][index]["detail"]["status"] = "completed"
    try:
        await scope.update(updated, if_match=version)
    except FhirConflict as exc:
        raise ActivityChanged(resource_id) from exc
    return MarkResult(activity.title, already_done=False)


def _task_is_self_care(task: Resource, scope: PatientScope) -> bool:
    return has_code(task.get("code"), TASK_CODE_SYSTEM, "self-care") or _points_at(
        task.get("owner"), scope.patient_ref
    )
