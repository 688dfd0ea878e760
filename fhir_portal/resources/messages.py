"""Secure messages between a patient and the care team, as FHIR ``Communication``.

Thread model (the fixtures use it, EHRs may write it): every message is a Communication
of the portal's ``message`` category with ``subject`` the Patient, one ``sender`` and
``recipient``\\ s, ``sent``, ``topic.text`` the subject line and ``payload[0]`` the body.
A reply has ``partOf`` the first message of the thread and ``inResponseTo`` the message
it answers; a message with no ``partOf`` is its own thread root. A message is read once
``received`` is set (only the addressee sets it). Every message the portal writes carries
a business identifier (the form's message key) and is created conditionally on it, so a
retried or double-clicked send never makes two messages.

Patients go through ``PatientScope``; the staff side (``clinician_*``) works for one
Practitioner through the unscoped gateway and only ever shows threads that Practitioner
is part of.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_portal.fhir import FhirGateway, PatientScope
from fhir_portal.fhir.binary import linked_binary
from fhir_portal.fhir.errors import FhirConflict, FhirError, FhirNotFound
from fhir_portal.fhir.gateway import Resource, SearchPage, version_of
from fhir_portal.fhir.model import (
    aware,
    codeable_text,
    human_name,
    parse_datetime,
    reference_id,
    reference_key,
)
from fhir_portal.i18n import N_
from fhir_portal.resources.directory import DirectoryNames
from fhir_portal.web.background import KeyedLocks

CATEGORY_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/communication-category"
CATEGORY_CODE = "message"
CATEGORY = f"{CATEGORY_SYSTEM}|{CATEGORY_CODE}"
MESSAGE_ID_SYSTEM = "http://fhir-portal.example.org/fhir/message-id"
PROFILE = "http://fhir-portal.example.org/fhir/StructureDefinition/portal-communication"

MAX_SUBJECT = 150
MAX_BODY = 5000
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
PAGE_SIZE = 20

_KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")


# -- what views get ------------------------------------------------------------------
@dataclass(frozen=True)
class MessageItem:
    """One line of a message list (inbox, sent, home page)."""

    id: str
    thread_id: str
    subject: str
    sender: str
    sent: datetime | None
    unread: bool
    recipients: str = ""
    has_attachment: bool = False
    patient_id: str | None = None
    patient_name: str = ""


@dataclass(frozen=True)
class AttachmentInfo:
    content_type: str
    filename: str
    size: int


@dataclass(frozen=True)
class Message:
    """One message of a thread, as shown in the conversation."""

    id: str
    subject: str
    body: str
    sender: str
    sender_ref: str
    recipients: str
    sent: datetime | None
    received: datetime | None
    unread: bool
    outgoing: bool
    attachment: AttachmentInfo | None


@dataclass(frozen=True)
class Thread:
    id: str
    subject: str
    messages: list[Message]
    can_reply: bool
    reply_to: str
    patient_id: str | None = None
    patient_name: str = ""


@dataclass(frozen=True)
class MessagePage:
    items: list[MessageItem]
    page: int
    has_next: bool
    total: int | None = None

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class Recipient:
    reference: str
    name: str
    role: str = ""


@dataclass(frozen=True)
class Attachment:
    """A message's file, uploaded or to download; its type is taken from its first bytes
    (see ``check_attachment`` and ``_download``)."""

    content_type: str
    filename: str
    data: bytes


class MessageError(Exception):
    """A send the patient can correct: ``field`` names the form field, ``message`` is N_()."""

    def __init__(self, field: str, message: str, **values: Any) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.values = values


# -- reading FHIR -----------------------------------------------------------------------
def recipient_refs(resource: Resource) -> list[str]:
    return [r for r in (reference_key(x) for x in resource.get("recipient", [])) if r]


def sender_ref(resource: Resource) -> str:
    return reference_key(resource.get("sender"))


def _involves(resource: Resource, party: str) -> bool:
    return sender_ref(resource) == party or party in recipient_refs(resource)


def is_message(resource: Resource) -> bool:
    """A message of the portal's category that was not withdrawn (entered-in-error)."""
    if resource.get("status") == "entered-in-error":
        return False
    return any(
        c.get("system") == CATEGORY_SYSTEM and c.get("code") == CATEGORY_CODE
        for concept in resource.get("category", [])
        for c in concept.get("coding", [])
    )


