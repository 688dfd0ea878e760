"""Record view models from any valid R4 JSON, sparse or rich (no servers)."""

from __future__ import annotations

import base64

from fhir_portal.fhir.model import attachment_text, narrative_text
from fhir_portal.resources import records


class NoDirectory(records._Directory):
    """A directory that found nothing (every referenced resource is missing)."""

    def __init__(self) -> None:
        self._found = {}


def test_attachment_text_decodes_text_with_its_charset_and_refuses_binary() -> None:
    latin = base64.b64encode("Blodtryk målt".encode("latin-1")).decode()
    assert (
        attachment_text({"contentType": "text/plain; charset=ISO-8859-1", "data": latin}) == "Blodtryk målt"
    )
    utf8 = base64.b64encode("Ærø".encode()).decode()
    assert attachment_text({"data": utf8}) == "Ærø"  # no content type: read as text
    assert attachment_text({"contentType": "application/pdf", "data": utf8}) is None
    assert attachment_text({"url": "https://x.example/a.pdf"}) is None
    assert attachment_text({"contentType": "text/plain; charset=nonsense", "data": utf8}) is None


def test_narrative_text_drops_markup_and_keeps_lines() -> None:
    div = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>Line one &amp; more</p>'
        "<ul><li>A</li><li>B</li></ul></div>"
    )
    assert narrative_text({"div": div}) == "Line one & more\nA\nB"
    assert narrative_text(None) == ""


def test_sparse_records_render_with_defaults() -> None:
    directory = NoDirectory()
    med = records.medication_item(
        {
            "resourceType": "MedicationRequest",
            "id": "m",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/p"},
            "medicationReference": {"reference": "Medication/missing"},
        },
        directory,
    )
    assert med.name == "Medication/missing" and med.current and med.dosage == [] and med.by == ""
    allergy = records.allergy_item(
        {"resourceType": "AllergyIntolerance", "id": "a", "patient": {"reference": "Patient/p"}}
    )
    assert allergy.name == "" and allergy.current and allergy.reactions == []
    condition = records.condition_item(
        {
            "resourceType": "Condition",
            "id": "c",
            "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"code": "44054006"}]},
            "onsetAge": {"value": 42, "unit": "years"},
        }
    )
    assert condition.name == "44054006" and condition.onset == "42 years"
    visit = records.visit_item(
        {"resourceType": "Encounter", "id": "e", "status": "finished", "class": {"code": "HH"}}, directory
    )
    assert visit.type == "HH" and visit.practitioners == [] and not visit.current
    team = records.care_team_item(
        {
            "resourceType": "CareTeam",
            "id": "t",
            "participant": [{"member": {"reference": "Practitioner/gone"}}],
        },
        directory,
        "Patient/p",
    )
    assert team.members[0].name == "" and team.members[0].contacts == []


def test_codes_prefer_text_then_display_then_code_and_references_their_display() -> None:
    directory = NoDirectory()
    med = records.medication_item(
        {
            "resourceType": "MedicationStatement",
            "id": "m",
            "status": "stopped",
            "medicationCodeableConcept": {"coding": [{"code": "N02BE01", "display": "paracetamol"}]},
            "informationSource": {"display": "Pharmacy"},
            "reasonReference": [{"reference": "Condition/c1"}, {"display": "Pain"}],
        },
        directory,
        {"Condition/c1": {"resourceType": "Condition", "code": {"text": "Back pain"}}},
    )
    assert med.name == "paracetamol" and med.by == "Pharmacy" and not med.current
    assert med.reason == ["Back pain", "Pain"]


def test_document_notes_decode_data_link_urls_and_never_link_other_schemes() -> None:
    data = base64.b64encode(b"Plan: rest").decode()
    notes = records.document_notes(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "author": [{"display": "Dr. A"}],
            "content": [
                {"attachment": {"contentType": "text/plain", "data": data, "title": "Note"}},
                {"attachment": {"url": "https://ehr.example/n.pdf", "contentType": "application/pdf"}},
                {"attachment": {"url": "javascript:alert(1)"}},
            ],
        }
    )
    assert [(n.text, n.url) for n in notes] == [
        ("Plan: rest", None),
        (None, "https://ehr.example/n.pdf"),
        (None, None),
    ]
    assert notes[0].author == "Dr. A"


def test_contact_points_skip_ended_and_duplicates_phone_first() -> None:
    points = records.contact_points(
        [
            {"system": "email", "value": "a@x.example"},
            {"system": "phone", "value": "+45 1"},
            {"system": "phone", "value": "+45 1"},
            {"system": "phone", "value": "+45 old", "period": {"end": "2020-01-01"}},
        ]
    )
    assert [(p.system, p.value) for p in points] == [("phone", "+45 1"), ("email", "a@x.example")]


def test_paginate_clamps_the_page() -> None:
    paged = records.paginate(list(range(45)), 9, size=20)
    assert (paged.page, paged.pages, paged.items) == (3, 3, list(range(40, 45)))
    assert records.paginate([], 1).pages == 1
