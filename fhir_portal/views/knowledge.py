"""Health articles: browse by topic, search, and read one."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.resources import knowledge
from fhir_portal.web.context import directory, locale, signed_in
from fhir_portal.web.format import formatter
from fhir_portal.web.render import render

MAX_QUERY = 200


async def index(request: web.Request) -> web.Response:
    signed_in(request)
    language = locale(request)
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    topic = request.query.get("topic", "").strip() or None
    lib = await knowledge.library(request.app, directory(request))
    topics = lib.topics(language)
    results = lib.search(query, language, topic=topic) if query else None
    if topic:
        topics = [t for t in topics if t.code == topic]
    return render(request, "knowledge/index.html", {
        "query": query,
        "topic": topic,
        "topics": topics,
        "all_topics": lib.topics(language),
        "results": results,
    })


async def article(request: web.Request) -> web.Response:
    signed_in(request)
    language = locale(request)
    page = await knowledge.article_page(directory(request), request.match_info["id"], language)
    updated = formatter(request).long_date(page.date) or None
    return render(request, "knowledge/article.html", {"article": page, "updated": updated})
