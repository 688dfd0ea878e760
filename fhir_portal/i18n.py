"""Translations from the Babel catalogues in ``locale/<lang>/LC_MESSAGES/messages.po``.

The ``.po`` files are read directly at start-up (no compile step), so a catalogue edit
shows after a restart and CI needs no generated files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.pofile import read_po
from babel.support import NullTranslations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES: dict[str, str] = {"en": "English", "da": "Dansk"}


class CatalogTranslations(NullTranslations):
    """gettext over an in-memory Babel catalogue; untranslated strings fall back to English."""

    def __init__(self, messages: dict[str, str], plurals: dict[str, list[str]]) -> None:
        super().__init__()
        self._messages = messages
        self._plurals = plurals

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, singular: str, plural: str, n: int) -> str:  # type: ignore[override]
        forms = self._plurals.get(singular)
        if forms:
            index = 0 if n == 1 else 1  # English and Danish both: one, other
            if 0 <= index < len(forms) and forms[index]:
                return forms[index]
        return singular if n == 1 else plural


def catalog_files(language: str) -> list[Path]:
    """``messages.po`` and any per-area ``*.po`` beside it, merged in name order."""
    return sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po"))


def _load(language: str) -> NullTranslations:
    messages: dict[str, str] = {}
    plurals: dict[str, list[str]] = {}
    for path in catalog_files(language):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            if isinstance(message.id, tuple | list):
                plurals[message.id[0]] = [str(form) for form in message.string or ()]
            elif message.string:
                messages[str(message.id)] = str(message.string)
    return CatalogTranslations(messages, plurals)


@dataclass
class Translations:
    """One gettext object per shipped language."""

    by_language: dict[str, NullTranslations] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Translations:
        return cls({language: _load(language) for language in LANGUAGES})

    def get(self, language: str) -> NullTranslations:
        return self.by_language.get(language) or self.by_language["en"]


def negotiate(accept_language: str | None, default: str) -> str:
    """The best shipped language for an Accept-Language header."""
    if not accept_language:
        return default
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        piece, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((weight, piece.strip().lower().split("-")[0]))
    for _, language in sorted(ranked, key=lambda item: -item[0]):
        if language in LANGUAGES:
            return language
    return default


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for extraction; it is translated where it is shown."""
    return message
