"""Chat actions as FHIR reads and writes: conversations, messages, the bot's turn, escalation.

A conversation is a *header* Communication (category chat, status in-progress until the
chat is closed, ``subject`` the patient, a conversation identifier); every chat message
is its own Communication ``partOf`` the header, with a message identifier so a resent
message is stored once (conditional create). The patient writes through the patient
scope; staff through the unscoped gateway, and only for chats whose escalation Task
their role may handle. The bot's messages have a display-only sender "Health Bot" (with
an identifier) and a ``meta.tag`` naming the intent it answered, from which the next
turn's context (misses in a row, clinical topic) is derived: no chat state is kept
outside FHIR except the conversation id in the session.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from fhir_portal.auth.roles import Principal
from fhir_portal.chat import bot, escalation
from fhir_portal.chat.escalation import ChatTaken
from fhir_portal.fhir import FhirConflict, FhirError, FhirGateway, FhirNotFound, PatientScope
from fhir_portal.fhir.gateway import Resource, version_of
from fhir_portal.fhir.model import (
    codeable_text,
    codeable_texts,
    human_name,
    parse_datetime,
    reference_id,
    telecom,
)
from fhir_portal.resources.knowledge import Article, KnowledgeLibrary

CATEGORY_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/communication-category"
PROFILE = "http://fhir-portal.example.org/fhir/StructureDefinition/portal-communication"
CONVERSATION_SYSTEM = "http://fhir-portal.example.org/fhir/chat-conversation"
MESSAGE_SYSTEM = "http://fhir-portal.example.org/fhir/chat-message"
AUTHOR_SYSTEM = "http://fhir-portal.example.org/fhir/chat-author"
INTENT_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/chat-bot-intent"
BOT_NAME = "Health Bot"
MAX_TEXT = 2000
MAX_MESSAGES = 500
# a relevant knowledge hit for the bot: most of the question's words, and a real score
MIN_COVERAGE = 0.5
MIN_SCORE = 1.0

__all__ = ["ChatTaken"]


def now_utc() -> datetime:
    return datetime.now(UTC)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- view models --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChatLink:
    label: str
    href: str
    article_id: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    id: str
    message_id: str | None
    author: str  # patient | bot | staff | system
    author_name: str
    text: str
    links: tuple[ChatLink, ...]
    sent: datetime | None
    intent: str | None = None
    urgent: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message_id": self.message_id,
            "author": self.author,
            "author_name": self.author_name,
            "text": self.text,
            "links": [{"label": link.label, "href": link.href} for link in self.links],
            "sent": self.sent.isoformat() if self.sent else None,
            "urgent": self.urgent,
        }


@dataclass(frozen=True)
class Conversation:
    id: str  # the conversation identifier (a UUID)
    header_id: str
    patient_id: str
    open: bool
    language: str

    @property
    def header_ref(self) -> str:
        return f"Communication/{self.header_id}"

    @property
    def pointer(self) -> dict[str, str]:
        """What the session keeps to find the conversation again."""
        return {"conversation": self.id, "header": self.header_id}


@dataclass(frozen=True)
class EscalationView:
    task_id: str
    status: str
    target: bot.Target
    urgent: bool
    reason: str
    patient_id: str | None
    patient_name: str
    header_id: str | None
    authored: datetime | None
    owner_name: str | None
    version: str | None

    @property
    def waiting(self) -> bool:
        return self.status in ("requested", "accepted")

    @property
    def with_person(self) -> bool:
        return self.status == "in-progress"

    @property
    def open(self) -> bool:
        return self.status in escalation.OPEN_STATUSES


@dataclass(frozen=True)
class ChatState:
    conversation: Conversation | None
    messages: list[ChatMessage]
    task: EscalationView | None

    @property
    def status(self) -> str:
        """bot | waiting | person | closed — what the patient is told about the chat."""
        if self.conversation is None:
            return "bot"
        if not self.conversation.open:
            return "closed"
        if self.task is not None and self.task.with_person:
            return "person"
        if self.task is not None and self.task.waiting:
            return "waiting"
        return "bot"

    @property
    def agent_name(self) -> str | None:
        return self.task.owner_name if self.task is not None and self.task.with_person else None


@dataclass(frozen=True)
class Turn:
    """What one patient message led to."""

    message: ChatMessage
    duplicate: bool
    replies: list[ChatMessage] = field(default_factory=list)
    escalated: EscalationView | None = None


# -- parsing -----------------------------------------------------------------------------------
def _identifier(resource: Resource, system: str) -> str | None:
    for item in resource.get("identifier", []):
        if item.get("system") == system and item.get("value"):
            return str(item["value"])
    return None


def _tag(resource: Resource, system: str) -> str | None:
    for coding in (resource.get("meta") or {}).get("tag", []):
        if coding.get("system") == system and coding.get("code"):
            return str(coding["code"])
    return None


def _author(resource: Resource) -> tuple[str, str]:
    sender = resource.get("sender") or {}
    ident = (sender.get("identifier") or {})
    if ident.get("system") == AUTHOR_SYSTEM:
        kind = "bot" if ident.get("value") == "health-bot" else "system"
        return kind, str(sender.get("display") or BOT_NAME)
    ref = str(sender.get("reference") or "")
    if ref.startswith("Patient/"):
        return "patient", str(sender.get("display") or "")
    if not sender:
        return "system", ""
    return "staff", str(sender.get("display") or "")


def _links(resource: Resource) -> tuple[ChatLink, ...]:
    links: list[ChatLink] = []
    for item in resource.get("payload", [])[1:]:
        if "contentReference" in item:
            article = reference_id(item["contentReference"], "DocumentReference")
            if article:
                label = str(item["contentReference"].get("display") or article)
                links.append(ChatLink(label, f"/knowledge/{article}", article))
        elif "contentAttachment" in item:
            url = str(item["contentAttachment"].get("url") or "")
            if url.startswith("/") and not url.startswith("//"):
                links.append(ChatLink(str(item["contentAttachment"].get("title") or url), url))
    return tuple(links)


def message_of(resource: Resource) -> ChatMessage:
    author, name = _author(resource)
    payload = resource.get("payload") or [{}]
    return ChatMessage(
        id=str(resource.get("id")),
        message_id=_identifier(resource, MESSAGE_SYSTEM),
        author=author,
        author_name=name,
        text=str(payload[0].get("contentString") or ""),
        links=_links(resource),
        sent=parse_datetime(resource.get("sent")),
        intent=_tag(resource, INTENT_SYSTEM),
        urgent=resource.get("priority") in ("urgent", "asap", "stat"),
    )


def _sort_key(resource: Resource) -> tuple[str, str]:
    return (str(resource.get("sent") or ""), str((resource.get("meta") or {}).get("lastUpdated") or ""))


def messages_of(resources: Sequence[Resource]) -> list[ChatMessage]:
    return [message_of(r) for r in sorted(resources, key=_sort_key) if r.get("payload")]


def conversation_of(resource: Resource) -> Conversation:
    return Conversation(
        id=_identifier(resource, CONVERSATION_SYSTEM) or str(resource["id"]),
        header_id=str(resource["id"]),
        patient_id=reference_id(resource.get("subject"), "Patient") or "",
        open=resource.get("status") == "in-progress",
        language=str(resource.get("language") or "en"),
    )


def escalation_of(task: Resource) -> EscalationView:
    owner = task.get("owner") or {}
    return EscalationView(
        task_id=str(task.get("id")),
        status=str(task.get("status")),
        target=escalation.target_of(task),
        urgent=task.get("priority") in ("urgent", "asap", "stat"),
        reason=str(task.get("description") or ""),
        patient_id=reference_id(task.get("for"), "Patient"),
        patient_name=str((task.get("for") or {}).get("display") or ""),
        header_id=reference_id(task.get("focus"), "Communication"),
        authored=parse_datetime(task.get("authoredOn")),
        owner_name=str(owner.get("display")) if owner.get("display") else None,
        version=version_of(task),
    )


def context_of(messages: Sequence[ChatMessage], task: EscalationView | None) -> bot.Context:
    """The bot's context from the transcript: misses in a row, clinical topic, escalated."""
    misses = 0
    for message in reversed(messages):
        if message.author != "bot":
            continue
        if message.intent == bot.Intent.UNKNOWN.value:
            misses += 1
        else:
            break
    clinical = any(m.intent in {i.value for i in bot.CLINICAL} for m in messages if m.author == "bot")
    return bot.Context(misses=misses, clinical=clinical, escalated=task is not None and task.open)


