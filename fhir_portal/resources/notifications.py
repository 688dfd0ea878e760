"""Outgoing notifications (email, SMS) recorded in FHIR as Communication: the outbox.

Each notification is one ``Communication``:

* ``category`` communication-category ``notification``; ``medium`` v3-ParticipationMode
  ``EMAILWRIT`` or ``SMSWRIT``; ``subject`` and ``recipient`` the Patient;
* ``identifier`` (system ``NOTIFICATION_KEY_SYSTEM``) the caller's dedupe key, written
  with a conditional create, so a retried enqueue returns the first Communication;
* ``topic.text`` the subject line and ``payload[0].contentString`` the text: callers put
  no clinical content in them (times, places and links only);
* ``status`` ``in-progress`` while it waits, ``completed`` (with ``sent``) once handed to
  the SMTP server or the SMS webhook, ``stopped`` after ``MAX_ATTEMPTS`` failed attempts;
* the delivery state in one complex extension ``DELIVERY_EXTENSION``:
  ``address`` (valueString: the email address or phone number), ``attempts``
  (valueInteger), ``nextAttempt`` (valueDateTime: not before this instant) and
  ``lastError`` (valueString: the error class only, never an address or a body).

The worker (``fhir_portal.notify.outbox``) claims a due notification with a versioned
update (attempts + 1, nextAttempt pushed back by the exponential backoff) *before*
sending, so two workers never send the same message twice, and completes it with another
versioned update afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_portal.fhir import FhirConflict, FhirGateway
from fhir_portal.fhir.gateway import Resource, version_of
from fhir_portal.fhir.model import parse_datetime

CATEGORY_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/communication-category"
MODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
NOTIFICATION_KEY_SYSTEM = "http://fhir-portal.example.org/fhir/notification-key"
DELIVERY_EXTENSION = "http://fhir-portal.example.org/fhir/StructureDefinition/notification-delivery"
PROFILE = "http://fhir-portal.example.org/fhir/StructureDefinition/portal-communication"
MEDIUMS = {"email": ("EMAILWRIT", "email"), "sms": ("SMSWRIT", "SMS message")}
MAX_ATTEMPTS = 12


@dataclass
class Notification:
    """One pending or delivered notification, as the worker sees it."""

    id: str
    version: str | None
    medium: str
    to: str
    subject: str
    body: str
    status: str
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    resource: Resource

    @property
    def due(self) -> bool:
        return self.status == "in-progress" and (
            self.next_attempt is None or self.next_attempt <= datetime.now(UTC)
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _delivery(to: str, attempts: int, next_attempt: str, error: str | None) -> Resource:
    parts: list[Resource] = [
        {"url": "address", "valueString": to},
        {"url": "attempts", "valueInteger": attempts},
        {"url": "nextAttempt", "valueDateTime": next_attempt},
    ]
    if error:
        parts.append({"url": "lastError", "valueString": error[:200]})
    return {"url": DELIVERY_EXTENSION, "extension": parts}


def build(
    *, patient_id: str, medium: str, to: str, subject: str, body: str, dedupe_key: str
) -> Resource:
    """The Communication that records one outgoing notification."""
    if medium not in MEDIUMS:
        raise ValueError(f"unknown medium {medium!r}")
    if not to or not dedupe_key or not patient_id:
        raise ValueError("a notification needs a patient, an address and a dedupe key")
    code, display = MEDIUMS[medium]
    patient = {"reference": f"Patient/{patient_id}"}
    return {
        "resourceType": "Communication",
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": NOTIFICATION_KEY_SYSTEM, "value": dedupe_key}],
        "status": "in-progress",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "notification",
                                  "display": "Notification"}]}],
        "medium": [{"coding": [{"system": MODE_SYSTEM, "code": code, "display": display}]}],
        "subject": patient,
        "recipient": [patient],
        "topic": {"text": subject},
        "payload": [{"contentString": body}],
        "extension": [_delivery(to, 0, _now(), None)],
    }


async def enqueue(
    gateway: FhirGateway,
    *,
    patient_id: str,
    medium: str,
    to: str,
    subject: str,
    body: str,
    dedupe_key: str,
) -> str:
    """Record a notification for delivery; returns the Communication id.

    Safe to retry: the same ``dedupe_key`` always gives the same Communication (a
    conditional create on the identifier), which is delivered once.
    """
    resource = build(patient_id=patient_id, medium=medium, to=to, subject=subject, body=body,
                     dedupe_key=dedupe_key)
    created = await gateway.create(
        resource, if_none_exist=f"identifier={NOTIFICATION_KEY_SYSTEM}|{dedupe_key}"
    )
    if not created or not created.get("id"):
        # some servers answer a matched conditional create without a body
        found = await gateway.search(
            "Communication", {"identifier": f"{NOTIFICATION_KEY_SYSTEM}|{dedupe_key}"},
            fresh=True,
        )
        if not found.resources:
            raise FhirConflict("the notification was neither created nor found")
        return str(found.resources[0]["id"])
    return str(created["id"])


class Sender:
    """Queues a portal action's notifications on the portal's own FHIR server, where the
    outbox worker delivers them, whatever server the patient's scope reads from (a SMART
    launch reads the EHR). Views hold a Sender, never the gateway behind it."""

    def __init__(self, gateway: FhirGateway, *, sms_enabled: bool) -> None:
        self._gateway = gateway
        self.sms_enabled = sms_enabled

    async def enqueue(
        self, *, patient_id: str, medium: str, to: str, subject: str, body: str,
        dedupe_key: str,
    ) -> str:
        return await enqueue(self._gateway, patient_id=patient_id, medium=medium, to=to,
                             subject=subject, body=body, dedupe_key=dedupe_key)


def parse(resource: Resource) -> Notification | None:
    """The worker's view of a notification Communication (None if it is not one)."""
    mediums = {
        coding.get("code")
        for concept in resource.get("medium", [])
        for coding in concept.get("coding", [])
        if coding.get("system") == MODE_SYSTEM
    }
    medium = next((name for name, (code, _) in MEDIUMS.items() if code in mediums), None)
    delivery = next(
        (e for e in resource.get("extension", []) if e.get("url") == DELIVERY_EXTENSION), None
    )
    if medium is None or delivery is None:
        return None
    values: dict[str, Any] = {}
    for part in delivery.get("extension", []):
        for key, value in part.items():
            if key.startswith("value"):
                values[str(part.get("url"))] = value
    payload = resource.get("payload") or [{}]
    return Notification(
        id=str(resource.get("id")),
        version=version_of(resource),
        medium=medium,
        to=str(values.get("address") or ""),
        subject=str((resource.get("topic") or {}).get("text") or ""),
        body=str(payload[0].get("contentString") or ""),
        status=str(resource.get("status") or ""),
        attempts=int(values.get("attempts") or 0),
        next_attempt=parse_datetime(values.get("nextAttempt")),
        last_error=values.get("lastError"),
        resource=resource,
    )


