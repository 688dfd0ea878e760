"""Escalation of a chat to a person, as a FHIR Task: who gets it, and its life cycle.

A chat escalation is a Task (code ``task-code#chat-escalation``, intent order) ``for`` the
patient whose ``focus`` is the conversation's first Communication. ``performerType`` says
which queue it is in: patient service (staff with the agent role) or clinicians (staff
with the clinician role). Accepting it moves it requested → in-progress with the staff
member as ``owner`` (a versioned update, so only one person can take it); closing the
chat completes it. Pure functions: the FHIR calls are in ``resources/chat.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_portal.auth.roles import Principal, Role
from fhir_portal.chat.bot import Escalation, Target

Resource = dict[str, Any]

TASK_CODE_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/task-code"
TASK_CODE = "chat-escalation"
QUEUE_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/chat-queue"
ESCALATION_SYSTEM = "http://fhir-portal.example.org/fhir/chat-escalation"
ACCOUNT_SYSTEM = "http://fhir-portal.example.org/fhir/portal-account"
OPEN_STATUSES = ("requested", "accepted", "in-progress")
QUEUE_DISPLAY = {Target.PATIENT_SERVICE: "Patient service", Target.CLINICIAN: "Clinician"}
ROLES_FOR = {
    Target.PATIENT_SERVICE: frozenset({Role.AGENT}),
    Target.CLINICIAN: frozenset({Role.CLINICIAN}),
}


class ChatTaken(Exception):
    """Someone else accepted (or closed) this chat first."""


def escalation_task(
    *,
    patient_ref: str,
    patient_name: str,
    header_ref: str,
    conversation_id: str,
    escalation: Escalation,
    now: datetime,
) -> Resource:
    return {
        "resourceType": "Task",
        "identifier": [{"system": ESCALATION_SYSTEM, "value": conversation_id}],
        "status": "requested",
        "intent": "order",
        "priority": "urgent" if escalation.urgent else "routine",
        "code": {
            "coding": [{"system": TASK_CODE_SYSTEM, "code": TASK_CODE, "display": "Chat escalation"}],
            "text": "Chat escalation",
        },
        "description": escalation.reason,
        "for": {"reference": patient_ref, "display": patient_name},
        "focus": {"reference": header_ref, "display": "Chat transcript"},
        "authoredOn": now.isoformat(timespec="seconds"),
        "lastModified": now.isoformat(timespec="seconds"),
        "performerType": [
            {
                "coding": [{
                    "system": QUEUE_SYSTEM,
                    "code": escalation.target.value,
                    "display": QUEUE_DISPLAY[escalation.target],
                }],
                "text": QUEUE_DISPLAY[escalation.target],
            }
        ],
    }


def target_of(task: Resource) -> Target:
    for concept in task.get("performerType", []):
        for coding in concept.get("coding", []):
            if coding.get("system") == QUEUE_SYSTEM and coding.get("code") in Target._value2member_map_:
                return Target(coding["code"])
    return Target.PATIENT_SERVICE


def is_escalation(task: Resource) -> bool:
    return any(
        c.get("system") == TASK_CODE_SYSTEM and c.get("code") == TASK_CODE
        for c in (task.get("code") or {}).get("coding", [])
    )


def may_handle(who: Principal, task: Resource) -> bool:
    """Agents get patient-service chats, clinicians get clinicians' chats; nobody else."""
    return is_escalation(task) and who.has(*ROLES_FOR[target_of(task)])


def owner_reference(who: Principal) -> Resource:
    if who.practitioner_id:
        return {"reference": f"Practitioner/{who.practitioner_id}", "display": who.display_name}
    return {
        "identifier": {"system": ACCOUNT_SYSTEM, "value": str(who.account_id)},
        "display": who.display_name,
    }


def is_owner(task: Resource, who: Principal) -> bool:
    owner = task.get("owner") or {}
    if not owner:
        return False
    mine = owner_reference(who)
    if "reference" in mine:
        return owner.get("reference") == mine["reference"]
    return (owner.get("identifier") or {}) == mine["identifier"]


def accepted(task: Resource, who: Principal, now: datetime) -> Resource:
    if task.get("status") != "requested":
        raise ChatTaken(task.get("id"))
    return {
        **task,
        "status": "in-progress",
        "owner": owner_reference(who),
        "lastModified": now.isoformat(timespec="seconds"),
    }


def completed(task: Resource, now: datetime) -> Resource:
    return {
        **task,
        "status": "completed",
        "lastModified": now.isoformat(timespec="seconds"),
        "executionPeriod": {
            **(task.get("executionPeriod") or {}),
            "end": now.isoformat(timespec="seconds"),
        },
    }