# -- building resources ------------------------------------------------------------------------
def _category() -> list[Resource]:
    return [{"coding": [{"system": CATEGORY_SYSTEM, "code": "chat", "display": "Chat"}], "text": "Chat"}]


def _message_resource(
    conversation: Conversation,
    *,
    message_id: str,
    text: str,
    sender: Resource,
    moment: datetime,
    links: Sequence[bot.Link | ChatLink] = (),
    intent: str | None = None,
    urgent: bool = False,
    language: str | None = None,
    recipient_patient: bool = False,
) -> Resource:
    payload: list[Resource] = [{"contentString": text[:MAX_TEXT]}]
    for link in links:
        if link.article_id:
            payload.append({"contentReference": {
                "reference": f"DocumentReference/{link.article_id}", "display": link.label}})
        else:
            payload.append({"contentAttachment": {"url": link.href, "title": link.label}})
    meta: Resource = {"profile": [PROFILE]}
    if intent:
        meta["tag"] = [{"system": INTENT_SYSTEM, "code": intent}]
    resource: Resource = {
        "resourceType": "Communication",
        "meta": meta,
        "identifier": [{"system": MESSAGE_SYSTEM, "value": message_id}],
        "status": "completed",
        "category": _category(),
        "priority": "urgent" if urgent else "routine",
        "subject": {"reference": f"Patient/{conversation.patient_id}"},
        "partOf": [{"reference": conversation.header_ref}],
        "sent": _instant(moment),
        "sender": sender,
        "payload": payload,
    }
    if recipient_patient:
        resource["recipient"] = [{"reference": f"Patient/{conversation.patient_id}"}]
    if language:
        resource["language"] = language
    return resource