def thread_root(resource: Resource) -> str:
    for part in resource.get("partOf", []):
        ident = reference_id(part, "Communication")
        if ident:
            return ident
    return str(resource["id"])


def _body(resource: Resource) -> str:
    parts = [
        str(p["contentString"]) for p in resource.get("payload", []) if p.get("contentString")
    ]
    return "\n\n".join(parts)


def _attachment_of(resource: Resource) -> tuple[int, Resource] | None:
    """The message's file: carried inline (``data``) or linked (``url``, e.g. a Binary an
    EHR wrote on the same server)."""
    for index, part in enumerate(resource.get("payload", [])):
        attachment = part.get("contentAttachment")
        if attachment and (attachment.get("data") or attachment.get("url")):
            return index, attachment
    return None


def _attachment_info(resource: Resource) -> AttachmentInfo | None:
    found = _attachment_of(resource)
    if found is None:
        return None
    attachment = found[1]
    size = attachment.get("size")
    if not isinstance(size, int):  # unknown for a linked file until it is opened: 0
        size = len(str(attachment.get("data", ""))) * 3 // 4
    return AttachmentInfo(
        content_type=str(attachment.get("contentType") or "application/octet-stream"),
        filename=_safe_filename(str(attachment.get("title") or "attachment")),
        size=size,
    )


PATIENT_NAME_TYPES = ("Practitioner", "PractitionerRole", "Organization")
STAFF_NAME_TYPES = (*PATIENT_NAME_TYPES, "Patient")


def _seed(names: DirectoryNames, resources: Iterable[Resource]) -> None:
    """Names the messages carry inline (sender and recipient displays) need no lookup."""
    for resource in resources:
        for reference in [resource.get("sender"), *resource.get("recipient", [])]:
            names.seed(reference)


def _names_line(names: DirectoryNames, refs: list[str]) -> str:
    return ", ".join(n for n in (names.name(r) for r in refs) if n)


def _item(resource: Resource, names: DirectoryNames, reader_ref: str) -> MessageItem:
    patient_ref = reference_key(resource.get("subject"))
    return MessageItem(
        id=str(resource["id"]),
        thread_id=thread_root(resource),
        subject=codeable_text(resource.get("topic")),
        sender=names.name(sender_ref(resource)),
        sent=aware(parse_datetime(resource.get("sent"))),
        unread=reader_ref in recipient_refs(resource) and not resource.get("received"),
        recipients=_names_line(names, recipient_refs(resource)),
        has_attachment=_attachment_of(resource) is not None,
        patient_id=patient_ref.partition("/")[2] if patient_ref.startswith("Patient/") else None,
        patient_name=names.name(patient_ref) or str((resource.get("subject") or {}).get("display") or ""),
    )


def _message(resource: Resource, names: DirectoryNames, reader_ref: str) -> Message:
    recipients = recipient_refs(resource)
    return Message(
        id=str(resource["id"]),
        subject=codeable_text(resource.get("topic")),
        body=_body(resource),
        sender=names.name(sender_ref(resource)),
        sender_ref=sender_ref(resource),
        recipients=_names_line(names, recipients),
        sent=aware(parse_datetime(resource.get("sent"))),
        received=aware(parse_datetime(resource.get("received"))),
        unread=reader_ref in recipients and not resource.get("received"),
        outgoing=sender_ref(resource) == reader_ref,
        attachment=_attachment_info(resource),
    )


def _all_refs(resources: Iterable[Resource]) -> set[str]:
    refs: set[str] = set()
    for resource in resources:
        refs.add(sender_ref(resource))
        refs.update(recipient_refs(resource))
    return refs


