"""Both shipped catalogues hold every user-visible string, translated."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from fhir_portal.i18n import catalog_files

ROOT = Path(__file__).resolve().parents[2]


def _extracted(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "N_", "-k",
         "translate:2", "-o", str(pot), str(ROOT / "fhir_portal")]
    )
    with pot.open("rb") as fh:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}


@pytest.mark.parametrize("language", ["en", "da"])
def test_catalogue_is_complete(tmp_path: Path, language: str) -> None:
    wanted = _extracted(tmp_path)
    translated: set[str] = set()
    for path in catalog_files(language):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language)
        translated |= {
            (m.id if isinstance(m.id, str) else m.id[0])
            for m in catalog
            if m.id and not m.fuzzy and (all(m.string) if isinstance(m.string, tuple) else m.string)
        }
    missing = sorted(wanted - translated)
    assert not missing, (
        f"{language}: {len(missing)} untranslated (run scripts/update-catalogs): {missing[:10]}"
    )


def test_danish_catalogue_keeps_placeholders() -> None:
    import re

    placeholder = re.compile(r"%\((\w+)\)s")
    catalog = [m for path in catalog_files("da") for m in read_po(path.open("rb"), locale="da")]
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set(placeholder.findall(ids[0]))
        for text in strings:
            assert set(placeholder.findall(text)) <= expected | {"num"}, message.id