def _bot_sender() -> Resource:
    return {"identifier": {"system": AUTHOR_SYSTEM, "value": "health-bot"}, "display": BOT_NAME}


def _system_sender(title: str) -> Resource:
    return {"identifier": {"system": AUTHOR_SYSTEM, "value": "portal"}, "display": title}


def _if_none_exist(message_id: str) -> str:
    return f"identifier={MESSAGE_SYSTEM}|{message_id}"


_MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{7,79}$")


def valid_message_id(value: str | None) -> str:
    """A client message id (letters, digits and dashes, like a UUID) or a fresh one."""
    if isinstance(value, str) and _MESSAGE_ID.match(value):
        return value.lower()
    return str(uuid.uuid4())


def clean_text(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())[:MAX_TEXT]


# -- the patient's side ------------------------------------------------------------------------
async def find_conversation(scope: PatientScope, pointer: dict[str, Any] | None) -> Conversation | None:
    """The conversation the session points at, else the patient's latest open one."""
    header_id = (pointer or {}).get("header")
    if isinstance(header_id, str) and header_id:
        try:
            resource = await scope.read("Communication", header_id, fresh=True)
        except FhirNotFound:
            resource = None
        if resource is not None and _identifier(resource, CONVERSATION_SYSTEM):
            return conversation_of(resource)
    page = await scope.search("Communication", {
        "identifier": f"{CONVERSATION_SYSTEM}|", "status": "in-progress", "_sort": "-sent",
        "_count": "5",
    }, via="subject", fresh=True)
    for resource in page.resources:
        if _identifier(resource, CONVERSATION_SYSTEM):
            return conversation_of(resource)
    return None


async def start_conversation(scope: PatientScope, language: str, *, title: str,
                             conversation_id: str | None = None) -> Conversation:
    conversation_id = conversation_id or str(uuid.uuid4())
    header = {
        "resourceType": "Communication",
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": CONVERSATION_SYSTEM, "value": conversation_id}],
        "status": "in-progress",
        "category": _category(),
        "subject": {"reference": scope.patient_ref},
        "topic": {"text": title},
        "sent": _instant(now_utc()),
        "language": language,
    }
    created = await scope.create(
        header, if_none_exist=f"identifier={CONVERSATION_SYSTEM}|{conversation_id}")
    return conversation_of(created)


async def _transcript(search: Callable[..., Any], conversation: Conversation) -> list[ChatMessage]:
    page = await search("Communication", {
        "part-of": conversation.header_ref, "_count": "200", "_sort": "sent",
    })
    return messages_of(page.resources[:MAX_MESSAGES])