def _sort_key(resource: Resource) -> tuple[datetime, str]:
    sent = aware(parse_datetime(resource.get("sent")))
    return (sent or datetime.min.replace(tzinfo=UTC), str(resource["id"]))


# -- patient side: lists ------------------------------------------------------------------
async def _patient_names(scope: PatientScope, resources: list[Resource]) -> DirectoryNames:
    names = DirectoryNames(scope.directory, types=PATIENT_NAME_TYPES)
    _seed(names, resources)
    await names.load(_all_refs(resources), unnamed_only=True)
    return names


async def unread_count(scope: PatientScope) -> int:
    """Messages addressed to the patient that they have not opened (always fresh)."""
    return await scope.count(
        "Communication",
        {"category": CATEGORY, "received:missing": "true", "status:not": "entered-in-error"},
        via="recipient",
    )


async def _list(scope: PatientScope, via: str, page: int, per_page: int, fresh: bool) -> MessagePage:
    page = max(1, page)
    result = await scope.search(
        "Communication",
        {
            "category": CATEGORY,
            "status:not": "entered-in-error",
            "_sort": "-sent",
            "_count": str(per_page + 1),
            "_offset": str((page - 1) * per_page),
        },
        via=via,
        fresh=fresh,
    )
    resources = [r for r in result.resources if _involves(r, scope.patient_ref)]
    has_next = len(resources) > per_page
    resources = resources[:per_page]
    names = await _patient_names(scope, resources)
    items = [_item(r, names, scope.patient_ref) for r in resources]
    return MessagePage(items=items, page=page, has_next=has_next)


async def inbox(scope: PatientScope, *, page: int = 1, per_page: int = PAGE_SIZE) -> MessagePage:
    """Messages addressed to the patient, newest first."""
    return await _list(scope, "recipient", page, per_page, fresh=True)


async def sent(scope: PatientScope, *, page: int = 1, per_page: int = PAGE_SIZE) -> MessagePage:
    """Messages the patient sent, newest first."""
    return await _list(scope, "sender", page, per_page, fresh=True)


async def latest(scope: PatientScope, *, limit: int = 3) -> list[MessageItem]:
    """The newest messages addressed to the patient (for the home page)."""
    return (await _list(scope, "recipient", 1, limit, fresh=True)).items[:limit]


# -- patient side: a thread ---------------------------------------------------------------
async def _patient_thread_resources(scope: PatientScope, message_id: str) -> list[Resource]:
    """Every message of the thread ``message_id`` belongs to that the patient is part of."""
    first = await scope.read("Communication", message_id, fresh=True)
    if not is_message(first) or not _involves(first, scope.patient_ref):
        raise FhirNotFound("Communication: not found")
    root_id = thread_root(first)
    found: dict[str, Resource] = {first["id"]: first}
    searches = [
        scope.search(
            "Communication",
            {"part-of": f"Communication/{root_id}", "category": CATEGORY, "_count": "200"},
            via=via,
            fresh=True,
            all_pages=True,
        )
        for via in ("recipient", "sender")
    ]
    pages: list[SearchPage] = list(await asyncio.gather(*searches))
    for page in pages:
        for resource in page.resources:
            found[resource["id"]] = resource
    if root_id not in found:
        try:
            root = await scope.read("Communication", root_id, fresh=True)
        except FhirNotFound:
            root = None
        if root is not None:
            found[root_id] = root
    kept = [
        r
        for r in found.values()
        if is_message(r)
        and _involves(r, scope.patient_ref)
        and (r["id"] == root_id or thread_root(r) == root_id)
    ]
    return sorted(kept, key=_sort_key)


def _reply_target(resources: list[Resource], me: str) -> tuple[Resource | None, str]:
    """The message a reply answers (the newest from someone else) and whom it goes to."""
    for resource in reversed(resources):
        sender = sender_ref(resource)
        if sender and sender != me and me in recipient_refs(resource):
            return resource, sender
    for resource in reversed(resources):
        if sender_ref(resource) == me:
            others = [r for r in recipient_refs(resource) if r != me]
            if others:
                return resource, others[0]
    return None, ""


