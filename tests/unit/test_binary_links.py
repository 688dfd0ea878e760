"""Which attachment URLs name a Binary on this FHIR server (and nothing else)."""

from __future__ import annotations

import pytest

from fhir_portal.fhir.binary import attachment_urls, binary_id

BASE = "http://127.0.0.1:8090/fhir"


@pytest.mark.parametrize(("url", "expected"), [
    ("Binary/abc-1", "abc-1"),
    (f"{BASE}/Binary/abc-1", "abc-1"),
    (f"{BASE}/Binary/abc-1/_history/2", None),
    ("https://evil.example/fhir/Binary/abc-1", None),
    ("Binary/../Patient/x", None),
    ("Binary/abc?x=1", None),
    ("DocumentReference/abc", None),
    ("Binary/", None),
    ("http://127.0.0.1:8090/fhirX/Binary/abc", None),
])
def test_binary_id(url: str, expected: str | None) -> None:
    assert binary_id(BASE, url) == expected


def test_attachment_urls_are_those_of_attachments_only() -> None:
    message = {
        "resourceType": "Communication",
        "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
        "payload": [
            {"contentString": "see file"},
            {"contentAttachment": {"contentType": "application/pdf", "url": "Binary/1"}},
        ],
    }
    assert list(attachment_urls(message)) == ["Binary/1"]