async def _patient_task(scope: PatientScope, conversation: Conversation) -> EscalationView | None:
    page = await scope.search("Task", {"focus": conversation.header_ref, "_count": "10"},
                              fresh=True)
    tasks = [t for t in page.resources if escalation.is_escalation(t)]
    if not tasks:
        return None
    tasks.sort(key=lambda t: str((t.get("meta") or {}).get("lastUpdated") or ""))
    return escalation_of(tasks[-1])


async def patient_state(scope: PatientScope, pointer: dict[str, Any] | None) -> ChatState:
    conversation = await find_conversation(scope, pointer)
    if conversation is None:
        return ChatState(None, [], None)

    async def search(resource_type: str, params: dict[str, str]) -> Any:
        return await scope.search(resource_type, params, via="subject", fresh=True, all_pages=True)

    messages = await _transcript(search, conversation)
    return ChatState(conversation, messages, await _patient_task(scope, conversation))


async def record_patient_message(scope: PatientScope, conversation: Conversation, message_id: str,
                                 text: str, *, sender_name: str) -> tuple[ChatMessage, bool]:
    """Store the patient's message once (by its id); True when it had been stored before."""
    existing = await scope.search("Communication", {
        "identifier": f"{MESSAGE_SYSTEM}|{message_id}"}, via="subject", fresh=True)
    if existing.resources:
        return message_of(existing.resources[0]), True
    resource = _message_resource(
        conversation, message_id=message_id, text=text, moment=now_utc(),
        sender={"reference": scope.patient_ref, "display": sender_name},
    )
    created = await scope.create(resource, if_none_exist=_if_none_exist(message_id))
    return message_of(created), False


class LibraryKnowledge:
    """The bot's view of the knowledge library: only clearly relevant articles."""

    def __init__(self, library: KnowledgeLibrary) -> None:
        self.library = library

    def relevant(self, query: str, language: str, limit: int,
                 topic: str | None = None) -> list[bot.ArticleHit]:
        if topic is not None:
            ranked = [self.library.get(h.id) for h in self.library.index.search(query, limit=50)]
            in_topic = [a for a in ranked if a is not None and a.topic == topic]
            if not in_topic:
                in_topic = sorted((a for a in self.library.articles.values() if a.topic == topic),
                                  key=lambda a: a.title(language))
            return [bot.ArticleHit(a.id, a.title(language)) for a in in_topic[:limit]]
        result = []
        for hit in self.library.index.search(query, limit=limit):
            article = self.library.get(hit.id)
            if article is not None and hit.coverage >= MIN_COVERAGE and hit.score >= MIN_SCORE:
                result.append(bot.ArticleHit(article.id, article.title(language)))
        return result


HOURS_HEADINGS = ("opening hours", "åbningstider", "abningstider")
HOURS_ARTICLE_QUERY = "opening hours åbningstider"


def bot_facts(library: KnowledgeLibrary, organization: Resource | None) -> bot.Facts:
    """Opening hours from the opening-hours article (in each language) and the phone number."""
    article = _hours_article(library)
    hours: dict[str, str] = {}
    if article is not None:
        for language, text in article.texts.items():
            sentence = _section(text.markdown, HOURS_HEADINGS)
            if sentence:
                hours[language] = sentence
    phone = None
    if organization is not None:
        for contact in organization.get("contact", []):
            phone = phone or telecom(contact.get("telecom"), "phone")
        phone = phone or telecom(organization.get("telecom"), "phone")
    hit = bot.ArticleHit(article.id, article.title("en")) if article is not None else None
    titles = {lang: t.title for lang, t in article.texts.items()} if article is not None else {}
    return bot.Facts(opening_hours=hours, phone=phone, hours_article=hit, hours_titles=titles)


def _hours_article(library: KnowledgeLibrary) -> Article | None:
    for hit in library.index.search(HOURS_ARTICLE_QUERY, limit=3):
        article = library.get(hit.id)
        if article is not None and article.topic == "using-the-portal":
            return article
    return None