def _thread(resources: list[Resource], names: DirectoryNames, me: str) -> Thread:
    root = resources[0]
    root_id = thread_root(root)
    answered, to = _reply_target(resources, me)
    subject_ref = reference_key(root.get("subject"))
    return Thread(
        id=root_id,
        subject=codeable_text(root.get("topic")),
        messages=[_message(r, names, me) for r in resources],
        can_reply=answered is not None and to.split("/")[0] in ("Practitioner", "Patient"),
        reply_to=names.name(to),
        patient_id=subject_ref.partition("/")[2] if subject_ref.startswith("Patient/") else None,
        patient_name=names.name(subject_ref)
        or str((root.get("subject") or {}).get("display") or ""),
    )


async def thread(scope: PatientScope, message_id: str) -> Thread:
    """The conversation ``message_id`` belongs to; not found unless the patient is in it."""
    resources = await _patient_thread_resources(scope, message_id)
    names = await _patient_names(scope, resources)
    return _thread(resources, names, scope.patient_ref)


async def _mark_read(
    resources: list[Resource], reader_ref: str, update: Any, read_again: Any
) -> int:
    """Set ``received`` on unread messages addressed to ``reader_ref`` (versioned update)."""
    marked = 0
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for resource in resources:
        if reader_ref not in recipient_refs(resource) or resource.get("received"):
            continue
        current = resource
        for _ in range(3):
            changed = {**current, "received": now}
            try:
                await update(changed, if_match=version_of(current))
                marked += 1
                break
            except FhirConflict:
                current = await read_again(current["id"])
                if current.get("received"):
                    break
    return marked


async def mark_thread_read(
    scope: PatientScope, thread_id: str, resources: list[Resource] | None = None
) -> int:
    """Mark the patient's unread messages of a thread as read; how many were marked.
    ``resources``: the thread as just loaded (saves loading it again)."""
    if resources is None:
        resources = await _patient_thread_resources(scope, thread_id)

    async def read_again(ident: str) -> Resource:
        return await scope.read("Communication", ident, fresh=True)

    return await _mark_read(resources, scope.patient_ref, scope.update, read_again)


async def open_thread(scope: PatientScope, message_id: str) -> Thread:
    """The patient opens a conversation: it is loaded once, shown as it was (unread marks
    included) and its unread messages are marked read meanwhile. A failed mark is not an
    error: the conversation still shows, stays unread and is marked next time."""
    resources = await _patient_thread_resources(scope, message_id)

    async def mark() -> None:
        try:
            await mark_thread_read(scope, message_id, resources)
        except FhirError:
            pass

    names, _ = await asyncio.gather(_patient_names(scope, resources), mark())
    return _thread(resources, names, scope.patient_ref)


# -- recipients ---------------------------------------------------------------------------
async def recipients(scope: PatientScope) -> list[Recipient]:
    """Whom the patient may write to: their care teams' members and practitioners seen."""
    teams, encounters = await asyncio.gather(
        scope.search("CareTeam", {"_count": "100"}, all_pages=True),
        scope.search(
            "Encounter", {"_count": "200", "_elements": "participant,subject"}, all_pages=True
        ),
    )
    roles: dict[str, str] = {}
    names = DirectoryNames(scope.directory, types=PATIENT_NAME_TYPES)
    role_refs: dict[str, str] = {}
    for team in teams.resources:
        if team.get("status") in ("inactive", "entered-in-error"):
            continue
        for participant in team.get("participant", []):
            member = participant.get("member") or {}
            ref = reference_key(member)
            if ref.startswith("PractitionerRole/"):
                role_refs[ref] = codeable_role(participant)
                continue
            if not ref.startswith("Practitioner/"):
                continue
            roles.setdefault(ref, codeable_role(participant))
            names.seed(member)
    for encounter in encounters.resources:
        for participant in encounter.get("participant", []):
            individual = participant.get("individual") or {}
            ref = reference_key(individual)
            if ref.startswith("Practitioner/"):
                roles.setdefault(ref, "")
                names.seed(individual)
    await names.load(role_refs)  # one search for every PractitionerRole
    for role_ref, role_text in role_refs.items():
        role = names.resource(role_ref)
        if role is None:
            continue
        practitioner = role.get("practitioner") or {}
        ref = reference_key(practitioner)
        if ref.startswith("Practitioner/"):
            roles.setdefault(ref, role_text)
            names.seed(practitioner)
    await names.load(roles, unnamed_only=True)
    found = [Recipient(ref, names.name(ref) or ref, role) for ref, role in roles.items()]
    return sorted((r for r in found if r.name), key=lambda r: r.name.casefold())


