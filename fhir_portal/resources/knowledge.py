"""Knowledge articles: FHIR DocumentReferences of the knowledge-article type.

Staff publish articles through FHIR; the portal reads them through the directory reader
(which only ever hands out that type). ``KnowledgeLibrary`` keeps every current article in
memory with a search index: built at start-up, then refreshed every ``REFRESH_SECONDS``
with a ``_lastUpdated=gt<watermark>`` search (fresh, no server cache), and reconciled with
a full read every ``FULL_EVERY`` refreshes so deleted articles leave the index too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from markdown_it import MarkdownIt
from markupsafe import Markup

from fhir_portal.chat.knowledge_index import Field, SearchIndex
from fhir_portal.fhir.gateway import Resource
from fhir_portal.fhir.model import codeable_text, parse_datetime
from fhir_portal.fhir.scope import DirectoryReader
from fhir_portal.i18n import N_
from fhir_portal.web.background import periodic, stop

log = logging.getLogger(__name__)

TOPIC_SYSTEM = "http://fhir-portal.example.org/fhir/CodeSystem/knowledge-topic"
REFRESH_SECONDS = 30.0
FULL_EVERY = 10
TITLE_WEIGHT = 4.0
DESCRIPTION_WEIGHT = 1.5
TOPIC_WEIGHT = 2.0

TOPIC_LABELS: dict[str, str] = {
    "heart": N_("Heart and circulation"),
    "diabetes": N_("Diabetes"),
    "mental-health": N_("Mental health"),
    "skin": N_("Skin"),
    "children": N_("Children's health"),
    "medicines": N_("Medicines"),
    "infections": N_("Infections"),
    "lifestyle": N_("Lifestyle"),
    "using-the-portal": N_("Using the portal"),
}
OTHER_TOPIC = "other"


# -- the article model -------------------------------------------------------------------
@dataclass(frozen=True)
class ArticleText:
    language: str
    title: str
    markdown: str


@dataclass(frozen=True)
class Article:
    id: str
    version: str | None
    topic: str
    topic_display: str
    texts: dict[str, ArticleText]
    description: str
    date: datetime | None
    last_updated: str | None

    def text(self, language: str) -> ArticleText:
        """The text in ``language``, else English, else whatever there is."""
        for candidate in (language, "en", "da"):
            if candidate in self.texts:
                return self.texts[candidate]
        return next(iter(self.texts.values()))

    def title(self, language: str) -> str:
        return self.text(language).title

    def summary(self, language: str, limit: int = 220) -> str:
        """The first paragraph of the text (plain), shortened."""
        for paragraph in self.text(language).markdown.split("\n\n"):
            plain = _plain(paragraph)
            if plain and not paragraph.lstrip().startswith("#"):
                return plain if len(plain) <= limit else plain[: limit - 1].rsplit(" ", 1)[0] + "…"
        return self.description


def _plain(markdown: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"[*_`#>]+", "", text)
    return " ".join(text.split())


def _decode(data: str | None) -> str:
    if not data:
        return ""
    try:
        return base64.b64decode(data, validate=False).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def parse_article(resource: Resource) -> Article | None:
    """An article from a DocumentReference; None if it has no readable text."""
    texts: dict[str, ArticleText] = {}
    for content in resource.get("content", []):
        attachment = content.get("attachment") or {}
        language = str(attachment.get("language") or "en").split("-")[0].lower()
        if language in texts:
            continue
        markdown = _decode(attachment.get("data"))
        title = str(attachment.get("title") or resource.get("description") or "").strip()
        if markdown or title:
            texts[language] = ArticleText(language, title, markdown)
    if not texts:
        return None
    topic, display = OTHER_TOPIC, ""
    for category in resource.get("category", []):
        for coding in category.get("coding", []):
            if coding.get("system") == TOPIC_SYSTEM and coding.get("code"):
                topic, display = str(coding["code"]), codeable_text(category)
                break
    meta = resource.get("meta") or {}
    return Article(
        id=str(resource["id"]),
        version=str(meta["versionId"]) if meta.get("versionId") else None,
        topic=topic,
        topic_display=display,
        texts=texts,
        description=str(resource.get("description") or ""),
        date=parse_datetime(resource.get("date")),
        last_updated=meta.get("lastUpdated"),
    )


def is_published(resource: Resource) -> bool:
    return resource.get("status", "current") == "current"


# -- rendering ----------------------------------------------------------------------------
_SAFE_SCHEMES = ("http:", "https:", "mailto:")


def _safe_link(url: str) -> bool:
    """Only http(s), mailto and relative links; never javascript:, data:, vbscript: …"""
    value = "".join(url.split()).lower()
    scheme = re.match(r"^[a-z][a-z0-9+.-]*:", value)
    if scheme is None:
        return True  # relative (path, query or fragment)
    return value.startswith(_SAFE_SCHEMES)


def markdown_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _safe_link  # type: ignore[method-assign]
    md.enable("table")
    return md


_MARKDOWN = markdown_renderer()


def render_markdown(text: str) -> Markup:
    """Article markdown as HTML: raw HTML is escaped and unsafe links are dropped."""
    html = _MARKDOWN.render(text)
    # headings inside the article sit under the page's h1
    html = re.sub(r"<(/?)h([1-5])>", lambda m: f"<{m.group(1)}h{int(m.group(2)) + 1}>", html)
    return Markup(html)  # noqa: S704 - markdown-it escapes text; html is disabled


# -- view models ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ArticleLink:
    id: str
    title: str
    summary: str
    topic: str
    language: str

    @property
    def href(self) -> str:
        return f"/knowledge/{self.id}"


@dataclass(frozen=True)
class Topic:
    code: str
    label: str  # an English msgid (translate with _()) or the server's display
    articles: list[ArticleLink]


@dataclass(frozen=True)
class ArticlePage:
    id: str
    title: str
    language: str
    fell_back: bool
    html: Markup
    topic: str
    topic_label: str
    date: datetime | None
    other_languages: list[str]


def link(article: Article, language: str) -> ArticleLink:
    text = article.text(language)
    return ArticleLink(article.id, text.title, article.summary(language), article.topic,
                       text.language)


def topic_label(article: Article) -> str:
    return TOPIC_LABELS.get(article.topic) or article.topic_display or N_("Other topics")


def page_of(article: Article, language: str) -> ArticlePage:
    text = article.text(language)
    return ArticlePage(
        id=article.id,
        title=text.title,
        language=text.language,
        fell_back=text.language != language,
        html=render_markdown(text.markdown),
        topic=article.topic,
        topic_label=topic_label(article),
        date=article.date,
        other_languages=sorted(lang for lang in article.texts if lang != text.language),
    )


# -- the library: articles + index, kept fresh ----------------------------------------------
@dataclass
class KnowledgeLibrary:
    articles: dict[str, Article] = field(default_factory=dict)
    index: SearchIndex = field(default_factory=SearchIndex)
    watermark: str | None = None
    loaded: bool = False
    refreshes: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # building
    def put(self, article: Article) -> None:
        self.articles[article.id] = article
        fields: list[Field] = []
        for text in article.texts.values():
            fields.append(Field(text.title, text.language, TITLE_WEIGHT))
            fields.append(Field(text.markdown, text.language, 1.0))
        fields.append(Field(article.description, "en", DESCRIPTION_WEIGHT))
        fields.append(Field(article.topic.replace("-", " ") + " " + article.topic_display, "en",
                            TOPIC_WEIGHT))
        self.index.put(article.id, fields)

    def remove(self, article_id: str) -> None:
        self.articles.pop(article_id, None)
        self.index.remove(article_id)

    def apply(self, resources: list[Resource]) -> int:
        """Take changed DocumentReferences into the library; returns how many changed."""
        changed = 0
        for resource in resources:
            updated = (resource.get("meta") or {}).get("lastUpdated")
            if updated and (self.watermark is None or updated > self.watermark):
                self.watermark = updated
            article = parse_article(resource) if is_published(resource) else None
            if article is None:
                if resource.get("id") in self.articles:
                    self.remove(str(resource["id"]))
                    changed += 1
                continue
            current = self.articles.get(article.id)
            if current is None or current.version != article.version or article.version is None:
                self.put(article)
                changed += 1
        return changed

    async def load(self, directory: DirectoryReader) -> None:
        """Read every article (all pages) and rebuild from scratch."""
        page = await directory.search(
            "DocumentReference", {"_count": "100", "_sort": "_lastUpdated"}, fresh=True,
            all_pages=True,
        )
        seen = {str(r.get("id")) for r in page.resources if is_published(r)}
        for gone in set(self.articles) - seen:
            self.remove(gone)
        self.apply(page.resources)
        self.loaded = True

    async def refresh(self, directory: DirectoryReader) -> int:
        """Take in what changed since the watermark (or load everything the first time)."""
        async with self._lock:
            self.refreshes += 1
            if not self.loaded or self.refreshes % FULL_EVERY == 0:
                before = {a.id: a.version for a in self.articles.values()}
                await self.load(directory)
                return sum(1 for a in self.articles.values() if before.get(a.id) != a.version) + len(
                    set(before) - set(self.articles))
            params: dict[str, str] = {"_count": "100", "_sort": "_lastUpdated"}
            if self.watermark:
                params["_lastUpdated"] = f"gt{self.watermark}"
            page = await directory.search("DocumentReference", params, fresh=True, all_pages=True)
            return self.apply(page.resources)

    async def ensure_loaded(self, directory: DirectoryReader) -> None:
        if not self.loaded:
            await self.refresh(directory)

    # reading
    def search(self, query: str, language: str, *, limit: int = 20,
               topic: str | None = None) -> list[ArticleLink]:
        hits = self.index.search(query, limit=limit * 2 if topic else limit)
        links = [link(self.articles[h.id], language) for h in hits if h.id in self.articles]
        if topic:
            links = [item for item in links if item.topic == topic]
        return links[:limit]

    def topics(self, language: str) -> list[Topic]:
        groups: dict[str, list[Article]] = {}
        for article in self.articles.values():
            groups.setdefault(article.topic, []).append(article)
        order = list(TOPIC_LABELS)
        result = []
        for code in sorted(groups, key=lambda c: (order.index(c) if c in order else len(order), c)):
            articles = sorted(groups[code], key=lambda a: a.title(language).lower())
            result.append(Topic(code, topic_label(articles[0]), [link(a, language) for a in articles]))
        return result

    def get(self, article_id: str) -> Article | None:
        return self.articles.get(article_id)


LIBRARY: web.AppKey[KnowledgeLibrary] = web.AppKey("knowledge_library", KnowledgeLibrary)


async def library(app: web.Application, directory: DirectoryReader) -> KnowledgeLibrary:
    """The app's library, loaded (a first search right after start-up waits for it)."""
    lib = app[LIBRARY]
    await lib.ensure_loaded(directory)
    return lib


async def article_page(directory: DirectoryReader, article_id: str, language: str) -> ArticlePage:
    """One article, read fresh from FHIR (so an edit shows at once); not found if unpublished."""
    from fhir_portal.fhir import FhirNotFound

    resource = await directory.read("DocumentReference", article_id)
    article = parse_article(resource) if is_published(resource) else None
    if article is None:
        raise FhirNotFound("DocumentReference: not found")
    return page_of(article, language)


async def refresher(app: web.Application, directory: DirectoryReader,
                    every: float = REFRESH_SECONDS) -> AsyncIterator[None]:
    """cleanup_ctx body: a library on the app, refreshed in the background."""
    app[LIBRARY] = lib = KnowledgeLibrary()

    async def one_round() -> None:
        changed = await lib.refresh(directory)
        if changed:
            log.info("knowledge index: %d article(s) changed, %d indexed", changed,
                     len(lib.articles))

    task = asyncio.create_task(periodic("knowledge index refresh", one_round, every=every),
                               name="knowledge-refresher")
    yield
    await stop(task)
