"""The language switch: a small form in the header that works without JavaScript."""

from __future__ import annotations

from aiohttp import web

from fhir_portal import keys
from fhir_portal.i18n import LANGUAGES, N_
from fhir_portal.web.locale import COOKIE
from fhir_portal.web.origin import safe_next


async def switch(request: web.Request) -> web.Response:
    form = await request.post()
    language = str(form.get("lang", ""))
    if language not in LANGUAGES:
        raise web.HTTPBadRequest(reason=N_("Unknown language."))
    response = web.HTTPSeeOther(safe_next(str(form.get("next", "")) or None))
    response.set_cookie(
        COOKIE, language, path="/", max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
        secure=request.app[keys.SETTINGS].cookie_secure,
    )
    raise response
