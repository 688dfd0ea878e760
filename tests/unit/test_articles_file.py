"""The knowledge articles fixture: a FHIR R4 Bundle of bilingual DocumentReferences."""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.documentreference import DocumentReference

ARTICLES = Path(__file__).resolve().parents[2] / "fixtures" / "articles.json"

TYPE_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/document-type"
TOPIC_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/knowledge-topic"
ARTICLE_ID_SYSTEM = "http://fhir-portal.example.org/fhir/knowledge-article"
TOPICS = {
    "heart",
    "diabetes",
    "mental-health",
    "skin",
    "children",
    "medicines",
    "infections",
    "lifestyle",
    "using-the-portal",
}
ID_PATTERN = re.compile(r"kb-[a-z0-9-]+")
HTML_TAG = re.compile(r"<[A-Za-z]")
WORD = re.compile(r"\w", re.UNICODE)
SEEK_HELP = {"en": "## When to seek help", "da": "## Hvornår skal du søge hjælp"}


def _load() -> dict[str, Any]:
    with ARTICLES.open(encoding="utf-8") as handle:
        return json.load(handle)


BUNDLE = _load()
RESOURCES: list[dict[str, Any]] = [entry["resource"] for entry in BUNDLE.get("entry", [])]
DOCUMENTS = [r for r in RESOURCES if r.get("resourceType") == "DocumentReference"]


def _validate(resource: dict[str, Any]) -> DocumentReference:
    if hasattr(DocumentReference, "model_validate"):
        return DocumentReference.model_validate(resource)
    return DocumentReference.parse_obj(resource)  # pragma: no cover - pydantic v1 releases


def _decode(attachment: dict[str, Any]) -> str:
    try:
        raw = base64.b64decode(attachment["data"], validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - failure path
        raise AssertionError(f"attachment data is not valid base64: {exc}") from exc
    return raw.decode("utf-8")


def _words(text: str) -> int:
    return sum(1 for token in text.split() if WORD.search(token))


def _topic(resource: dict[str, Any]) -> str:
    codes = [
        coding["code"]
        for concept in resource.get("category", [])
        for coding in concept.get("coding", [])
        if coding.get("system") == TOPIC_SYSTEM
    ]
    assert len(codes) == 1, f"{resource['id']}: expected exactly one topic coding, got {codes}"
    return codes[0]


def _ids(resource: dict[str, Any]) -> str:
    return resource.get("id", "?")


def test_file_is_a_collection_bundle() -> None:
    assert BUNDLE["resourceType"] == "Bundle"
    assert BUNDLE["type"] == "collection"
    assert all("resource" in entry for entry in BUNDLE["entry"])


def test_at_least_fourteen_document_references() -> None:
    assert len(DOCUMENTS) >= 14
    assert len(DOCUMENTS) == len(RESOURCES), "the bundle holds only DocumentReferences"


def test_ids_are_unique_and_well_formed() -> None:
    ids = [doc["id"] for doc in DOCUMENTS]
    assert len(ids) == len(set(ids))
    for resource_id in ids:
        assert ID_PATTERN.fullmatch(resource_id), resource_id
        assert len(resource_id) <= 64, resource_id


def test_every_topic_is_covered() -> None:
    topics = {_topic(doc) for doc in DOCUMENTS}
    assert topics == TOPICS


@pytest.mark.parametrize("resource", DOCUMENTS, ids=_ids)
def test_validates_as_fhir_document_reference(resource: dict[str, Any]) -> None:
    model = _validate(resource)
    assert model.id == resource["id"]
    assert len(model.content) == 2


@pytest.mark.parametrize("resource", DOCUMENTS, ids=_ids)
def test_shape(resource: dict[str, Any]) -> None:
    assert resource["status"] == "current"
    assert resource["docStatus"] == "final"
    assert resource["type"]["coding"] == [
        {"system": TYPE_SYSTEM, "code": "knowledge-article", "display": "Knowledge article"}
    ]
    assert resource["type"]["text"] == "Knowledge article"
    assert _topic(resource) in TOPICS
    assert resource["author"] == [
        {"reference": "Organization/org-contoso", "display": "Contoso Healthcare"}
    ]
    slug = resource["id"].removeprefix("kb-")
    assert resource["identifier"] == [{"system": ARTICLE_ID_SYSTEM, "value": slug}]
    assert resource["description"].strip()
    assert "subject" not in resource
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", resource["date"])


@pytest.mark.parametrize("resource", DOCUMENTS, ids=_ids)
def test_english_and_danish_markdown_bodies(resource: dict[str, Any]) -> None:
    content = resource["content"]
    assert [c["attachment"].get("language") for c in content] == ["en", "da"]
    for item in content:
        attachment = item["attachment"]
        language = attachment["language"]
        where = f"{resource['id']} [{language}]"
        assert attachment["contentType"] == "text/markdown", where
        assert attachment.get("title", "").strip(), f"{where}: no title"
        body = _decode(attachment)
        assert _words(body) >= 150, f"{where}: only {_words(body)} words"
        assert "\n## " in body or body.startswith("## "), f"{where}: no ## headings"
        assert SEEK_HELP[language] in body, f"{where}: no '{SEEK_HELP[language]}' section"
        assert not HTML_TAG.search(body), f"{where}: raw HTML in markdown"
        assert "![" not in body, f"{where}: images are not allowed"


def test_titles_differ_between_languages() -> None:
    for doc in DOCUMENTS:
        english, danish = (c["attachment"]["title"] for c in doc["content"])
        assert english != danish, doc["id"]


def test_diabetes_articles_use_the_words_patients_search_for() -> None:
    diabetes = [doc for doc in DOCUMENTS if _topic(doc) == "diabetes"]
    assert diabetes
    assert any("diabetes" in _decode(doc["content"][0]["attachment"]).lower() for doc in diabetes)
    assert any("sukkersyge" in _decode(doc["content"][1]["attachment"]).lower() for doc in diabetes)


def test_emergency_numbers_are_danish() -> None:
    bodies = [_decode(c["attachment"]) for doc in DOCUMENTS for c in doc["content"]]
    assert all("911" not in body and "999" not in body for body in bodies)
    assert sum("112" in body for body in bodies) >= len(DOCUMENTS)
    phone_numbers = {match for body in bodies for match in re.findall(r"\+45[\d ]{8,}\d", body)}
    assert phone_numbers <= {"+45 70 10 20 30"}