async def pending(
    gateway: FhirGateway, *, mediums: tuple[str, ...] = ("email", "sms"), page_size: int = 100,
    max_pages: int = 10,
) -> list[Notification]:
    """Notifications of ``mediums`` waiting for delivery whose next attempt is due.

    Every page is read (bounded), so messages this worker cannot send (e.g. SMS where no
    webhook is configured) never starve the ones it can.
    """
    params: dict[str, str] = {
        "category": f"{CATEGORY_SYSTEM}|notification",
        "status": "in-progress",
        "_sort": "_lastUpdated",
        "_count": str(page_size),
    }
    if set(mediums) != set(MEDIUMS):
        params["medium"] = ",".join(f"{MODE_SYSTEM}|{MEDIUMS[m][0]}" for m in mediums)
    page = await gateway.search_all("Communication", params, fresh=True, max_pages=max_pages)
    found = [n for n in (parse(r) for r in page.resources) if n is not None]
    return [n for n in found if n.due and n.medium in mediums]


def backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """Exponential backoff before attempt ``attempts + 1``: base, 2·base, 4·base … cap."""
    return timedelta(seconds=min(cap, base * (2 ** max(attempts - 1, 0))))


def _with_delivery(n: Notification, *, attempts: int, next_attempt: datetime,
                   error: str | None) -> Resource:
    resource = {k: v for k, v in n.resource.items() if k != "meta"}
    resource["meta"] = {"profile": [PROFILE]}
    others = [e for e in resource.get("extension", []) if e.get("url") != DELIVERY_EXTENSION]
    resource["extension"] = [
        *others,
        _delivery(n.to, attempts, next_attempt.isoformat(timespec="milliseconds"), error),
    ]
    return resource


async def claim(
    gateway: FhirGateway, n: Notification, *, base: float, cap: float
) -> Notification | None:
    """Take a due notification for one attempt; None if another worker got it first."""
    attempts = n.attempts + 1
    later = datetime.now(UTC) + backoff(attempts, base=base, cap=cap)
    resource = _with_delivery(n, attempts=attempts, next_attempt=later, error=n.last_error)
    try:
        updated = await gateway.update(resource, if_match=n.version)
    except FhirConflict:
        return None
    return parse(updated)


async def complete(gateway: FhirGateway, n: Notification) -> None:
    """Mark a claimed notification delivered."""
    resource = {k: v for k, v in n.resource.items() if k != "meta"}
    resource["meta"] = {"profile": [PROFILE]}
    resource["status"] = "completed"
    resource["sent"] = _now()
    await gateway.update(resource, if_match=n.version)


async def failed(gateway: FhirGateway, n: Notification, error: str) -> None:
    """Record a failed attempt of a claimed notification (it stays in the backoff)."""
    resource = _with_delivery(
        n, attempts=n.attempts, next_attempt=n.next_attempt or datetime.now(UTC), error=error
    )
    if n.attempts >= MAX_ATTEMPTS:
        resource["status"] = "stopped"
        resource["statusReason"] = {"text": "delivery failed after repeated attempts"}
    await gateway.update(resource, if_match=n.version)


async def notification(gateway: FhirGateway, communication_id: str) -> Notification | None:
    """One notification as it stands now (for tests and the staff console)."""
    return parse(await gateway.read("Communication", communication_id, fresh=True))
