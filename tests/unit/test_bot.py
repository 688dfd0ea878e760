"""The Health Bot's rules in English and Danish: intents, emergencies first, escalation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_portal.chat import bot
from fhir_portal.chat.bot import Context, Intent, Target
from fhir_portal.i18n import Translations
from fhir_portal.resources.chat import LibraryKnowledge
from fhir_portal.resources.knowledge import KnowledgeLibrary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def knowledge() -> LibraryKnowledge:
    library = KnowledgeLibrary()
    bundle = json.loads((ROOT / "fixtures" / "articles.json").read_text())
    library.apply([entry["resource"] for entry in bundle["entry"]])
    return LibraryKnowledge(library)


@pytest.fixture(scope="module")
def gettext():  # type: ignore[no-untyped-def]
    catalogues = Translations.load()
    return lambda language, message: catalogues.get(language).gettext(message)


def ask(text: str, knowledge: LibraryKnowledge, gettext, context: Context | None = None,  # type: ignore[no-untyped-def]
        page: str = "en", **kwargs) -> bot.Reply:
    answer = bot.reply(text, context or Context(), page_language=page, gettext=gettext,
                       knowledge=knowledge, **kwargs)
    assert answer is not None
    return answer


@pytest.mark.parametrize("text", [
    "I have chest pain", "My chest hurts and my left arm is numb", "I can't breathe",
    "I cannot breathe properly", "I'm having suicidal thoughts", "I want to die",
    "I think my dad has a stroke, his face is drooping", "there is severe bleeding from the cut",
    "my wife is unconscious",
    "Jeg har brystsmerter", "jeg har trykken for brystet", "Jeg kan ikke trække vejret",
    "Jeg har åndenød", "Jeg har selvmordstanker", "Jeg vil ikke leve mere",
    "min mand er bevidstløs", "der er en voldsom blødning",
])
def test_emergency_words_tell_the_patient_to_call_112_first(text, knowledge, gettext) -> None:
    answer = ask(text, knowledge, gettext)
    assert answer.intent is Intent.EMERGENCY
    assert answer.urgent
    assert answer.text.startswith(("Call 112", "Ring 112"))
    assert answer.escalation is not None
    assert answer.escalation.urgent and answer.escalation.target is Target.CLINICIAN


def test_emergency_wins_over_any_other_request_and_over_a_person_in_the_chat(knowledge, gettext) -> None:
    answer = ask("I want to book an appointment because I have chest pain", knowledge, gettext)
    assert answer.intent is Intent.EMERGENCY
    with_person = bot.reply("jeg har brystsmerter", Context(escalated=True), page_language="en",
                            gettext=gettext, knowledge=knowledge, with_person=True)
    assert with_person is not None and with_person.intent is Intent.EMERGENCY
    assert with_person.text.startswith("Ring 112")


def test_a_person_in_the_chat_silences_the_bot(knowledge, gettext) -> None:
    assert bot.reply("how do I book?", Context(escalated=True), page_language="en",
                     gettext=gettext, knowledge=knowledge, with_person=True) is None


@pytest.mark.parametrize(("text", "intent", "href"), [
    ("I want to book an appointment", Intent.BOOK, "/appointments/new"),
    ("Jeg vil gerne bestille en tid hos lægen", Intent.BOOK, "/appointments/new"),
    ("Please cancel my appointment tomorrow", Intent.CANCEL, "/appointments"),
    ("Jeg vil aflyse min tid", Intent.CANCEL, "/appointments"),
    ("Where are my test results?", Intent.RESULTS, "/records"),
    ("Hvor kan jeg se mine prøvesvar?", Intent.RESULTS, "/records"),
    ("I have a question about my medication", Intent.MEDICATION, "/records/medications"),
    ("Kan jeg tage min medicin med alkohol?", Intent.MEDICATION, "/messages/new"),
])
def test_common_requests_link_to_the_right_page(text, intent, href, knowledge, gettext) -> None:
    answer = ask(text, knowledge, gettext)
    assert answer.intent is intent
    assert href in [link.href for link in answer.links]
    assert answer.escalation is None


def test_answers_come_in_the_language_the_patient_writes(knowledge, gettext) -> None:
    danish = ask("Hvornår har I åbent?", knowledge, gettext, page="en")
    assert danish.language == "da" and danish.intent is Intent.HOURS
    english = ask("When are you open?", knowledge, gettext, page="da")
    assert english.language == "en"
    assert ask("Jeg vil bestille en tid", knowledge, gettext).text.startswith("Du kan selv bestille")


def test_opening_hours_come_from_the_facts(knowledge, gettext) -> None:
    facts = bot.Facts(opening_hours={"en": "We are open Monday to Friday 08:00-16:00.",
                                     "da": "Vi har åbent mandag til fredag kl. 8-16."},
                      phone="+45 70 10 20 30",
                      hours_article=bot.ArticleHit("kb-opening-hours-and-contact", "Opening hours"),
                      hours_titles={"da": "Åbningstider og kontakt"})
    answer = ask("what are your opening hours", knowledge, gettext, facts=facts)
    assert "Monday to Friday" in answer.text and "+45 70 10 20 30" in answer.text
    assert answer.links[0].href == "/knowledge/kb-opening-hours-and-contact"
    danish = ask("hvad er jeres åbningstider", knowledge, gettext, facts=facts)
    assert "mandag til fredag" in danish.text
    assert danish.links[0].label == "Åbningstider og kontakt"


def test_medication_question_links_articles_and_the_care_team(knowledge, gettext) -> None:
    answer = ask("How do I renew my prescription?", knowledge, gettext)
    assert answer.intent is Intent.MEDICATION
    assert "/knowledge/kb-taking-medicines-safely" in [link.href for link in answer.links]
    danish = ask("Jeg har et spørgsmål om min medicin", knowledge, gettext)
    articles = [link.article_id for link in danish.links if link.article_id]
    assert articles and set(articles) <= {"kb-taking-medicines-safely", "kb-antibiotics"}
    assert danish.links[0].label == "Min medicin"


def test_health_questions_are_answered_from_the_articles(knowledge, gettext) -> None:
    answer = ask("what is diabetis", knowledge, gettext)
    assert answer.intent is Intent.KNOWLEDGE
    assert answer.links[0].article_id == "kb-type-2-diabetes"
    danish = ask("rygestop", knowledge, gettext)
    assert danish.links[0].article_id == "kb-quitting-smoking"


@pytest.mark.parametrize("text", ["I want to talk to a person", "Can I speak to someone?",
                                  "Jeg vil gerne tale med et menneske",
                                  "Kan jeg snakke med en medarbejder?"])
def test_asking_for_a_person_escalates_to_patient_service(text, knowledge, gettext) -> None:
    answer = ask(text, knowledge, gettext)
    assert answer.intent is Intent.HUMAN
    assert answer.escalation is not None
    assert answer.escalation.target is Target.PATIENT_SERVICE and not answer.escalation.urgent


def test_after_a_medication_question_a_person_means_a_clinician(knowledge, gettext) -> None:
    answer = ask("talk to a person please", knowledge, gettext, Context(clinical=True))
    assert answer.escalation is not None and answer.escalation.target is Target.CLINICIAN


def test_already_escalated_does_not_escalate_twice(knowledge, gettext) -> None:
    answer = ask("talk to a person", knowledge, gettext, Context(escalated=True))
    assert answer.escalation is None
    assert "already" in answer.text


def test_two_misses_in_a_row_escalate(knowledge, gettext) -> None:
    first = ask("xqzzy blorf", knowledge, gettext, Context(misses=0))
    assert first.intent is Intent.UNKNOWN and first.escalation is None and not first.helped
    second = ask("wibble wobble plonk", knowledge, gettext, Context(misses=1))
    assert second.escalation is not None
    assert second.escalation.reason == "The Health Bot could not help twice in a row"


def test_greetings_and_thanks(knowledge, gettext) -> None:
    assert ask("Hello", knowledge, gettext).intent is Intent.GREETING
    assert ask("Hej", knowledge, gettext).language == "da"
    assert ask("Mange tak", knowledge, gettext).intent is Intent.THANKS
    # a greeting in front of a real question is about the question
    assert ask("Hi, how long does it take before I get my test results back from the lab?",
               knowledge, gettext).intent is Intent.RESULTS
