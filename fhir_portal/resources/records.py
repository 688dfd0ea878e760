"""The patient's medical record: medications, allergies, conditions, visits, care plans
and care teams, as any EHR may have written them.

Each list reads the whole (bounded) set of the patient's resources of one kind, drops
entered-in-error records, sorts current before past and newest first, and is sliced into
pages here. References are resolved where the portal can (contained resources, the
directory for Medication/Practitioner/PractitionerRole/Organization/Location, the
patient's compartment for Goal); one that points at nothing falls back to its display.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from fhir_portal.fhir import FhirError, PatientScope
from fhir_portal.fhir.gateway import Resource
from fhir_portal.fhir.model import (
    attachment_text,
    codeable_text,
    codeable_texts,
    contained,
    human_name,
    narrative_text,
    parse_datetime,
    reference_display,
    reference_id,
    reference_key,
)
from fhir_portal.resources import activities
from fhir_portal.resources.directory import DirectoryNames

PAGE_SIZE = 20
SEARCH_COUNT = "100"
DIRECTORY_READ_TYPES = ("Medication", "Practitioner", "PractitionerRole", "Organization", "Location")

T = TypeVar("T")


# -- paging -------------------------------------------------------------------------
@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of a sorted list: the items, which page, and how many there are."""

    items: list[T]
    page: int
    pages: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(items: Sequence[T], page: int, size: int = PAGE_SIZE) -> Paged[T]:
    pages = max(1, -(-len(items) // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return Paged(list(items[start : start + size]), page, pages, len(items))


# -- small readers --------------------------------------------------------------------
def _code(concept: Any) -> str:
    """The first code of a CodeableConcept (a status such as clinicalStatus)."""
    for coding in (concept or {}).get("coding", []) if isinstance(concept, dict) else []:
        if coding.get("code"):
            return str(coding["code"])
    return ""


def _sort_key(value: str | None) -> float:
    """Newest first: a sort key from a FHIR date/dateTime (missing sorts last)."""
    moment = parse_datetime(value)
    if moment is None:
        return float("inf")
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return -moment.timestamp()


def _notes(resource: Resource) -> list[str]:
    return [str(n["text"]) for n in resource.get("note", []) if n.get("text")]


def _first(*values: Any) -> str | None:
    for value in values:
        if value:
            return str(value)
    return None


def _references(
    resource: Resource, refs: Iterable[Any], known: dict[str, Resource] | None = None
) -> list[str]:
    """What references name: a contained or known (e.g. Condition) target's code text, else
    the reference's display; a bare id that resolves to nothing is left out."""
    names = []
    for ref in refs:
        if not isinstance(ref, dict):
            continue
        target = contained(resource, ref) or (known or {}).get(reference_key(ref))
        name = ref.get("display") or (codeable_text(target.get("code")) if target else "")
        if name:
            names.append(str(name))
    return names


async def _known_conditions(scope: PatientScope) -> dict[str, Resource]:
    """The patient's conditions by reference, to name reasonReference/addresses targets."""
    return {f"Condition/{c.get('id')}": c for c in await _all(scope, "Condition")}


class _Directory(DirectoryNames):
    """Referenced directory resources, one ``_id`` search per type; a miss is None."""

    def __init__(self, scope: PatientScope) -> None:
        super().__init__(scope.directory, types=DIRECTORY_READ_TYPES, lenient=True)


def _literal_refs(node: Any) -> Iterable[str]:
    """Every literal (non-contained) reference in a JSON tree."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref and not ref.startswith("#"):
            yield ref
        for key, value in node.items():
            if key != "contained":
                yield from _literal_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _literal_refs(item)


async def _load_role_practitioners(directory: _Directory, resources: list[Resource]) -> None:
    """Second round: the Practitioners that referenced PractitionerRoles name."""
    roles = [directory.resource(r) for r in _literal_refs(resources) if "PractitionerRole/" in r]
    await directory.load(_literal_refs([r.get("practitioner") for r in roles if r]))


def _resolve(resource: Resource, reference: Any, directory: _Directory) -> Resource | None:
    """A reference's target: contained first, then what the directory read."""
    if not isinstance(reference, dict):
        return None
    return contained(resource, reference) or directory.resource(reference)


def _person_name(resource: Resource, reference: Any, directory: _Directory) -> str:
    """Who a reference names; a PractitionerRole is named by its practitioner."""
    target = _resolve(resource, reference, directory)
    if target and target.get("resourceType") == "PractitionerRole":
        if isinstance(reference, dict) and reference.get("display"):
            return str(reference["display"])
        practitioner = target.get("practitioner")
        return _party_name(_resolve(target, practitioner, directory), practitioner)
    return _party_name(target, reference)


def _party_name(target: Resource | None, reference: Any) -> str:
    """A person's or organisation's name from the resolved target, else the display."""
    if target:
        kind = target.get("resourceType")
        if kind in ("Practitioner", "Patient", "RelatedPerson"):
            name = human_name(target.get("name"))
            if name:
                return name
        if kind in ("Organization", "Location", "CareTeam", "HealthcareService") and target.get("name"):
            return str(target["name"])
    display = (reference or {}).get("display") if isinstance(reference, dict) else None
    return str(display) if display else ""


async def _all(
    scope: PatientScope, resource_type: str, params: dict[str, str] | None = None
) -> list[Resource]:
    page = await scope.search(resource_type, {"_count": SEARCH_COUNT, **(params or {})}, all_pages=True)
    return page.resources


# -- medications ------------------------------------------------------------------------
MEDICATION_CURRENT = {
    "MedicationStatement": {"active", "intended", "on-hold", "unknown"},
    "MedicationRequest": {"active", "on-hold", "draft", "unknown"},
}


@dataclass(frozen=True)
class MedicationItem:
    id: str
    source: str  # MedicationStatement | MedicationRequest
    name: str
    status: str
    current: bool
    dosage: list[str]
    start: str | None
    end: str | None
    by: str
    reason: list[str]
    notes: list[str]
    form: str | None = None


def _dosage_text(dosage: Resource) -> str:
    if dosage.get("text"):
        text = str(dosage["text"])
    else:
        pieces: list[str] = []
        for dose in dosage.get("doseAndRate", []):
            quantity = dose.get("doseQuantity") or {}
            if quantity.get("value") is not None:
                pieces.append(
                    f"{quantity['value']:g} {quantity.get('unit') or quantity.get('code') or ''}".strip()
                    if isinstance(quantity["value"], int | float)
                    else str(quantity["value"])
                )
        timing = codeable_text((dosage.get("timing") or {}).get("code"))
        if timing:
            pieces.append(timing)
        route = codeable_text(dosage.get("route"))
        if route:
            pieces.append(route)
        text = ", ".join(pieces)
    instruction = dosage.get("patientInstruction")
    if instruction and instruction != text:
        text = f"{text} ({instruction})" if text else str(instruction)
    return text


def _medication(resource: Resource, directory: _Directory) -> tuple[str, str | None]:
    """The medication's name (by code, contained or referenced) and its form."""
    if resource.get("medicationCodeableConcept"):
        return codeable_text(resource["medicationCodeableConcept"]), None
    reference = resource.get("medicationReference")
    target = _resolve(resource, reference, directory)
    if target:
        name = codeable_text(target.get("code")) or reference_display(reference)
        return name, codeable_text(target.get("form")) or None
    return reference_display(reference), None


def medication_item(
    resource: Resource, directory: _Directory, known: dict[str, Resource] | None = None
) -> MedicationItem:
    kind = resource["resourceType"]
    name, form = _medication(resource, directory)
    status = str(resource.get("status") or "unknown")
    if kind == "MedicationStatement":
        dosages = resource.get("dosage", [])
        period = resource.get("effectivePeriod") or {}
        start = _first(period.get("start"), resource.get("effectiveDateTime"), resource.get("dateAsserted"))
        end = period.get("end")
        by_ref = resource.get("informationSource")
    else:
        dosages = resource.get("dosageInstruction", [])
        validity = (resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
        start = _first(resource.get("authoredOn"), validity.get("start"))
        end = validity.get("end")
        by_ref = resource.get("requester")
    by = _party_name(_resolve(resource, by_ref, directory), by_ref)
    reasons = codeable_texts(resource.get("reasonCode")) + _references(
        resource, resource.get("reasonReference", []), known
    )
    return MedicationItem(
        id=str(resource.get("id", "")),
        source=kind,
        name=name,
        status=status,
        current=status in MEDICATION_CURRENT[kind],
        dosage=[text for text in (_dosage_text(d) for d in dosages) if text],
        start=start,
        end=end,
        by=by,
        reason=reasons,
        notes=_notes(resource),
        form=form,
    )


async def medications(scope: PatientScope, *, page: int = 1) -> Paged[MedicationItem]:
    statements, requests, known = await asyncio.gather(
        _all(scope, "MedicationStatement"), _all(scope, "MedicationRequest"), _known_conditions(scope)
    )
    resources = [r for r in statements + requests if r.get("status") != "entered-in-error"]
    directory = _Directory(scope)
    await directory.load(
        ref
        for r in resources
        for ref in _literal_refs(
            [r.get("medicationReference"), r.get("requester"), r.get("informationSource")]
        )
    )
    items = [medication_item(r, directory, known) for r in resources]
    items.sort(key=lambda m: (not m.current, _sort_key(m.start), m.name.lower()))
    return paginate(items, page)


# -- allergies ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Reaction:
    manifestations: list[str]
    severity: str | None
    description: str | None
    substance: str | None


@dataclass(frozen=True)
class AllergyItem:
    id: str
    name: str
    criticality: str | None
    clinical_status: str
    verification: str
    type: str | None
    categories: list[str]
    reactions: list[Reaction]
    onset: str | None
    recorded: str | None
    notes: list[str]
    current: bool


def allergy_item(resource: Resource) -> AllergyItem:
    clinical = _code(resource.get("clinicalStatus"))
    reactions = [
        Reaction(
            manifestations=codeable_texts(r.get("manifestation")),
            severity=r.get("severity"),
            description=r.get("description"),
            substance=codeable_text(r.get("substance")) or None,
        )
        for r in resource.get("reaction", [])
    ]
    onset = _first(
        resource.get("onsetDateTime"),
        (resource.get("onsetPeriod") or {}).get("start"),
        resource.get("onsetString"),
    )
    return AllergyItem(
        id=str(resource.get("id", "")),
        name=codeable_text(resource.get("code")) or _first(*(r.substance for r in reactions)) or "",
        criticality=resource.get("criticality"),
        clinical_status=clinical,
        verification=_code(resource.get("verificationStatus")),
        type=resource.get("type"),
        categories=[str(c) for c in resource.get("category", [])],
        reactions=reactions,
        onset=onset,
        recorded=resource.get("recordedDate"),
        notes=_notes(resource),
        current=clinical not in ("inactive", "resolved"),
    )


CRITICALITY_ORDER = {"high": 0, "unable-to-assess": 1, "low": 2}


async def allergies(scope: PatientScope, *, page: int = 1) -> Paged[AllergyItem]:
    resources = await _all(scope, "AllergyIntolerance")
    items = [allergy_item(r) for r in resources if _code(r.get("verificationStatus")) != "entered-in-error"]
    items.sort(key=lambda a: (not a.current, CRITICALITY_ORDER.get(a.criticality or "", 3), a.name.lower()))
    return paginate(items, page)


# -- conditions ---------------------------------------------------------------------------
CONDITION_PAST = {"inactive", "remission", "resolved"}


@dataclass(frozen=True)
class ConditionItem:
    id: str
    name: str
    clinical_status: str
    verification: str
    categories: list[str]
    severity: str | None
    onset: str | None
    abatement: str | None
    recorded: str | None
    body_sites: list[str]
    notes: list[str]
    current: bool


def _onset(resource: Resource, prefix: str) -> str | None:
    age = resource.get(f"{prefix}Age") or {}
    range_ = resource.get(f"{prefix}Range") or {}
    low = (range_.get("low") or {}).get("value")
    return _first(
        resource.get(f"{prefix}DateTime"),
        (resource.get(f"{prefix}Period") or {}).get("start"),
        resource.get(f"{prefix}String"),
        f"{age['value']:g} {age.get('unit') or 'a'}" if isinstance(age.get("value"), int | float) else None,
        f"{low:g}+ {(range_.get('low') or {}).get('unit') or ''}".strip()
        if isinstance(low, int | float)
        else None,
    )


def condition_item(resource: Resource) -> ConditionItem:
    clinical = _code(resource.get("clinicalStatus"))
    abatement = _onset(resource, "abatement")
    if abatement is None and resource.get("abatementBoolean") is True:
        abatement = ""
    return ConditionItem(
        id=str(resource.get("id", "")),
        name=codeable_text(resource.get("code")),
        clinical_status=clinical,
        verification=_code(resource.get("verificationStatus")),
        categories=codeable_texts(resource.get("category")),
        severity=codeable_text(resource.get("severity")) or None,
        onset=_onset(resource, "onset"),
        abatement=abatement or None,
        recorded=resource.get("recordedDate"),
        body_sites=codeable_texts(resource.get("bodySite")),
        notes=_notes(resource),
        current=clinical not in CONDITION_PAST and not (clinical == "" and abatement is not None),
    )


async def conditions(scope: PatientScope, *, page: int = 1) -> Paged[ConditionItem]:
    resources = await _all(scope, "Condition")
    items = [condition_item(r) for r in resources if _code(r.get("verificationStatus")) != "entered-in-error"]
    items.sort(key=lambda c: (not c.current, _sort_key(c.onset or c.recorded), c.name.lower()))
    return paginate(items, page)


# -- visits ---------------------------------------------------------------------------------
ENCOUNTER_CURRENT = {"planned", "arrived", "triaged", "in-progress", "onleave"}


@dataclass(frozen=True)
class VisitNote:
    title: str
    date: str | None
    author: str
    text: str | None
    url: str | None
    content_type: str | None


@dataclass(frozen=True)
class VisitItem:
    id: str
    type: str
    kind: str
    status: str
    start: str | None
    end: str | None
    practitioners: list[str]
    locations: list[str]
    reasons: list[str]
    organization: str
    has_note: bool
    current: bool
    notes: list[VisitNote] = field(default_factory=list)


def _visit_type(resource: Resource) -> str:
    return (
        _first(*codeable_texts(resource.get("type")))
        or codeable_text(resource.get("serviceType"))
        or codeable_text({"coding": [resource["class"]]} if isinstance(resource.get("class"), dict) else None)
    ) or ""


def visit_item(
    resource: Resource,
    directory: _Directory,
    notes: list[VisitNote] | None = None,
    has_note: bool = False,
    known: dict[str, Resource] | None = None,
) -> VisitItem:
    period = resource.get("period") or {}
    practitioners = [
        _person_name(resource, p.get("individual"), directory) for p in resource.get("participant", [])
    ]
    locations = []
    for entry in resource.get("location", []):
        ref = entry.get("location")
        name = _party_name(_resolve(resource, ref, directory), ref)
        if name:
            locations.append(name)
    reasons = codeable_texts(resource.get("reasonCode")) + _references(
        resource, resource.get("reasonReference", []), known
    )
    organization = _party_name(
        _resolve(resource, resource.get("serviceProvider"), directory), resource.get("serviceProvider")
    )
    status = str(resource.get("status") or "unknown")
    klass: dict[str, Any] = resource["class"] if isinstance(resource.get("class"), dict) else {}
    return VisitItem(
        id=str(resource.get("id", "")),
        type=_visit_type(resource),
        kind=str(klass.get("code") or ""),
        status=status,
        start=period.get("start"),
        end=period.get("end"),
        practitioners=[p for p in practitioners if p],
        locations=locations,
        reasons=reasons,
        organization=organization,
        has_note=has_note or bool(notes),
        current=status in ENCOUNTER_CURRENT,
        notes=notes or [],
    )


def _note_encounters(resource: Resource) -> list[str]:
    """Encounter ids a DocumentReference (context.encounter) or Composition points at."""
    if resource.get("resourceType") == "Composition":
        refs = [resource.get("encounter")]
    else:
        refs = list((resource.get("context") or {}).get("encounter", []))
    return [i for i in (reference_id(r, "Encounter") for r in refs if r) if i]


def _safe_url(value: str | None) -> str | None:
    if value and value.lower().startswith(("https://", "http://")):
        return value
    return None


def document_notes(resource: Resource, directory: _Directory | None = None) -> list[VisitNote]:
    """A DocumentReference's or Composition's notes as text (or a link for a url)."""
    if resource.get("status") == "entered-in-error":
        return []
    authors = resource.get("author", [])
    author = ", ".join(
        n
        for n in (_party_name(_resolve(resource, a, directory) if directory else None, a) for a in authors)
        if n
    )
    if resource.get("resourceType") == "Composition":
        sections = []
        for section in resource.get("section", []):
            text = narrative_text(section.get("text"))
            title = section.get("title") or codeable_text(section.get("code"))
            if text:
                sections.append(f"{title}\n{text}" if title else text)
        body = "\n\n".join(sections) or narrative_text(resource.get("text")) or None
        return [
            VisitNote(
                title=str(resource.get("title") or codeable_text(resource.get("type"))),
                date=resource.get("date"),
                author=author,
                text=body,
                url=None,
                content_type="text/plain",
            )
        ]
    notes = []
    for content in resource.get("content", []):
        attachment = content.get("attachment") or {}
        decoded = attachment_text(attachment)
        url = None if decoded is not None else _safe_url(attachment.get("url"))
        title = _first(
            attachment.get("title"), resource.get("description"), codeable_text(resource.get("type"))
        )
        notes.append(
            VisitNote(
                title=title or "",
                date=_first(resource.get("date"), attachment.get("creation")),
                author=author,
                text=decoded,
                url=url,
                content_type=attachment.get("contentType"),
            )
        )
    return notes


async def _visit_notes_index(scope: PatientScope) -> dict[str, list[Resource]]:
    documents, compositions = await asyncio.gather(
        _all(scope, "DocumentReference"), _all(scope, "Composition")
    )
    index: dict[str, list[Resource]] = {}
    for resource in documents + compositions:
        if resource.get("status") == "entered-in-error":
            continue
        for encounter_id in _note_encounters(resource):
            index.setdefault(encounter_id, []).append(resource)
    return index


async def visits(scope: PatientScope, *, page: int = 1) -> Paged[VisitItem]:
    encounters, notes, known = await asyncio.gather(
        _all(scope, "Encounter"), _visit_notes_index(scope), _known_conditions(scope)
    )
    encounters = [e for e in encounters if e.get("status") != "entered-in-error"]
    encounters.sort(
        key=lambda e: (
            e.get("status") not in ENCOUNTER_CURRENT,
            _sort_key((e.get("period") or {}).get("start")),
        )
    )
    paged = paginate(encounters, page)
    directory = _Directory(scope)
    await directory.load(
        _literal_refs(
            [
                [p.get("individual") for p in e.get("participant", [])]
                + [loc.get("location") for loc in e.get("location", [])]
                + [e.get("serviceProvider")]
                for e in paged.items
            ]
        )
    )
    await _load_role_practitioners(directory, paged.items)
    items = [visit_item(e, directory, has_note=str(e.get("id")) in notes, known=known) for e in paged.items]
    return Paged(items, paged.page, paged.pages, paged.total)


async def visit(scope: PatientScope, encounter_id: str) -> VisitItem:
    """One visit with its notes; FhirNotFound if it is not the patient's."""
    encounter, documents, compositions, known = await asyncio.gather(
        scope.read("Encounter", encounter_id),
        _all(scope, "DocumentReference", {"encounter": f"Encounter/{encounter_id}"}),
        _all(scope, "Composition", {"encounter": f"Encounter/{encounter_id}"}),
        _known_conditions(scope),
    )
    sources = [d for d in documents + compositions if encounter_id in _note_encounters(d)]
    directory = _Directory(scope)
    await directory.load(
        _literal_refs(
            [encounter.get("participant"), encounter.get("location"), encounter.get("serviceProvider")]
            + [d.get("author") for d in sources]
        )
    )
    await _load_role_practitioners(directory, [encounter])
    notes = [note for source in sources for note in document_notes(source, directory)]
    notes.sort(key=lambda n: _sort_key(n.date))
    return visit_item(encounter, directory, notes=notes, known=known)


# -- care plans -----------------------------------------------------------------------------
CAREPLAN_CURRENT = {"active", "on-hold", "draft"}


@dataclass(frozen=True)
class GoalItem:
    description: str
    status: str | None
    due: str | None


@dataclass(frozen=True)
class PlanActivity:
    title: str
    status: str | None
    when: str | None


@dataclass(frozen=True)
class CarePlanItem:
    id: str
    title: str
    status: str
    intent: str | None
    description: str | None
    categories: list[str]
    start: str | None
    end: str | None
    author: str
    addresses: list[str]
    goals: list[GoalItem]
    activities: list[PlanActivity]
    current: bool


def goal_item(goal: Resource) -> GoalItem:
    due = next((t.get("dueDate") for t in goal.get("target", []) if t.get("dueDate")), None)
    status = _code(goal.get("achievementStatus")) or goal.get("lifecycleStatus")
    return GoalItem(description=codeable_text(goal.get("description")), status=status, due=due)


def _activity_when(detail: Resource) -> str | None:
    period = (
        detail.get("scheduledPeriod")
        or (((detail.get("scheduledTiming") or {}).get("repeat") or {}).get("boundsPeriod"))
        or {}
    )
    return _first(period.get("end"), period.get("start"), detail.get("scheduledString"))


def plan_activity(plan: Resource, activity: Resource, tasks: dict[str, Resource]) -> PlanActivity:
    detail = activity.get("detail")
    if isinstance(detail, dict):
        title = (
            codeable_text(detail.get("code"))
            or detail.get("description")
            or codeable_text(detail.get("productCodeableConcept"))
        )
        return PlanActivity(title=str(title or ""), status=detail.get("status"), when=_activity_when(detail))
    reference = activity.get("reference") or {}
    task = contained(plan, reference) or tasks.get(reference_id(reference, "Task") or "")
    if task:
        title = task.get("description") or codeable_text(task.get("code")) or reference_display(reference)
        end = ((task.get("restriction") or {}).get("period") or {}).get("end")
        return PlanActivity(title=str(title), status=task.get("status"), when=end)
    return PlanActivity(title=reference_display(reference), status=None, when=None)


async def _goals(scope: PatientScope, plans: list[Resource]) -> dict[str, Resource]:
    """The Goals the plans reference, with one ``_id`` search in the patient's compartment."""
    ids = sorted({i for p in plans for g in p.get("goal", []) if (i := reference_id(g, "Goal"))})
    if not ids:
        return {}
    try:
        page = await scope.search("Goal", {"_id": ",".join(ids), "_count": str(len(ids))},
                                  all_pages=True)
    except FhirError:
        return {}
    return {str(g["id"]): g for g in page.resources if str(g.get("id")) in ids}


def care_plan_item(
    plan: Resource,
    goals: dict[str, Resource],
    tasks: dict[str, Resource],
    known: dict[str, Resource] | None = None,
) -> CarePlanItem:
    goal_items = []
    for ref in plan.get("goal", []):
        goal = contained(plan, ref) or goals.get(reference_id(ref, "Goal") or "")
        if goal:
            goal_items.append(goal_item(goal))
        elif ref.get("display"):
            goal_items.append(GoalItem(str(ref["display"]), None, None))
    period = plan.get("period") or {}
    status = str(plan.get("status") or "unknown")
    categories = codeable_texts(plan.get("category"))
    title = _first(plan.get("title"), *categories, plan.get("description")) or ""
    return CarePlanItem(
        id=str(plan.get("id", "")),
        title=title,
        status=status,
        intent=plan.get("intent"),
        description=plan.get("description") if plan.get("description") != title else None,
        categories=categories,
        start=period.get("start"),
        end=period.get("end"),
        author=reference_display(plan.get("author")) if (plan.get("author") or {}).get("display") else "",
        addresses=_references(plan, plan.get("addresses", []), known),
        goals=goal_items,
        activities=[plan_activity(plan, a, tasks) for a in plan.get("activity", [])],
        current=status in CAREPLAN_CURRENT,
    )


async def care_plans(scope: PatientScope, *, page: int = 1) -> Paged[CarePlanItem]:
    result = await scope.search(
        "CarePlan", {"_count": SEARCH_COUNT, "_include": "CarePlan:activity-reference"}, all_pages=True
    )
    plans = [p for p in result.resources if p.get("status") != "entered-in-error"]
    plans.sort(
        key=lambda p: (
            p.get("status") not in CAREPLAN_CURRENT,
            _sort_key((p.get("period") or {}).get("start") or p.get("created")),
        )
    )
    paged = paginate(plans, page)
    goals, tasks, known = await asyncio.gather(
        _goals(scope, paged.items),
        activities.referenced_tasks(scope, paged.items, result.included),
        _known_conditions(scope),
    )
    items = [care_plan_item(p, goals, tasks, known) for p in paged.items]
    return Paged(items, paged.page, paged.pages, paged.total)


# -- care teams ------------------------------------------------------------------------------
CARETEAM_PAST = {"inactive", "entered-in-error"}


@dataclass(frozen=True)
class ContactPoint:
    system: str  # phone | email | url | fax | sms | pager | other
    value: str
    use: str | None


@dataclass(frozen=True)
class TeamMember:
    name: str
    roles: list[str]
    organization: str
    contacts: list[ContactPoint]


@dataclass(frozen=True)
class CareTeamItem:
    id: str
    name: str
    status: str
    categories: list[str]
    start: str | None
    end: str | None
    members: list[TeamMember]
    contacts: list[ContactPoint]
    organizations: list[str]
    current: bool


def contact_points(points: Iterable[Any]) -> list[ContactPoint]:
    seen: set[tuple[str, str]] = set()
    result = []
    for point in points:
        if not isinstance(point, dict) or not point.get("value"):
            continue
        if (point.get("period") or {}).get("end"):
            continue
        key = (str(point.get("system") or "other"), str(point["value"]))
        if key in seen:
            continue
        seen.add(key)
        result.append(ContactPoint(key[0], key[1], point.get("use")))
    result.sort(key=lambda p: {"phone": 0, "email": 1}.get(p.system, 2))
    return result


def _member(team: Resource, participant: Resource, directory: _Directory, patient_ref: str) -> TeamMember:
    member = participant.get("member") or {}
    target = _resolve(team, member, directory)
    name = _party_name(target, member)
    points: list[Any] = []
    if target and target.get("resourceType") == "PractitionerRole":
        practitioner = _resolve(target, target.get("practitioner"), directory) or contained(
            team, target.get("practitioner")
        )
        name = name or _party_name(practitioner, target.get("practitioner"))
        points += target.get("telecom", [])
        if practitioner:
            points += practitioner.get("telecom", [])
    elif target and target.get("resourceType") != "Patient":
        points += target.get("telecom", [])
    on_behalf = participant.get("onBehalfOf")
    organization_target = _resolve(team, on_behalf, directory)
    organization = _party_name(organization_target, on_behalf)
    if not points and organization_target:
        points += organization_target.get("telecom", [])
    roles = codeable_texts(participant.get("role"))
    if target and target.get("resourceType") == "PractitionerRole" and not roles:
        roles = codeable_texts(target.get("code")) + codeable_texts(target.get("specialty"))
    is_self = str(member.get("reference") or "").endswith(patient_ref)
    return TeamMember(
        name=name, roles=roles, organization=organization, contacts=[] if is_self else contact_points(points)
    )


def care_team_item(team: Resource, directory: _Directory, patient_ref: str) -> CareTeamItem:
    period = team.get("period") or {}
    status = str(team.get("status") or "")
    organizations = [
        _party_name(_resolve(team, r, directory), r) for r in team.get("managingOrganization", [])
    ]
    contacts = list(team.get("telecom", []))
    if not contacts:
        for ref in team.get("managingOrganization", []):
            target = _resolve(team, ref, directory)
            if target:
                contacts += target.get("telecom", [])
    return CareTeamItem(
        id=str(team.get("id", "")),
        name=str(team.get("name") or ""),
        status=status,
        categories=codeable_texts(team.get("category")),
        start=period.get("start"),
        end=period.get("end"),
        members=[_member(team, p, directory, patient_ref) for p in team.get("participant", [])],
        contacts=contact_points(contacts),
        organizations=[o for o in organizations if o],
        current=status not in CARETEAM_PAST,
    )


async def care_teams(scope: PatientScope, *, page: int = 1) -> Paged[CareTeamItem]:
    teams = [t for t in await _all(scope, "CareTeam") if t.get("status") != "entered-in-error"]
    teams.sort(
        key=lambda t: (t.get("status") in CARETEAM_PAST, _sort_key((t.get("period") or {}).get("start")))
    )
    paged = paginate(teams, page)
    directory = _Directory(scope)
    first = list(
        _literal_refs(
            [[p.get("member"), p.get("onBehalfOf")] for t in paged.items for p in t.get("participant", [])]
            + [t.get("managingOrganization") for t in paged.items]
        )
    )
    await directory.load(first)
    await _load_role_practitioners(directory, paged.items)
    items = [care_team_item(t, directory, scope.patient_ref) for t in paged.items]
    return Paged(items, paged.page, paged.pages, paged.total)


# -- overview and download -------------------------------------------------------------------
@dataclass(frozen=True)
class RecordCounts:
    medications: int
    allergies: int
    conditions: int
    visits: int
    care_plans: int
    care_teams: int


COUNT_QUERIES: dict[str, list[tuple[str, dict[str, str]]]] = {
    "medications": [
        ("MedicationStatement", {"status:not": "entered-in-error"}),
        ("MedicationRequest", {"status:not": "entered-in-error"}),
    ],
    "allergies": [("AllergyIntolerance", {"verification-status:not": "entered-in-error"})],
    "conditions": [("Condition", {"verification-status:not": "entered-in-error"})],
    "visits": [("Encounter", {"status:not": "entered-in-error"})],
    "care_plans": [("CarePlan", {"status:not": "entered-in-error"})],
    "care_teams": [("CareTeam", {"status:not": "entered-in-error"})],
}


async def counts(scope: PatientScope) -> RecordCounts:
    """How many records of each kind the patient has (counted by the server, in parallel)."""
    jobs: list[tuple[str, Awaitable[int]]] = [
        (area, scope.count(kind, params))
        for area, queries in COUNT_QUERIES.items()
        for kind, params in queries
    ]
    found = await asyncio.gather(*(job for _, job in jobs))
    totals: dict[str, int] = dict.fromkeys(COUNT_QUERIES, 0)
    for (area, _), number in zip(jobs, found, strict=True):
        totals[area] += number
    return RecordCounts(**totals)


@dataclass(frozen=True)
class RecordDownload:
    filename: str
    body: bytes
    entries: int


async def download(scope: PatientScope, today: date | datetime) -> RecordDownload:
    """The patient's whole record as a FHIR Bundle (``Patient/$everything``), as JSON bytes."""
    bundle = await scope.everything()
    day = today.date() if isinstance(today, datetime) else today
    body = json.dumps(bundle, ensure_ascii=False, indent=2).encode("utf-8")
    return RecordDownload(
        filename=f"health-record-{day.isoformat()}.json", body=body, entries=len(bundle.get("entry", []))
    )
