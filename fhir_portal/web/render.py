"""Rendering pages: the context every template gets, and the translation helpers."""

from __future__ import annotations

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
        "current_path": request.path,
    }


NAV: web.AppKey[tuple[tuple[str, str], ...]] = web.AppKey("nav", tuple)


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {**portal_context(request), **(context or {})}, status=status
    )
