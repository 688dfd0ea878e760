"""Pick the page language: the switch's cookie, the patient's preference, the browser."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal import keys
from fhir_portal.i18n import LANGUAGES, negotiate
from fhir_portal.web.context import LOCALE, PRINCIPAL

COOKIE = "portal_lang"


def choose_locale(request: web.Request) -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    who = request.get(PRINCIPAL)
    if who is not None and who.locale in LANGUAGES:
        return str(who.locale)
    default = request.app[keys.SETTINGS].default_locale
    return negotiate(request.headers.get("Accept-Language"), default)


@web.middleware
async def locales(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[LOCALE] = choose_locale(request)
    response = await handler(request)
    response.headers.setdefault("Content-Language", request[LOCALE])
    return response