def codeable_role(participant: Resource) -> str:
    for concept in participant.get("role", []):
        if concept.get("text"):
            return str(concept["text"])
        for coding in concept.get("coding", []):
            if coding.get("display"):
                return str(coding["display"])
    return ""


# -- sending ------------------------------------------------------------------------------
def new_message_key() -> str:
    """A random key for one compose form; the message is created at most once per key."""
    return uuid.uuid4().hex


_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)


def _safe_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in name if c.isalnum() or c in " ._-()").strip(" .")
    return cleaned[:100] or "attachment"


def check_attachment(filename: str, data: bytes) -> Attachment | None:
    """An upload as an Attachment, typed by its first bytes (not its name); None if empty."""
    if not data:
        return None
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise MessageError("attachment", N_("The file is larger than 5 MB."))
    for magic, content_type, extension in _SIGNATURES:
        if data.startswith(magic):
            name = _safe_filename(filename)
            if not name.lower().endswith((extension, ".jpeg") if extension == ".jpg" else extension):
                name = f"{name.rsplit('.', 1)[0] if '.' in name else name}{extension}"
            return Attachment(content_type=content_type, filename=name, data=data)
    raise MessageError("attachment", N_("Attach a PDF, PNG or JPEG file."))


def _check_text(subject: str, body: str) -> tuple[str, str]:
    subject = " ".join(subject.split())
    body = body.replace("\r\n", "\n").strip()
    if not subject:
        raise MessageError("subject", N_("Write a subject."))
    if len(subject) > MAX_SUBJECT:
        raise MessageError("subject", N_("The subject can be at most %(max)s characters."), max=MAX_SUBJECT)
    if not body:
        raise MessageError("body", N_("Write your message."))
    if len(body) > MAX_BODY:
        raise MessageError("body", N_("The message can be at most %(max)s characters."), max=MAX_BODY)
    return subject, body


def is_message_key(value: str) -> bool:
    """Whether a submitted form key has the shape ``new_message_key`` gives."""
    return bool(_KEY_PATTERN.match(value or ""))


def _check_key(key: str) -> str:
    key = key.strip().lower()
    if not _KEY_PATTERN.match(key):
        raise MessageError("key", N_("The form has expired. Please write your message again."))
    return key


def _communication(
    *,
    key: str,
    patient: Resource,
    sender: Resource,
    recipients: list[Resource],
    subject: str,
    body: str,
    attachment: Attachment | None,
    root_id: str | None = None,
    answers_id: str | None = None,
) -> Resource:
    payload: list[Resource] = [{"contentString": body}]
    if attachment is not None:
        payload.append(
            {
                "contentAttachment": {
                    "contentType": attachment.content_type,
                    "title": attachment.filename,
                    "size": len(attachment.data),
                    "data": base64.b64encode(attachment.data).decode("ascii"),
                }
            }
        )
    resource: Resource = {
        "resourceType": "Communication",
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": MESSAGE_ID_SYSTEM, "value": key}],
        "status": "completed",
        "category": [
            {"coding": [{"system": CATEGORY_SYSTEM, "code": CATEGORY_CODE, "display": "Message"}]}
        ],
        "priority": "routine",
        "subject": patient,
        "topic": {"text": subject},
        "sent": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipient": recipients,
        "sender": sender,
        "payload": payload,
    }
    if root_id:
        resource["partOf"] = [{"reference": f"Communication/{root_id}"}]
    if answers_id:
        resource["inResponseTo"] = [{"reference": f"Communication/{answers_id}"}]
    return resource


