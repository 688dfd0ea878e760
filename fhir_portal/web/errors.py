"""One place maps failures to friendly pages (or JSON for JSON clients).

A user never sees a traceback: a FHIR server that is down gives a 503 page that says so,
a resource the user may not see is "not found", and anything unexpected is logged with
an error id that the page shows.

A form sent while the FHIR server is down loses nothing: the 503 page shows what was
typed and carries it in a "Try again" form (same fields, a fresh CSRF token; never
passwords or one-time codes; a file must be attached again). The portal's forms carry an
idempotency key, so sending again never makes a second message or booking.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal.fhir import (
    FhirConflict,
    FhirError,
    FhirForbidden,
    FhirInvalid,
    FhirNotFound,
    FhirUnavailable,
)
from fhir_portal.i18n import N_
from fhir_portal.web.render import render

log = logging.getLogger(__name__)

_TITLES = {
    400: N_("The request could not be understood"),
    403: N_("You do not have access to this page"),
    404: N_("Page not found"),
    405: N_("This action is not allowed here"),
    409: N_("Someone else changed this at the same time"),
    413: N_("The upload is too large"),
    429: N_("Too many attempts"),
    503: N_("The service is temporarily unavailable"),
    500: N_("Something went wrong"),
}
_EXPLANATIONS = {
    400: N_("Please check what you entered and try again."),
    403: N_("Your account cannot open this page. If you think this is wrong, contact us."),
    404: N_("We could not find what you asked for. It may have been moved, or it is not yours to see."),
    405: N_("Please go back and use the buttons on the page."),
    409: N_("Please reload the page to see the latest version, then try again."),
    413: N_("Please choose a smaller file."),
    429: N_("Please wait a little and try again."),
    503: N_("We cannot reach the health records system right now. Nothing you entered has been "
    "saved or lost. Please try again in a few minutes."),
    500: N_("An unexpected error happened. Please try again; if it keeps happening, contact us "
    "and mention the error reference."),
}


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# never carried into the page: CSRF tokens, one-time codes, and anything password-like
# (the repeat and current password fields are "confirm" and "current")
NEVER_KEPT = ("csrf_token", "code", "token", "confirm", "current")
SECRET_WORDS = ("password", "secret", "passphrase")
MAX_KEPT_CHARS = 64 * 1024


@dataclass(frozen=True)
class KeptForm:
    action: str
    fields: list[tuple[str, str]]
    texts: list[str]  # what the person wrote, shown back to them
    file_dropped: bool


async def kept_form(request: web.Request) -> KeptForm | None:
    """The submitted form, to send again (None: not a form, nothing worth keeping)."""
    if request.method != "POST" or request.content_type not in FORM_TYPES:
        return None
    try:
        form = await request.post()  # parsed once by the view: aiohttp keeps it
    except Exception:
        return None
    fields: list[tuple[str, str]] = []
    file_dropped = False
    size = 0
    for name, value in form.items():
        if isinstance(value, web.FileField):
            file_dropped = file_dropped or bool(value.filename)
            continue
        lowered = name.lower()
        if lowered in NEVER_KEPT or any(w in lowered for w in SECRET_WORDS) or not isinstance(value, str):
            continue
        size += len(name) + len(value)
        if size > MAX_KEPT_CHARS:
            return None
        fields.append((name, value))
    texts = [value for _, value in fields if " " in value.strip() or len(value) > 40]
    if not fields:
        return None
    return KeptForm(request.path_qs, fields, texts, file_dropped)


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(request: web.Request, status: int, *, reference: str | None = None,
                   detail: str | None = None, retry: KeptForm | None = None) -> web.StreamResponse:
    title = _TITLES.get(status, _TITLES[500])
    if _wants_json(request):
        body: dict[str, object] = {"error": title, "status": status}
        if reference:
            body["reference"] = reference
        return web.json_response(body, status=status)
    try:
        return render(
            request,
            "error.html",
            {
                "status": status,
                "error_title": title,
                "explanation": _EXPLANATIONS.get(status, _EXPLANATIONS[500]),
                "detail": detail,
                "reference": reference,
                "retry": retry,
            },
            status=status,
        )
    except Exception:  # the page itself failed: fall back to plain text
        log.exception("error page failed to render")
        return web.Response(text=title, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status in (401,):
            raise
        detail = exc.reason if exc.status in (400, 403) and exc.reason not in (
            "Bad Request", "Forbidden") else None
        response = error_response(request, exc.status, detail=detail)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except FhirUnavailable as exc:
        log.warning("FHIR server unavailable: %s", exc)
        retry = None if _wants_json(request) else await kept_form(request)
        response = error_response(request, 503, retry=retry)
        response.headers["Retry-After"] = "30"
        return response
    except FhirNotFound:
        return error_response(request, 404)
    except FhirForbidden:
        return error_response(request, 403)
    except FhirConflict:
        return error_response(request, 409)
    except FhirInvalid as exc:
        log.info("FHIR refused a request: %s", exc)
        return error_response(request, 400)
    except FhirError as exc:
        reference = secrets.token_hex(4)
        log.error("FHIR error %s: %s", reference, exc)
        return error_response(request, 500, reference=reference)
    except Exception:
        reference = secrets.token_hex(4)
        # the route's name, never the path: paths can carry secrets (reset and check-in links)
        route = request.match_info.route.name if request.match_info.route else None
        log.exception("unhandled error %s on %s %s", reference, request.method, route)
        return error_response(request, 500, reference=reference)