def _section(markdown: str, headings: Sequence[str]) -> str | None:
    """The first paragraph under a heading that names one of ``headings``."""
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("#") and any(h in line.lower() for h in headings):
            paragraph: list[str] = []
            for following in lines[index + 1:]:
                if following.startswith("#"):
                    break
                if not following.strip():
                    if paragraph:
                        break
                    continue
                paragraph.append(following.strip())
            text = re.sub(r"[*_`]+", "", " ".join(paragraph)).strip()
            return text or None
    return None


async def _organization(
    scope: PatientScope, organization_id: str = "org-contoso"
) -> Resource | None:
    try:
        return await scope.directory.read("Organization", organization_id)
    except FhirNotFound:
        page = await scope.directory.search("Organization", {"_count": "1", "active": "true"})
        return page.resources[0] if page.resources else None


FACTS_SECONDS = 300.0


class FactsCache:
    """What the bot says about the practice (``bot.Facts``), one per app: rebuilt when the
    knowledge articles change (their watermark), or every ``FACTS_SECONDS``."""

    def __init__(self) -> None:
        self._watermark: object = None
        self._at = 0.0
        self._facts: bot.Facts | None = None

    async def facts(self, scope: PatientScope, library: KnowledgeLibrary) -> bot.Facts:
        now = time.monotonic()
        if (self._facts is not None and self._watermark == library.watermark
                and now - self._at < FACTS_SECONDS):
            return self._facts
        try:
            organization = await _organization(scope)
        except FhirError:
            organization = None
        facts = bot_facts(library, organization)
        self._watermark, self._at, self._facts = library.watermark, now, facts
        return facts


FACTS: web.AppKey[FactsCache] = web.AppKey("chat_bot_facts", FactsCache)


async def bot_turn(
    scope: PatientScope,
    conversation: Conversation,
    message: ChatMessage,
    *,
    page_language: str,
    gettext: bot.Gettext,
    library: KnowledgeLibrary,
    facts: bot.Facts,
) -> Turn:
    """Let the bot answer a stored patient message; store its reply and any escalation."""
    state = await patient_state(scope, conversation.pointer)
    earlier = [m for m in state.messages if m.id != message.id]
    context = context_of(earlier, state.task)
    answer = bot.reply(
        message.text, context, page_language=page_language, gettext=gettext,
        knowledge=LibraryKnowledge(library), facts=facts,
        with_person=state.task is not None and state.task.with_person,
    )
    turn = Turn(message, duplicate=False)
    if answer is None:
        return turn
    reply_id = f"{message.message_id}-bot"
    created = await scope.create(
        _message_resource(conversation, message_id=reply_id, text=answer.text,
                          sender=_bot_sender(), moment=now_utc(), links=answer.links,
                          intent=answer.intent.value, urgent=answer.urgent,
                          language=answer.language, recipient_patient=True),
        if_none_exist=_if_none_exist(reply_id),
    )
    turn.replies.append(message_of(created))
    if answer.escalation is not None:
        patient_name = human_name((await scope.patient()).get("name"))
        task = escalation.escalation_task(
            patient_ref=scope.patient_ref, patient_name=patient_name,
            header_ref=conversation.header_ref, conversation_id=conversation.id,
            escalation=answer.escalation, now=now_utc(),
        )
        stored = await scope.create(
            task, if_none_exist=f"identifier={escalation.ESCALATION_SYSTEM}|{conversation.id}")
        return Turn(message, False, turn.replies, escalation_of(stored))
    return turn


async def end_conversation_by_patient(scope: PatientScope, conversation: Conversation) -> None:
    """The patient starts over: the old conversation is closed (its open escalation too)."""
    header = await scope.read("Communication", conversation.header_id, fresh=True)
    if header.get("status") == "in-progress":
        await scope.update({**header, "status": "completed"}, if_match=version_of(header))
    task = await _patient_task(scope, conversation)
    if task is not None and task.open:
        resource = await scope.read("Task", task.task_id, fresh=True)
        try:
            await scope.update({**resource, "status": "cancelled"}, if_match=version_of(resource))
        except FhirConflict:
            pass


# -- the staff side ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffChat:
    task: EscalationView
    conversation: Conversation
    messages: list[ChatMessage]
    mine: bool


