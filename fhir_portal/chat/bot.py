"""The Health Bot: pure rules, no I/O, in English and Danish.

``reply(text, context, ...)`` reads one patient message and answers it: emergency words
first (call 112 before anything else), then common requests (book or cancel an
appointment, results, opening hours, medication, a person), then the knowledge articles.
It says when to escalate to a person: when asked for one, on an emergency (urgent, to a
clinician), and when it could not help twice in a row. Medication and symptom questions
route an escalation to a clinician; everything else to patient service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from fhir_portal.chat.knowledge_index import normalise
from fhir_portal.i18n import N_

Gettext = Callable[[str, str], str]  # (language, message) -> translated message


class Intent(StrEnum):
    EMERGENCY = "emergency"
    HUMAN = "human"
    BOOK = "book"
    CANCEL = "cancel"
    RESULTS = "results"
    HOURS = "hours"
    MEDICATION = "medication"
    SYMPTOM = "symptom"
    GREETING = "greeting"
    THANKS = "thanks"
    KNOWLEDGE = "knowledge"
    UNKNOWN = "unknown"


CLINICAL = frozenset({Intent.EMERGENCY, Intent.MEDICATION, Intent.SYMPTOM})


class Target(StrEnum):
    """Who an escalation goes to."""

    PATIENT_SERVICE = "patient-service"
    CLINICIAN = "clinician"


@dataclass(frozen=True)
class Escalation:
    target: Target
    reason: str  # short, in English, for the Task description
    urgent: bool = False


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    article_id: str | None = None


@dataclass(frozen=True)
class ArticleHit:
    id: str
    title: str


class Knowledge(Protocol):
    def relevant(self, query: str, language: str, limit: int,
                 topic: str | None = None) -> Sequence[ArticleHit]:
        """Clearly relevant articles; with ``topic``, that topic's best matches (or its articles)."""
        ...


@dataclass(frozen=True)
class Facts:
    """What the bot may say about the practice (from the opening-hours article / Organization)."""

    opening_hours: dict[str, str] = field(default_factory=dict)  # language -> sentence
    phone: str | None = None
    hours_article: ArticleHit | None = None
    hours_titles: dict[str, str] = field(default_factory=dict)  # language -> article title


@dataclass(frozen=True)
class Context:
    """What the bot knows about the conversation so far (derived from the transcript)."""

    misses: int = 0  # consecutive answers that did not help
    clinical: bool = False  # a medication or symptom question came up
    escalated: bool = False  # a person has been asked for (or is in the chat)


@dataclass(frozen=True)
class Reply:
    intent: Intent
    language: str
    text: str
    links: tuple[Link, ...] = ()
    escalation: Escalation | None = None
    urgent: bool = False

    @property
    def helped(self) -> bool:
        return self.intent is not Intent.UNKNOWN


# -- language ---------------------------------------------------------------------------------
_DANISH_HINTS = frozenset(
    """jeg du har hvad hvor hvordan hvornaar ikke min mit mine kan vil skal tid tider hej tak
    med til og er det en et bestille bestil aflyse aflys flytte proevesvar svar medicin
    aabent aabningstid aabningstider lukket tale snakke menneske hjaelp gerne venligst mig
    noget nogen laege sygeplejerske""".split()
)
_ENGLISH_HINTS = frozenset(
    """i you have what where how when not my can will want to the a an is it book cancel
    appointment results open hours talk speak person help please me some doctor nurse
    medicine medication""".split()
)


def detect_language(text: str, default: str) -> str:
    """"da" or "en" from the words used; ``default`` (the page language) when unsure."""
    raw = text.lower()
    words = re.findall(r"[a-z0-9]+", normalise(text))
    danish = sum(w in _DANISH_HINTS for w in words) + 2 * sum(c in "æøå" for c in raw)
    english = sum(w in _ENGLISH_HINTS for w in words)
    if danish > english:
        return "da"
    if english > danish:
        return "en"
    return default if default in ("en", "da") else "en"


# -- matching ---------------------------------------------------------------------------------
def _flat(text: str) -> str:
    """Normalised text with every run of non-letters as one space, padded with spaces."""
    return " " + " ".join(re.findall(r"[a-z0-9]+", normalise(text))) + " "


def _compile(phrases: Sequence[str]) -> re.Pattern[str]:
    """Phrases match at a word start; a trailing ``*`` lets the last word run on."""
    parts = []
    for phrase in phrases:
        prefix = phrase.endswith("*")
        words = _flat(phrase.rstrip("*")).strip()
        parts.append(r" " + re.escape(words) + (r"" if prefix else r" "))
    return re.compile("|".join(parts))


