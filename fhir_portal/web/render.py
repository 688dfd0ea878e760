"""Rendering pages: the context every template gets, and the translation helpers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from fhir_portal import keys
from fhir_portal.i18n import LANGUAGES
from fhir_portal.web.context import CSRF_TOKEN, LOCALE, PRINCIPAL


def translations(request: web.Request):  # type: ignore[no-untyped-def]
    language = request.get(LOCALE) or request.app[keys.SETTINGS].default_locale
    return request.app[keys.TRANSLATIONS].get(language)


def translate(request: web.Request, message: str, **values: Any) -> str:
    text = translations(request).gettext(message)
    return text % values if values else text


def template_gettext(catalog: Any) -> tuple[Any, Any]:
    """Newstyle gettext for templates: ``_("Hello %(name)s", name=x)`` with x escaped."""

    def _gettext(message: str, **variables: Any) -> Markup:
        text = Markup(catalog.gettext(message))  # noqa: S704 - our catalogues are trusted
        return text % variables if variables else text

    def _ngettext(singular: str, plural: str, num: int, **variables: Any) -> Markup:
        variables.setdefault("num", num)
        return Markup(catalog.ngettext(singular, plural, num)) % variables  # noqa: S704

    return _gettext, _ngettext


def portal_context(request: web.Request) -> dict[str, Any]:
    """What the base layout needs on every page (also on error pages raised early)."""
    settings = request.app[keys.SETTINGS]
    gettext_, ngettext_ = template_gettext(translations(request))
    return {
        "request": request,
        "title": settings.title,
        "principal": request.get(PRINCIPAL),
        "csrf_token": request.get(CSRF_TOKEN, ""),
        "lang": request.get(LOCALE, settings.default_locale),
        "languages": LANGUAGES,
        "gettext": gettext_,
        "ngettext": ngettext_,
        "_": gettext_,
        "nav_items": request.app.get(NAV, ()),
        "nav_badges": request.get(NAV_BADGES) or {},
        "current_path": request.path,
    }


NAV: web.AppKey[tuple[tuple[str, str], ...]] = web.AppKey("nav", tuple)


def static_urls(app: web.Application) -> Callable[[str], str]:
    """The templates' ``static(filename)``: the file's versioned URL, worked out once per
    file (aiohttp hashes the whole file on every ``url_for``: five times per page)."""
    known: dict[str, str] = {}

    def static(filename: str) -> str:
        url = known.get(filename)
        if url is None:
            url = known[filename] = str(app.router["static"].url_for(filename=filename))
        return url

    return static


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    """The page as a response; rendered at once, or by the ``nav_badges`` middleware when
    the navigation's counts are still being fetched alongside the handler."""
    task = request.get(NAV_BADGE_TASK)
    if task is not None and not task.done():
        return DeferredPage(template, context or {}, status)
    return aiohttp_jinja2.render_template(
        template, request, {**portal_context(request), **(context or {})}, status=status
    )


class DeferredPage(web.Response):
    """A page whose template is rendered once the request's navigation badges are known.

    Handlers treat it as any response (headers and cookies set on it are kept); the
    ``nav_badges`` middleware fills in the body before it is sent.
    """

    def __init__(self, template: str, context: dict[str, Any], status: int) -> None:
        super().__init__(status=status, content_type="text/html", charset="utf-8")
        self._template = template
        self._context = context

    def finish(self, request: web.Request) -> None:
        self.text = aiohttp_jinja2.render_string(
            self._template, request, {**portal_context(request), **self._context}
        )


# -- nav badges: optional per-request counts next to main navigation entries ------------
# An area registers a provider for its navigation path (``add_nav_badge``). On each
# signed-in page request the ``nav_badges`` middleware starts every provider at once,
# alongside the handler (so a badge costs no extra round trip in sequence), and the page
# is rendered when both are done: a badge (e.g. "Messages (2)") is current on every page.
# A provider that fails only hides its badge.
@dataclass(frozen=True)
class NavBadge:
    count: int
    label: str  # accessible text read instead of the bare number, e.g. "2 unread messages"


BadgeProvider = Callable[[web.Request], Awaitable[NavBadge | None]]
NAV_BADGE_PROVIDERS: web.AppKey[dict[str, BadgeProvider]] = web.AppKey("nav_badge_providers", dict)
NAV_BADGES: web.RequestKey[dict[str, NavBadge]] = web.RequestKey("nav_badges", dict)
NAV_BADGE_TASK: web.RequestKey[asyncio.Task[None]] = web.RequestKey("nav_badge_task", asyncio.Task)
_NO_BADGES = ("/static/", "/hooks/", "/healthz")
log = logging.getLogger(__name__)


def add_nav_badge(app: web.Application, path: str, provider: BadgeProvider) -> None:
    """Show ``provider``'s badge next to the navigation entry for ``path``."""
    providers = app.get(NAV_BADGE_PROVIDERS)
    if providers is None:
        providers = app[NAV_BADGE_PROVIDERS] = {}
    providers[path] = provider


async def _badge(path: str, provider: BadgeProvider, request: web.Request) -> NavBadge | None:
    try:
        return await provider(request)
    except Exception:  # a badge is never worth a failed page
        log.warning("nav badge for %s failed", path, exc_info=True)
        return None


async def _compute_badges(request: web.Request) -> None:
    providers = request.app.get(NAV_BADGE_PROVIDERS) or {}
    results = await asyncio.gather(*(_badge(p, f, request) for p, f in providers.items()))
    # a zero count is kept (it is known, and a page may use it); the layout shows counts > 0
    request[NAV_BADGES] = {
        path: badge for path, badge in zip(providers, results, strict=True) if badge is not None
    }


async def current_badges(request: web.Request) -> dict[str, NavBadge]:
    """The badges of this request, waiting for them if they are still being fetched."""
    task = request.get(NAV_BADGE_TASK)
    if task is not None and not task.done():
        await asyncio.wait([task])
    return request.get(NAV_BADGES) or {}


async def refresh_nav_badges(request: web.Request) -> None:
    """Recompute the badges now; a view calls it after a change that moves a count."""
    task = request.get(NAV_BADGE_TASK)
    if task is not None and not task.done():
        task.cancel()
        await asyncio.wait([task])
    await _compute_badges(request)


def _wants_json(accept: str) -> bool:
    return "application/json" in accept and "text/html" not in accept


@web.middleware
async def nav_badges(request: web.Request, handler: Any) -> web.StreamResponse:
    if (
        request.method == "GET"
        and request.get(PRINCIPAL) is not None
        and bool(request.app.get(NAV_BADGE_PROVIDERS, {}))
        and not request.path.startswith(_NO_BADGES)
        and "Upgrade" not in request.headers  # websockets render no page
        and not _wants_json(request.headers.get("Accept", ""))
    ):
        request[NAV_BADGE_TASK] = asyncio.create_task(_compute_badges(request))
    try:
        response: web.StreamResponse = await handler(request)
    finally:
        await current_badges(request)  # never leave the task behind, even on errors
    if isinstance(response, DeferredPage):
        response.finish(request)
    return response
