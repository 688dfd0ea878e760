"""Rendering pages: the context every template gets, and the translation helpers."""

from __future__ import annotations

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


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {**portal_context(request), **(context or {})}, status=status
    )


# -- nav badges: optional per-request counts next to main navigation entries ------------
# An area registers a provider for its navigation path (``add_nav_badge``); the
# ``nav_badges`` middleware asks every provider on each signed-in GET, so a badge (e.g.
# "Messages (2)") is current on every page. A provider that fails only hides its badge.
@dataclass(frozen=True)
class NavBadge:
    count: int
    label: str  # accessible text read instead of the bare number, e.g. "2 unread messages"


BadgeProvider = Callable[[web.Request], Awaitable[NavBadge | None]]
NAV_BADGE_PROVIDERS: web.AppKey[dict[str, BadgeProvider]] = web.AppKey("nav_badge_providers", dict)
NAV_BADGES: web.RequestKey[dict[str, NavBadge]] = web.RequestKey("nav_badges", dict)
_NO_BADGES = ("/static/", "/hooks/", "/healthz")
log = logging.getLogger(__name__)


def add_nav_badge(app: web.Application, path: str, provider: BadgeProvider) -> None:
    """Show ``provider``'s badge next to the navigation entry for ``path``."""
    providers = app.get(NAV_BADGE_PROVIDERS)
    if providers is None:
        providers = app[NAV_BADGE_PROVIDERS] = {}
    providers[path] = provider


async def refresh_nav_badges(request: web.Request) -> None:
    """(Re)compute the badges; a view calls it again after a change that moves a count."""
    badges: dict[str, NavBadge] = {}
    for path, provider in (request.app.get(NAV_BADGE_PROVIDERS) or {}).items():
        try:
            badge = await provider(request)
        except Exception:  # a badge is never worth a failed page
            log.warning("nav badge for %s failed", path, exc_info=True)
            continue
        if badge is not None and badge.count > 0:
            badges[path] = badge
    request[NAV_BADGES] = badges


def _wants_json(accept: str) -> bool:
    return "application/json" in accept and "text/html" not in accept


@web.middleware
async def nav_badges(request: web.Request, handler: Any) -> web.StreamResponse:
    if (
        request.method == "GET"
        and request.get(PRINCIPAL) is not None
        and request.app.get(NAV_BADGE_PROVIDERS)
        and not request.path.startswith(_NO_BADGES)
        and "Upgrade" not in request.headers  # websockets render no page
        and not _wants_json(request.headers.get("Accept", ""))
    ):
        await refresh_nav_badges(request)
    response: web.StreamResponse = await handler(request)
    return response