EMERGENCY = _compile([
    # English
    "chest pain*", "pain in my chest", "pain in the chest", "chest hurts", "chest is hurting",
    "tight chest", "tightness in my chest", "pressure in my chest", "heart attack*",
    "can't breathe", "cant breathe", "cannot breathe", "can not breathe", "unable to breathe",
    "not breathing", "struggling to breathe", "hard to breathe", "difficulty breathing",
    "trouble breathing", "short of breath", "choking",
    "suicid*", "kill myself", "killing myself", "want to die", "wanna die", "end my life",
    "take my own life", "hurt myself", "self harm*",
    "stroke*", "face drooping", "face is drooping", "slurred speech", "cannot speak",
    "can't speak", "arm is weak", "one side of my body",
    "severe bleeding", "heavy bleeding", "bleeding heavily", "bleeding a lot",
    "won't stop bleeding", "wont stop bleeding", "bleeding that will not stop",
    "unconscious*", "passed out", "not responding", "unresponsive", "fainted", "collapsed",
    "overdose*", "anaphyla*", "seizure*", "poisoned", "poisoning",
    # Danish (normalised: æ = ae, ø = oe, å = aa)
    "brystsmerte*", "smerter i brystet", "ondt i brystet", "trykken for brystet",
    "trykken i brystet", "trykken paa brystet", "hjerteanfald*", "hjertestop",
    "blodprop i hjertet", "kan ikke traekke vejret", "kan ikke faa vejret",
    "kan ikke faa luft", "aandenoed*", "vejrtraekningsbesvaer*", "svaert ved at traekke vejret",
    "selvmord*", "tage mit eget liv", "vil ikke leve mere", "vil ikke leve laengere",
    "har ikke lyst til at leve", "vil doe", "lyst til at doe", "gore skade paa mig selv",
    "goere skade paa mig selv", "skade mig selv",
    "blodprop i hjernen", "hjerneblodning*", "hjernebloedning*", "skaev mund", "sloeret tale",
    "snoevlende tale", "lammet i", "lammelse*",
    "voldsom bloedning", "kraftig bloedning", "bloeder voldsomt", "bloeder kraftigt",
    "bloedning der ikke stopper", "bevidstloes*", "besvimet", "besvimer", "reagerer ikke",
    "overdosis", "kramper", "krampeanfald", "anafylaktisk*", "forgiftet", "forgiftning",
])

_RULES: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    (Intent.HUMAN, _compile([
        "talk to a*", "talk to someone", "talk with a*", "speak to a*", "speak with a*",
        "speak to someone", "real person", "a person", "a human", "human being", "an agent",
        "customer service", "patient service", "someone from", "live chat", "operator",
        "tale med en*", "tale med et menneske", "snakke med en*", "snakke med et menneske",
        "et menneske", "en person", "rigtig person", "en medarbejder", "patientservice",
        "en rigtig",
    ])),
    (Intent.CANCEL, _compile([
        "cancel*", "call off", "can't come", "cannot come", "can not come",
        "aflys*", "afbestil*", "kan ikke komme", "melde afbud", "afbud",
    ])),
    (Intent.BOOK, _compile([
        "book*", "appointment*", "schedule a*", "reschedule", "see a doctor", "see the doctor",
        "see my doctor", "make an appointment", "consultation", "video visit*", "check in",
        "bestil*", "ny tid", "en tid", "tid hos", "tid til", "flytte min tid", "flyt min tid",
        "konsultation", "videokonsultation", "aftale",
    ])),
    (Intent.RESULTS, _compile([
        "result*", "test result*", "blood test*", "lab*", "my records", "medical record*",
        "health record*", "my journal", "x ray", "scan result*",
        "proevesvar*", "provesvar*", "svar paa", "blodproeve*", "resultat*", "journal*",
        "laboratorie*",
    ])),
    (Intent.HOURS, _compile([
        "opening hour*", "open hour*", "are you open", "when are you open", "when do you open",
        "when do you close", "what time do you", "closed on", "are you closed", "phone number",
        "telephone", "call you", "contact you", "contact the", "opening time*",
        "aabningstid*", "aabent", "har i aabent", "har i lukket", "lukket", "telefonnummer*",
        "ringe til jer", "ringe til", "kontakte jer", "kontakt*",
    ])),
    (Intent.MEDICATION, _compile([
        "medication*", "medicine*", "medicin*", "pill*", "tablet*", "dose*", "dosage*",
        "prescription*", "side effect*", "drug*", "insulin", "antibiotic*", "ibuprofen",
        "paracetamol", "painkiller*", "refill*", "renew my*",
        "medicinen", "piller", "pille", "tabletter", "dosis", "recept*", "bivirkning*",
        "antibiotika", "smertestillende", "forny*",
    ])),
    (Intent.SYMPTOM, _compile([
        "symptom*", "pain*", "hurts", "hurting", "ache*", "fever*", "rash*", "cough*",
        "dizzy", "dizziness", "headache*", "vomit*", "diarrh*", "swollen", "swelling",
        "i feel sick", "feeling sick", "i am sick", "i m sick", "itch*", "sore*",
        "symptom*", "smerte*", "ondt", "feber", "udslaet", "hoste*", "svimmel*", "hovedpine",
        "kaster op", "opkast*", "diarre", "haevet", "haevelse", "syg", "kloe*",
    ])),
    (Intent.THANKS, _compile([
        "thank*", "thx", "cheers", "tak", "tusind tak", "mange tak",
    ])),
    (Intent.GREETING, _compile([
        "hi", "hello", "hey", "good morning", "good afternoon", "good evening",
        "hej", "hejsa", "goddag", "godmorgen", "god morgen", "god eftermiddag", "davs",
    ])),
)