def _reference(ref: str, display: str) -> Resource:
    return {"reference": ref, "display": display} if display else {"reference": ref}


async def _create_once(create: Any, resource: Resource, key: str, lock: asyncio.Lock) -> str:
    """Conditional create on the message key, under ``lock`` (the app's lock for the key:
    one process sends a key once). Two portal processes racing on one key: HAPI lets one
    win and answers the other 409; the retry then finds the winner."""
    condition = f"identifier={MESSAGE_ID_SYSTEM}|{key}"
    async with lock:
        for attempt in range(3):
            try:
                created = await create(resource, if_none_exist=condition)
                break
            except FhirConflict:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
    return str(created["id"])


async def _patient_ref(scope: PatientScope) -> Resource:
    patient = await scope.patient()
    return _reference(scope.patient_ref, human_name(patient.get("name")))


async def send(
    scope: PatientScope,
    *,
    to: str,
    subject: str,
    body: str,
    key: str,
    locks: KeyedLocks,
    attachment: Attachment | None = None,
) -> str:
    """Send a new message to one of ``recipients(scope)``; the id of the new thread."""
    key = _check_key(key)
    subject, body = _check_text(subject, body)
    allowed = {r.reference: r for r in await recipients(scope)}
    if to not in allowed:
        raise MessageError("to", N_("Choose whom to write to."))
    me = await _patient_ref(scope)
    resource = _communication(
        key=key,
        patient=me,
        sender=me,
        recipients=[_reference(to, allowed[to].name)],
        subject=subject,
        body=body,
        attachment=attachment,
    )
    return await _create_once(scope.create, resource, key, locks(key))


def _reply_subject(subject: str) -> str:
    subject = subject or ""
    if subject.lower().startswith(("re:", "sv:")):
        return subject[:MAX_SUBJECT]
    return f"Re: {subject}"[:MAX_SUBJECT] if subject else "Re:"


async def reply(
    scope: PatientScope,
    thread_id: str,
    *,
    body: str,
    key: str,
    locks: KeyedLocks,
    attachment: Attachment | None = None,
) -> str:
    """Answer the newest message from the care team in a thread; the thread id."""
    key = _check_key(key)
    resources = await _patient_thread_resources(scope, thread_id)
    names = await _patient_names(scope, resources)
    answered, to = _reply_target(resources, scope.patient_ref)
    if answered is None or not to.startswith("Practitioner/"):
        raise MessageError("body", N_("This conversation cannot be answered."))
    root = resources[0]
    _, body = _check_text(_reply_subject(codeable_text(root.get("topic"))), body)
    me = await _patient_ref(scope)
    resource = _communication(
        key=key,
        patient=me,
        sender=me,
        recipients=[_reference(to, names.name(to))],
        subject=_reply_subject(codeable_text(root.get("topic"))),
        body=body,
        attachment=attachment,
        root_id=thread_root(root),
        answers_id=str(answered["id"]),
    )
    await _create_once(scope.create, resource, key, locks(key))
    return thread_root(root)


def _file_of(resource: Resource) -> Resource:
    found = _attachment_of(resource)
    if found is None:
        raise FhirNotFound("Attachment: not found")
    return found[1]


async def _download(
    resource: Resource, linked: Callable[[Resource, str], Awaitable[Resource]]
) -> Attachment:
    """The message's file; a linked one is read through ``linked`` (which checks access)."""
    attachment = _file_of(resource)
    encoded = attachment.get("data")
    if not encoded:
        binary = await linked(resource, str(attachment["url"]))
        encoded = binary.get("data")
        if not encoded:
            raise FhirNotFound("Attachment: empty")
    try:
        data = base64.b64decode(str(encoded), validate=True)
    except (ValueError, TypeError) as error:
        raise FhirNotFound("Attachment: unreadable") from error
    for magic, kind, _ in _SIGNATURES:
        if data.startswith(magic):
            content_type = kind
            break
    else:
        content_type = "application/octet-stream"
    return Attachment(
        content_type=content_type,
        filename=_safe_filename(str(attachment.get("title") or "attachment")),
        data=data,
    )