async def queue(gateway: FhirGateway, who: Principal) -> list[EscalationView]:
    """Open escalations this staff member's roles may handle: urgent first, then oldest first."""
    page = await gateway.search_all("Task", {
        "code": f"{escalation.TASK_CODE_SYSTEM}|{escalation.TASK_CODE}",
        "status": ",".join(escalation.OPEN_STATUSES),
        "_count": "100", "_sort": "-_lastUpdated",
    }, fresh=True, max_pages=3)
    tasks = [escalation_of(t) for t in page.resources if escalation.may_handle(who, t)]
    tasks.sort(key=lambda t: (not t.urgent, t.status != "requested",
                              t.authored or datetime.min.replace(tzinfo=UTC)))
    return tasks


async def _task_for(
    gateway: FhirGateway, who: Principal, task_id: str, *, to_accept: bool = False
) -> Resource:
    """The escalation, if this staff member may see it: a waiting chat of their queue, or
    one they took; a chat another person took (or closed) is not found for the rest."""
    task = await gateway.read("Task", task_id, fresh=True)
    if not escalation.may_handle(who, task):
        raise FhirNotFound("Task: not found")
    if not to_accept and task.get("status") != "requested" and not escalation.is_owner(task, who):
        raise FhirNotFound("Task: not found")
    return task


async def staff_chat(gateway: FhirGateway, who: Principal, task_id: str) -> StaffChat:
    task = await _task_for(gateway, who, task_id)
    view = escalation_of(task)
    if not view.header_id:
        raise FhirNotFound("Task without a conversation")
    header = await gateway.read("Communication", view.header_id, fresh=True)
    conversation = conversation_of(header)
    if conversation.patient_id != view.patient_id:
        raise FhirNotFound("Task and conversation disagree")

    async def search(resource_type: str, params: dict[str, str]) -> Any:
        return await gateway.search_all(resource_type, params, fresh=True)

    messages = await _transcript(search, conversation)
    return StaffChat(view, conversation, messages, escalation.is_owner(task, who))


async def accept(gateway: FhirGateway, who: Principal, task_id: str, *, joined_text: str) -> StaffChat:
    """Take a chat: one winner (versioned update); the loser gets ChatTaken."""
    task = await _task_for(gateway, who, task_id, to_accept=True)
    if task.get("status") != "requested":
        if escalation.is_owner(task, who) and task.get("status") == "in-progress":
            return await staff_chat(gateway, who, task_id)
        raise ChatTaken(task_id)
    updated = escalation.accepted(task, who, now_utc())
    try:
        await gateway.update(updated, if_match=version_of(task))
    except FhirConflict as exc:
        raise ChatTaken(task_id) from exc
    chat = await staff_chat(gateway, who, task_id)
    await _system_message(gateway, chat.conversation, f"{task_id}-joined-{version_of(task)}",
                          joined_text)
    return await staff_chat(gateway, who, task_id)


async def _system_message(gateway: FhirGateway, conversation: Conversation, message_id: str,
                          text: str) -> ChatMessage:
    created = await gateway.create(
        _message_resource(conversation, message_id=message_id, text=text,
                          sender=_system_sender("Contoso Healthcare"), moment=now_utc(),
                          recipient_patient=True, language=conversation.language),
        if_none_exist=_if_none_exist(message_id))
    return message_of(created)


def _staff_sender(who: Principal) -> Resource:
    if who.practitioner_id:
        return {"reference": f"Practitioner/{who.practitioner_id}", "display": who.display_name}
    return {"identifier": {"system": escalation.ACCOUNT_SYSTEM, "value": str(who.account_id)},
            "display": who.display_name}


class NotYours(Exception):
    """Only the staff member who accepted a chat writes in it, and only while it is open."""


async def staff_says(gateway: FhirGateway, who: Principal, task_id: str, message_id: str,
                     text: str, *, article: Article | None = None, language: str = "en",
                     article_text: str = "") -> tuple[StaffChat, ChatMessage, bool]:
    """Store a staff message (or an article link) once; True when it was a resend."""
    chat = await staff_chat(gateway, who, task_id)
    if not chat.mine or not chat.task.with_person or not chat.conversation.open:
        raise NotYours(task_id)
    existing = await gateway.search("Communication", {
        "identifier": f"{MESSAGE_SYSTEM}|{message_id}"}, fresh=True)
    if existing.resources:
        return chat, message_of(existing.resources[0]), True
    links: list[ChatLink] = []
    if article is not None:
        title = article.title(chat.conversation.language or language)
        links.append(ChatLink(title, f"/knowledge/{article.id}", article.id))
        text = text or article_text
    resource = _message_resource(chat.conversation, message_id=message_id, text=text,
                                 sender=_staff_sender(who), moment=now_utc(), links=links,
                                 recipient_patient=True)
    created = await gateway.create(resource, if_none_exist=_if_none_exist(message_id))
    return chat, message_of(created), False