def classify(text: str) -> Intent:
    """The first rule that matches (emergencies always win); KNOWLEDGE when none does."""
    flat = _flat(text)
    if EMERGENCY.search(flat):
        return Intent.EMERGENCY
    for intent, pattern in _RULES:
        if pattern.search(flat):
            if intent in (Intent.GREETING, Intent.THANKS) and len(flat.split()) > 6:
                continue  # "hi, my tablets ..." is about the tablets
            return intent
    return Intent.KNOWLEDGE


# -- answers -----------------------------------------------------------------------------------
M_EMERGENCY = N_("Call 112 now. This may be an emergency, and the emergency number 112 can "
                 "help you at once. Do not wait for an answer in this chat.")
M_EMERGENCY_MORE = N_("If you can, ask someone to stay with you. I have also asked a clinician "
                      "to look at this chat.")
M_HUMAN_AGENT = N_("I will find a person to help you. Someone from patient service will join "
                   "this chat as soon as they are free. You can keep writing here meanwhile.")
M_HUMAN_CLINICIAN = N_("I have asked a clinician to join this chat. They will answer as soon as "
                       "they are free. You can keep writing here meanwhile.")
M_ALREADY = N_("A person has already been asked to join this chat. Please wait a moment; you "
               "can keep writing here meanwhile.")
M_BOOK = N_("You can book an appointment yourself in the portal: choose the kind of "
            "appointment, the specialty and a free time.")
M_CANCEL = N_("You can cancel an appointment under Appointments: open the appointment and "
              "choose Cancel appointment.")
M_RESULTS = N_("Your test results and the rest of your records are under Medical records.")
M_HOURS_PHONE = N_("You can call us on %(phone)s.")
M_HOURS_FALLBACK = N_("Our opening hours are in the article below.")
M_MEDICATION = N_("You can see your medicines under Medical records. I cannot give advice "
                  "about your own treatment: please ask your care team, or ask me to find a "
                  "person for you.")
M_SYMPTOM = N_("I cannot assess symptoms. If you are worried, book an appointment, or ask "
               "to talk to a person. If it is serious, call 112, or the medical helpline "
               "1813 when we are closed.")
M_GREETING = N_("Hello! I am the Health Bot. I can help you book or cancel an appointment, "
                "find your results and medicines, tell you our opening hours, and answer "
                "general health questions from our health articles. What can I help you with?")
M_THANKS = N_("You are welcome. Is there anything else I can help you with?")
M_ARTICLES = N_("These health articles may answer your question:")
M_MORE_ARTICLES = N_("You may also find these articles useful:")
M_UNKNOWN = N_("Sorry, I did not understand that. Please try other words, or ask to talk to "
               "a person.")
M_GIVE_UP = N_("Sorry, I could not help you with that. I am passing this chat on to a person "
               "from patient service, who will join as soon as they are free.")

L_BOOK = N_("Book an appointment")
L_APPOINTMENTS = N_("My appointments")
L_RECORDS = N_("Medical records")
L_MEDICINES = N_("My medicines")
L_ASK_TEAM = N_("Write to your care team")

