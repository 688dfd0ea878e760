"""An in-memory full-text index: BM25 over weighted fields, English and Danish, fuzzy.

Pure and synchronous: documents in, ranked ids out. ``resources/knowledge.py`` feeds it
the knowledge articles read from FHIR and keeps it fresh.

- Normalisation: lower case; æ/ø/å become ae/oe/aa (so "Aabenraa" and "Åbenrå" meet);
  other accents are stripped ("café" = "cafe").
- Stemming: a light suffix stripper per language (English and Danish); a query term is
  tried with both, so a Danish word on an English page still finds its article.
- Fuzzy terms: a query term that is not in the vocabulary matches vocabulary terms within
  edit distance 1 (terms of 5+ letters) or 2 (8+ letters): "diabetis" finds "diabetes".
  Long terms also match as the start of longer (compound) words: "blodsukker" finds
  "blodsukkermåling".
- Ranking: BM25 (k1 1.2, b 0.75) where a field's weight multiplies its term frequency, so
  a hit in the title outranks the same hit in the body.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

K1 = 1.2
B = 0.75
FUZZY_WEIGHT = {0: 1.0, 1: 0.8, 2: 0.6}
PREFIX_WEIGHT = 0.5

_TOKEN = re.compile(r"[a-z0-9]+")
_DANISH_LETTERS = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe"})

STOPWORDS = frozenset(
    """a an and are as at be been but by can could do does for from had has have how i if in
    into is it its me my no not of on or our so than that the their them then there these
    they this to too was we were what when where which who why will with would you your
    og i at er det en et den de der du har jeg til af for med på paa som kan ikke min mit
    mine om vi var men eller hvad hvor hvordan hvornår hvornaar skal vil jeg mig dig sig
    os jer hans hendes deres dem fra ved over under efter før foer også ogsaa så saa nu
    her man meget mere question questions spoergsmaal""".split()
)


def normalise(text: str) -> str:
    """Lower case, Danish letters spelled out, other accents removed."""
    text = text.lower().translate(_DANISH_LETTERS)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(normalise(text)) if t not in STOPWORDS]


_EN_SUFFIXES = ("ations", "ation", "ness", "ments", "ment", "ings", "ing", "ies", "ied", "ers",
                "er", "ed", "es", "ly", "s")
_DA_SUFFIXES = ("erendes", "erende", "hedens", "heden", "ernes", "erne", "enes", "ende", "ene",
                "ede", "hed", "ers", "ere", "ens", "ets", "lig", "er", "en", "et", "es", "e", "s")


def _strip(term: str, suffixes: tuple[str, ...], keep: int) -> str:
    for suffix in suffixes:
        if term.endswith(suffix) and len(term) - len(suffix) >= keep:
            stem = term[: -len(suffix)]
            if suffix in ("ies", "ied"):
                stem += "y"
            return stem
    return term


def stem(term: str, language: str) -> str:
    """A light stem: enough to join singular/plural and definite forms, never below 3 letters."""
    if len(term) <= 3 or term.isdigit():
        return term
    if language == "da":
        return _strip(term, _DA_SUFFIXES, 3)
    return _strip(term, _EN_SUFFIXES, 3)


def analyse(text: str, language: str) -> list[str]:
    return [stem(t, language) for t in tokens(text)]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (returning limit + 1) once it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        best = i
        for j, cb in enumerate(b, 1):
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            current.append(value)
            best = min(best, value)
        if best > limit:
            return limit + 1
        previous = current
    return previous[-1]


def allowed_edits(term: str) -> int:
    if len(term) >= 8:
        return 2
    if len(term) >= 5:
        return 1
    return 0


@dataclass(frozen=True)
class Field:
    """A piece of a document: its text, its language, and how much a hit in it weighs."""

    text: str
    language: str
    weight: float = 1.0


@dataclass
class _Doc:
    id: str
    terms: dict[str, float]
    length: float


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    matched: tuple[str, ...] = ()
    coverage: float = 1.0  # the share of the query's words this document matched


@dataclass
class SearchIndex:
    docs: dict[str, _Doc] = field(default_factory=dict)
    postings: dict[str, set[str]] = field(default_factory=dict)
    # vocabulary by term length (fuzzy matching only looks at lengths within reach), and
    # the expansions of query words already worked out (cleared whenever the index changes)
    by_length: dict[int, set[str]] = field(default_factory=dict)
    expansions: dict[str, dict[str, float]] = field(default_factory=dict)

    # -- building -------------------------------------------------------------------
    def put(self, doc_id: str, fields: Iterable[Field]) -> None:
        """Add a document, or replace the one with the same id."""
        self.remove(doc_id)
        terms: dict[str, float] = {}
        length = 0.0
        for item in fields:
            for term in analyse(item.text, item.language):
                terms[term] = terms.get(term, 0.0) + item.weight
                length += item.weight
        self.docs[doc_id] = _Doc(doc_id, terms, length)
        for term in terms:
            self.postings.setdefault(term, set()).add(doc_id)
            self.by_length.setdefault(len(term), set()).add(term)
        self.expansions.clear()

    def remove(self, doc_id: str) -> None:
        doc = self.docs.pop(doc_id, None)
        if doc is None:
            return
        for term in doc.terms:
            holders = self.postings.get(term)
            if holders is not None:
                holders.discard(doc_id)
                if not holders:
                    del self.postings[term]
                    self.by_length.get(len(term), set()).discard(term)
        self.expansions.clear()

    def __len__(self) -> int:
        return len(self.docs)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.docs

    # -- searching ------------------------------------------------------------------
    def expand(self, word: str) -> dict[str, float]:
        """The vocabulary terms a query word matches, each with the weight of the match."""
        known = self.expansions.get(word)
        if known is None:
            known = self.expansions[word] = self._expand(word)
            if len(self.expansions) > 5000:
                self.expansions.clear()
        return known

    def _expand(self, word: str) -> dict[str, float]:
        candidates = {stem(word, "en"), stem(word, "da"), word}
        exact = {c: 1.0 for c in candidates if c in self.postings}
        if exact:
            return exact
        matches: dict[str, float] = {}
        limit = allowed_edits(word)
        if limit:
            distances: dict[str, int] = {}
            for candidate in candidates:
                letters = set(candidate)
                for size in range(len(candidate) - limit, len(candidate) + limit + 1):
                    for term in self.by_length.get(size, ()):
                        # one edit changes the set of letters by at most two: a cheap first cut
                        if len(letters.symmetric_difference(term)) > 2 * limit:
                            continue
                        distance = edit_distance(candidate, term, limit)
                        if distance <= limit and distance < distances.get(term, limit + 1):
                            distances[term] = distance
            # only the closest spellings: "diabetis" means "diabetes", not "diameter"
            closest = min(distances.values(), default=0)
            matches = {t: FUZZY_WEIGHT[d] for t, d in distances.items() if d == closest}
        if len(word) >= 5:
            for term in self.postings:
                if len(term) > len(word) + 1 and any(term.startswith(c) for c in candidates
                                                     if len(c) >= 5):
                    matches[term] = max(matches.get(term, 0.0), PREFIX_WEIGHT)
        return matches

    def search(self, query: str, *, limit: int = 10) -> list[Hit]:
        if not self.docs:
            return []
        words = list(dict.fromkeys(tokens(query)))
        if not words:
            return []
        count = len(self.docs)
        average = sum(d.length for d in self.docs.values()) / count or 1.0
        scores: dict[str, float] = {}
        matched: dict[str, list[str]] = {}
        for word in words:
            best_for_doc: dict[str, float] = {}
            for term, weight in self.expand(word).items():
                holders = self.postings.get(term, set())
                idf = math.log(1 + (count - len(holders) + 0.5) / (len(holders) + 0.5))
                for doc_id in holders:
                    doc = self.docs[doc_id]
                    tf = doc.terms[term]
                    norm = tf * (K1 + 1) / (tf + K1 * (1 - B + B * doc.length / average))
                    value = weight * idf * norm
                    if value > best_for_doc.get(doc_id, 0.0):
                        best_for_doc[doc_id] = value
            for doc_id, value in best_for_doc.items():
                scores[doc_id] = scores.get(doc_id, 0.0) + value
                matched.setdefault(doc_id, []).append(word)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [
            Hit(doc_id, round(score, 4), tuple(matched[doc_id]), len(matched[doc_id]) / len(words))
            for doc_id, score in ranked[:limit]
        ]