async def close(gateway: FhirGateway, who: Principal, task_id: str, *, left_text: str) -> StaffChat:
    """Close the chat: the Task completed, the conversation completed, the patient told."""
    task = await _task_for(gateway, who, task_id)
    if not escalation.is_owner(task, who) or task.get("status") != "in-progress":
        raise NotYours(task_id)
    try:
        await gateway.update(escalation.completed(task, now_utc()), if_match=version_of(task))
    except FhirConflict as exc:
        raise ChatTaken(task_id) from exc
    chat = await staff_chat(gateway, who, task_id)
    await _system_message(gateway, chat.conversation, f"{task_id}-left", left_text)
    header = await gateway.read("Communication", chat.conversation.header_id, fresh=True)
    if header.get("status") == "in-progress":
        try:
            await gateway.update({**header, "status": "completed"}, if_match=version_of(header))
        except FhirConflict:
            pass
    return await staff_chat(gateway, who, task_id)


# -- the patient's details for staff ---------------------------------------------------------------
@dataclass(frozen=True)
class UpcomingAppointment:
    start: datetime | None
    description: str
    status: str


@dataclass(frozen=True)
class PatientDetails:
    id: str
    name: str
    birth_date: date | None
    gender: str | None
    phone: str | None
    email: str | None
    appointments: list[UpcomingAppointment]
    conditions: list[str]
    allergies: list[str]


class StaffPatientView:
    """What an agent or clinician sees about the patient of a chat they handle: read with the
    unscoped staff gateway, for this one patient only (every search names the patient)."""

    def __init__(self, gateway: FhirGateway, patient_id: str) -> None:
        if not patient_id:
            raise FhirNotFound("no patient")
        self._gateway = gateway
        self.patient_id = patient_id
        self.patient_ref = f"Patient/{patient_id}"

    async def details(self) -> PatientDetails:
        patient = await self._gateway.read("Patient", self.patient_id)
        appointments = await self._gateway.search("Appointment", {
            "actor": self.patient_ref, "date": f"ge{now_utc().date().isoformat()}",
            "status": "booked,arrived,checked-in,pending", "_sort": "date", "_count": "10",
        })
        conditions = await self._gateway.search("Condition", {
            "patient": self.patient_ref, "clinical-status": "active", "_count": "50"})
        allergies = await self._gateway.search("AllergyIntolerance", {
            "patient": self.patient_ref, "_count": "50"})
        upcoming = [
            UpcomingAppointment(
                parse_datetime(a.get("start")),
                str(a.get("description") or codeable_text(a.get("appointmentType"))
                    or ", ".join(codeable_texts(a.get("serviceType")))),
                str(a.get("status") or ""),
            )
            for a in appointments.resources if _involves(a, self.patient_ref)
        ]
        birth = parse_datetime(patient.get("birthDate"))
        return PatientDetails(
            id=self.patient_id,
            name=human_name(patient.get("name")),
            birth_date=birth.date() if birth else None,
            gender=patient.get("gender"),
            phone=telecom(patient.get("telecom"), "phone"),
            email=telecom(patient.get("telecom"), "email"),
            appointments=upcoming,
            conditions=[codeable_text(c.get("code"), "—") for c in conditions.resources
                        if reference_id(c.get("subject"), "Patient") == self.patient_id],
            allergies=[codeable_text(a.get("code"), "—") for a in allergies.resources
                       if reference_id(a.get("patient"), "Patient") == self.patient_id
                       and _active_allergy(a)],
        )


def _involves(appointment: Resource, patient_ref: str) -> bool:
    return any((p.get("actor") or {}).get("reference") == patient_ref
               for p in appointment.get("participant", []))


def _active_allergy(allergy: Resource) -> bool:
    status = (allergy.get("clinicalStatus") or {}).get("coding", [])
    return not status or any(c.get("code") == "active" for c in status)