REASONS = {
    Intent.EMERGENCY: "Emergency words in the chat",
    Intent.HUMAN: "The patient asked for a person",
    Intent.UNKNOWN: "The Health Bot could not help twice in a row",
}


def _article_links(hits: Sequence[ArticleHit], skip: set[str] | None = None) -> tuple[Link, ...]:
    return tuple(
        Link(hit.title, f"/knowledge/{hit.id}", hit.id) for hit in hits if hit.id not in (skip or set())
    )


def reply(
    text: str,
    context: Context,
    *,
    page_language: str,
    gettext: Gettext,
    knowledge: Knowledge,
    facts: Facts | None = None,
    with_person: bool = False,
) -> Reply | None:
    """The bot's answer to one message; None when a person is answering (and it is no emergency)."""
    language = detect_language(text, page_language)
    facts = facts or Facts()

    def _(message: str) -> str:
        return gettext(language, message)

    intent = classify(text)

    def escalate(reason: Intent, target: Target, urgent: bool = False) -> Escalation | None:
        if context.escalated:
            return None
        return Escalation(target, REASONS[reason], urgent)

    if intent is Intent.EMERGENCY:
        more = "" if context.escalated else " " + _(M_EMERGENCY_MORE)
        return Reply(intent, language, _(M_EMERGENCY) + more,
                     escalation=escalate(Intent.EMERGENCY, Target.CLINICIAN, urgent=True),
                     urgent=True)
    if with_person:
        return None
    if intent is Intent.HUMAN:
        if context.escalated:
            return Reply(intent, language, _(M_ALREADY))
        target = Target.CLINICIAN if context.clinical else Target.PATIENT_SERVICE
        message = M_HUMAN_CLINICIAN if target is Target.CLINICIAN else M_HUMAN_AGENT
        return Reply(intent, language, _(message), escalation=escalate(Intent.HUMAN, target))
    if intent is Intent.CANCEL:
        return Reply(intent, language, _(M_CANCEL), (Link(_(L_APPOINTMENTS), "/appointments"),))
    links: tuple[Link, ...]
    if intent is Intent.BOOK:
        links = (Link(_(L_BOOK), "/appointments/new"), Link(_(L_APPOINTMENTS), "/appointments"))
        return Reply(intent, language, _(M_BOOK), links)
    if intent is Intent.RESULTS:
        return Reply(intent, language, _(M_RESULTS), (Link(_(L_RECORDS), "/records"),))
    if intent is Intent.HOURS:
        parts = []
        hours = facts.opening_hours.get(language) or facts.opening_hours.get("en")
        parts.append(hours or _(M_HOURS_FALLBACK))
        if facts.phone:
            parts.append(_(M_HOURS_PHONE) % {"phone": facts.phone})
        article = facts.hours_article
        if article is not None:
            article = ArticleHit(article.id, facts.hours_titles.get(language, article.title))
        links = _article_links([article]) if article is not None else ()
        return Reply(intent, language, " ".join(parts), links)
    if intent is Intent.MEDICATION:
        links = (Link(_(L_MEDICINES), "/records/medications"), Link(_(L_ASK_TEAM), "/messages/new"))
        links += _article_links(knowledge.relevant(text, language, 2, topic="medicines"))
        return Reply(intent, language, _(M_MEDICATION), links)
    if intent is Intent.SYMPTOM:
        hits = knowledge.relevant(text, language, 3)
        message = _(M_SYMPTOM) + (" " + _(M_MORE_ARTICLES) if hits else "")
        links = _article_links(hits) + (Link(_(L_BOOK), "/appointments/new"),)
        return Reply(intent, language, message, links)
    if intent is Intent.THANKS:
        return Reply(intent, language, _(M_THANKS))
    if intent is Intent.GREETING:
        return Reply(intent, language, _(M_GREETING))
    hits = knowledge.relevant(text, language, 3)
    if hits:
        return Reply(Intent.KNOWLEDGE, language, _(M_ARTICLES), _article_links(hits))
    if context.misses >= 1 and not context.escalated:
        target = Target.CLINICIAN if context.clinical else Target.PATIENT_SERVICE
        return Reply(Intent.UNKNOWN, language, _(M_GIVE_UP),
                     escalation=escalate(Intent.UNKNOWN, target))
    return Reply(Intent.UNKNOWN, language, _(M_UNKNOWN))
