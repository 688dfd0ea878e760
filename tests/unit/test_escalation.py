"""Escalation Tasks: who may handle them, one winner on accept, and what the EHR reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_portal.auth.roles import Principal, Role
from fhir_portal.chat import escalation
from fhir_portal.chat.bot import Escalation, Target

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def who(*roles: Role, practitioner: str | None = None, account: int = 1) -> Principal:
    return Principal(account_id=account, email=f"s{account}@x", display_name=f"Staff {account}",
                     roles=frozenset(roles), practitioner_id=practitioner)


def task(target: Target = Target.PATIENT_SERVICE, urgent: bool = False) -> dict:
    resource = escalation.escalation_task(
        patient_ref="Patient/p1", patient_name="Nora Holm", header_ref="Communication/c1",
        conversation_id="conv-1", escalation=Escalation(target, "reason", urgent), now=NOW)
    return {**resource, "id": "t1", "meta": {"versionId": "1"}}


def test_the_task_says_what_the_ehr_needs() -> None:
    resource = task(Target.CLINICIAN, urgent=True)
    assert resource["status"] == "requested" and resource["intent"] == "order"
    assert resource["code"]["coding"][0]["code"] == "chat-escalation"
    assert resource["for"] == {"reference": "Patient/p1", "display": "Nora Holm"}
    assert resource["focus"]["reference"] == "Communication/c1"
    assert resource["priority"] == "urgent"
    assert resource["authoredOn"].startswith("2026-11-25T12:00:00")
    assert escalation.target_of(resource) is Target.CLINICIAN


@pytest.mark.parametrize(("target", "roles", "allowed"), [
    (Target.PATIENT_SERVICE, (Role.AGENT,), True),
    (Target.PATIENT_SERVICE, (Role.CLINICIAN,), False),
    (Target.CLINICIAN, (Role.CLINICIAN,), True),
    (Target.CLINICIAN, (Role.AGENT,), False),
    (Target.PATIENT_SERVICE, (Role.ADMIN,), False),
    (Target.CLINICIAN, (Role.PATIENT,), False),
    (Target.CLINICIAN, (Role.AGENT, Role.CLINICIAN), True),
])
def test_only_agents_and_clinicians_receive_their_escalations(target, roles, allowed) -> None:
    assert escalation.may_handle(who(*roles), task(target)) is allowed


def test_accepting_sets_the_owner_and_a_second_accept_is_refused() -> None:
    agent = who(Role.AGENT, practitioner="prac-1")
    taken = escalation.accepted(task(), agent, NOW)
    assert taken["status"] == "in-progress"
    assert taken["owner"] == {"reference": "Practitioner/prac-1", "display": "Staff 1"}
    assert escalation.is_owner(taken, agent)
    other = who(Role.AGENT, account=2)
    assert not escalation.is_owner(taken, other)
    with pytest.raises(escalation.ChatTaken):
        escalation.accepted(taken, other, NOW)


def test_staff_without_a_practitioner_are_owners_by_account() -> None:
    agent = who(Role.AGENT, account=7)
    taken = escalation.accepted(task(), agent, NOW)
    assert taken["owner"]["identifier"] == {"system": escalation.ACCOUNT_SYSTEM, "value": "7"}
    assert escalation.is_owner(taken, agent)
    assert not escalation.is_owner(taken, who(Role.AGENT, account=8))


def test_completed() -> None:
    done = escalation.completed(escalation.accepted(task(), who(Role.AGENT), NOW), NOW)
    assert done["status"] == "completed" and done["executionPeriod"]["end"].startswith("2026-11-25")