async def attachment(scope: PatientScope, message_id: str) -> Attachment:
    """The file attached to a message the patient sent or received."""
    resource = await scope.read("Communication", message_id)
    if not is_message(resource) or not _involves(resource, scope.patient_ref):
        raise FhirNotFound("Communication: not found")
    return await _download(resource, scope.linked_binary)


# -- staff side (one clinician, through the unscoped gateway) -----------------------------
@dataclass(frozen=True)
class ClinicianThreadItem:
    """A thread in the clinician's list: its newest message and whether it needs reading."""

    thread_id: str
    subject: str
    patient_name: str
    last_sender: str
    last_sent: datetime | None
    unread: int
    messages: int = 1


@dataclass
class _ThreadAcc:
    resources: list[Resource] = field(default_factory=list)


def _clinician_ref(practitioner_id: str) -> str:
    if not practitioner_id:
        raise FhirNotFound("Practitioner: not found")
    return f"Practitioner/{practitioner_id}"


async def clinician_threads(
    gateway: FhirGateway, practitioner_id: str, *, limit: int = 200
) -> list[ClinicianThreadItem]:
    """Threads the practitioner sent or received messages in, newest activity first."""
    me = _clinician_ref(practitioner_id)
    base = {"category": CATEGORY, "_sort": "-sent", "_count": str(limit)}
    received, sent_ = await asyncio.gather(
        gateway.search("Communication", {**base, "recipient": me}, fresh=True),
        gateway.search("Communication", {**base, "sender": me}, fresh=True),
    )
    threads: dict[str, _ThreadAcc] = {}
    for resource in [*received.resources, *sent_.resources]:
        if not _involves(resource, me):
            continue
        acc = threads.setdefault(thread_root(resource), _ThreadAcc())
        if all(r["id"] != resource["id"] for r in acc.resources):
            acc.resources.append(resource)
    everything = [r for acc in threads.values() for r in acc.resources]
    names = DirectoryNames(gateway, types=STAFF_NAME_TYPES)
    _seed(names, everything)
    await names.load(_all_refs(everything) | {reference_key(r.get("subject")) for r in everything},
                     unnamed_only=True)
    items: list[ClinicianThreadItem] = []
    for thread_id, acc in threads.items():
        ordered = sorted(acc.resources, key=_sort_key)
        last = ordered[-1]
        subject_ref = reference_key(last.get("subject"))
        items.append(
            ClinicianThreadItem(
                thread_id=thread_id,
                subject=codeable_text(ordered[0].get("topic")),
                patient_name=names.name(subject_ref)
                or str((last.get("subject") or {}).get("display") or ""),
                last_sender=names.name(sender_ref(last)),
                last_sent=aware(parse_datetime(last.get("sent"))),
                unread=sum(
                    1 for r in ordered if me in recipient_refs(r) and not r.get("received")
                ),
                messages=len(ordered),
            )
        )
    floor = datetime.min.replace(tzinfo=UTC)
    items.sort(key=lambda i: i.last_sent or floor, reverse=True)
    return items


async def _clinician_thread_resources(
    gateway: FhirGateway, practitioner_id: str, message_id: str
) -> list[Resource]:
    me = _clinician_ref(practitioner_id)
    first = await gateway.read("Communication", message_id, fresh=True)
    if not is_message(first):
        raise FhirNotFound("Communication: not found")
    root_id = thread_root(first)
    page = await gateway.search_all(
        "Communication",
        {"part-of": f"Communication/{root_id}", "category": CATEGORY, "_count": "200"},
        fresh=True,
    )
    found: dict[str, Resource] = {first["id"]: first}
    for resource in page.resources:
        found[resource["id"]] = resource
    if root_id not in found:
        try:
            found[root_id] = await gateway.read("Communication", root_id, fresh=True)
        except FhirNotFound:
            pass
    resources = [
        r
        for r in found.values()
        if is_message(r) and (r["id"] == root_id or thread_root(r) == root_id)
    ]
    if not any(_involves(r, me) for r in resources):
        raise FhirNotFound("Communication: not found")
    return sorted(resources, key=_sort_key)


