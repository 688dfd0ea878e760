"""The knowledge index: ranked, bilingual, typo-tolerant search; safe markdown rendering."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from fhir_portal.chat.knowledge_index import Field, SearchIndex, edit_distance, normalise, stem
from fhir_portal.resources.knowledge import KnowledgeLibrary, parse_article, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def _articles() -> list[dict]:
    bundle = json.loads((ROOT / "fixtures" / "articles.json").read_text())
    return [entry["resource"] for entry in bundle["entry"]]


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    library = KnowledgeLibrary()
    library.apply(_articles())
    return library


def top(library: KnowledgeLibrary, query: str, language: str = "en") -> list[str]:
    return [item.id for item in library.search(query, language, limit=3)]


def test_a_misspelling_finds_the_diabetes_article(library) -> None:
    assert top(library, "diabetis")[0] == "kb-type-2-diabetes"
    assert top(library, "depresion")[0] == "kb-depression"
    assert top(library, "hypoglycemia")[0] == "kb-blood-sugar-and-hypoglycaemia"


@pytest.mark.parametrize(("query", "article"), [
    ("brystsmerter", "kb-chest-pain-heart-attack"),
    ("eksem", "kb-eczema"),
    ("rygestop", "kb-quitting-smoking"),
    ("forny recept", "kb-taking-medicines-safely"),
    ("feber hos børn", "kb-fever-in-children"),
    ("åbningstider", "kb-opening-hours-and-contact"),
    ("aabningstider", "kb-opening-hours-and-contact"),  # å written as aa
    ("blodsukker", "kb-blood-sugar-and-hypoglycaemia"),
])
def test_danish_queries(library, query, article) -> None:
    assert top(library, query, "da")[0] == article


def test_results_are_titled_in_the_page_language(library) -> None:
    [hit] = library.search("eksem", "da", limit=1)
    assert hit.title.startswith("Eksem") and hit.language == "da"
    [hit] = library.search("eksem", "en", limit=1)
    assert hit.title.startswith("Eczema") and hit.language == "en"


def test_a_title_hit_beats_a_body_hit() -> None:
    index = SearchIndex()
    body = "Some general advice. " * 5 + "Asthma is mentioned here once, in passing."
    index.put("body-hit", [Field("Breathing exercises", "en", 4.0), Field(body, "en")])
    index.put("title-hit", [Field("Asthma", "en", 4.0),
                            Field("General advice about living well with a long-term condition.", "en")])
    index.put("other", [Field("Sleep", "en", 4.0), Field("How to sleep better.", "en")])
    hits = index.search("asthma")
    assert [h.id for h in hits] == ["title-hit", "body-hit"]
    assert hits[0].score > hits[1].score


def test_fuzzy_limits_follow_term_length() -> None:
    index = SearchIndex()
    index.put("a", [Field("insulin", "en")])
    index.put("b", [Field("pain", "en")])
    assert [h.id for h in index.search("insulim")] == ["a"]  # 7 letters: one edit
    assert [h.id for h in index.search("imsulim")] == []  # two edits on a 7-letter word: no
    assert [h.id for h in index.search("paim")] == []  # under 5 letters: exact only
    index.put("c", [Field("vaccination", "en")])
    assert [h.id for h in index.search("vacsinnation")] == ["c"]  # 12 letters: two edits


def test_normalisation_and_stemming() -> None:
    assert normalise("Åbningstider Øre Æble café") == "aabningstider oere aeble cafe"
    assert stem("diabetes", "en") == stem("diabetes", "en")
    assert stem("tests", "en") == stem("test", "en")
    assert stem("artiklerne", "da") == stem("artikler", "da") or stem("artiklerne", "da").startswith("artikl")
    assert edit_distance("diabetis", "diabetes", 2) == 1


def test_updates_replace_and_withdrawn_articles_leave_the_index(library) -> None:
    fresh = KnowledgeLibrary()
    articles = _articles()
    fresh.apply(articles)
    eczema = next(a for a in articles if a["id"] == "kb-eczema")
    changed = json.loads(json.dumps(eczema))
    changed["meta"] = {"versionId": "2", "lastUpdated": "2030-01-01T00:00:00Z"}
    changed["content"][0]["attachment"]["title"] = "Itchy skin and zebrafinch care"
    assert fresh.apply([changed]) == 1
    assert top(fresh, "zebrafinch")[0] == "kb-eczema"
    assert fresh.watermark == "2030-01-01T00:00:00Z"
    withdrawn = {**changed, "status": "entered-in-error",
                 "meta": {"versionId": "3", "lastUpdated": "2030-01-02T00:00:00Z"}}
    fresh.apply([withdrawn])
    assert "kb-eczema" not in fresh.articles
    assert top(fresh, "zebrafinch") == []


def test_markdown_is_rendered_safely() -> None:
    html = str(render_markdown(
        "# Title\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(1)) [data](data:text/html,x) "
        "[ok](https://example.org) [mail](mailto:a@b.dk) [local](/knowledge/kb-eczema)"))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html and 'href="data' not in html
    assert 'href="https://example.org"' in html and 'href="mailto:a@b.dk"' in html
    assert 'href="/knowledge/kb-eczema"' in html
    assert "<h2>Title</h2>" in html  # article headings sit below the page's h1


def test_article_falls_back_to_the_other_language() -> None:
    resource = {
        "resourceType": "DocumentReference", "id": "kb-only-danish", "status": "current",
        "content": [{"attachment": {"contentType": "text/markdown", "language": "da",
                                    "title": "Kun på dansk",
                                    "data": base64.b64encode(b"Hej **verden**").decode()}}],
    }
    article = parse_article(resource)
    assert article is not None
    assert article.text("en").language == "da"
    assert article.title("en") == "Kun på dansk"