async def clinician_thread(gateway: FhirGateway, practitioner_id: str, message_id: str) -> Thread:
    """A thread the practitioner is part of (else not found), the whole conversation."""
    me = _clinician_ref(practitioner_id)
    resources = await _clinician_thread_resources(gateway, practitioner_id, message_id)
    names = DirectoryNames(gateway, types=STAFF_NAME_TYPES)
    _seed(names, resources)
    await names.load(_all_refs(resources) | {reference_key(r.get("subject")) for r in resources},
                     unnamed_only=True)
    result = _thread(resources, names, me)
    patient = result.patient_id
    can_reply = patient is not None and any(_involves(r, f"Patient/{patient}") for r in resources)
    return Thread(
        id=result.id,
        subject=result.subject,
        messages=result.messages,
        can_reply=can_reply,
        reply_to=result.patient_name,
        patient_id=patient,
        patient_name=result.patient_name,
    )


async def clinician_mark_read(gateway: FhirGateway, practitioner_id: str, thread_id: str) -> int:
    me = _clinician_ref(practitioner_id)
    resources = await _clinician_thread_resources(gateway, practitioner_id, thread_id)

    async def read_again(ident: str) -> Resource:
        return await gateway.read("Communication", ident, fresh=True)

    return await _mark_read(resources, me, gateway.update, read_again)


async def clinician_reply(
    gateway: FhirGateway,
    practitioner_id: str,
    thread_id: str,
    *,
    body: str,
    key: str,
    locks: KeyedLocks,
    attachment: Attachment | None = None,
) -> str:
    """The practitioner answers the patient in a thread they are part of; the thread id."""
    me = _clinician_ref(practitioner_id)
    key = _check_key(key)
    resources = await _clinician_thread_resources(gateway, practitioner_id, thread_id)
    root = resources[0]
    patient_ref = reference_key(root.get("subject"))
    if not patient_ref.startswith("Patient/") or not any(
        _involves(r, patient_ref) for r in resources
    ):
        # only conversations with the patient are answered to the patient
        raise MessageError("body", N_("This conversation cannot be answered."))
    from_patient = [r for r in resources if sender_ref(r) == patient_ref]
    answered = from_patient[-1] if from_patient else resources[-1]
    names = DirectoryNames(gateway, types=STAFF_NAME_TYPES)
    _seed(names, resources)
    await names.load({me, patient_ref}, unnamed_only=True)
    subject = _reply_subject(codeable_text(root.get("topic")))
    _, body = _check_text(subject, body)
    resource = _communication(
        key=key,
        patient=_reference(patient_ref, names.name(patient_ref)),
        sender=_reference(me, names.name(me)),
        recipients=[_reference(patient_ref, names.name(patient_ref))],
        subject=subject,
        body=body,
        attachment=attachment,
        root_id=thread_root(root),
        answers_id=str(answered["id"]),
    )
    await _create_once(gateway.create, resource, key, locks(key))
    return thread_root(root)


async def clinician_attachment(
    gateway: FhirGateway, practitioner_id: str, message_id: str
) -> Attachment:
    """An attachment of a message in a thread the practitioner is part of."""
    resource = await gateway.read("Communication", message_id)
    resources = await _clinician_thread_resources(gateway, practitioner_id, message_id)
    if all(r["id"] != resource["id"] for r in resources):
        raise FhirNotFound("Communication: not found")
    subject = ((resource.get("subject") or {}).get("reference") or "").strip()

    async def linked(owner: Resource, url: str) -> Resource:
        # a file filed under the thread's patient is theirs to share with this clinician
        return await linked_binary(gateway, owner, url, contexts=frozenset({subject} - {""}))

    return await _download(resource, linked)
