"""The profile: name, birth date, email, mobile, preferred language (first sign-in too).

The form carries the Patient version it was rendered from; the update is versioned
(If-Match), so a change made meanwhile in the EHR is never overwritten silently: the
patient sees the current data and is asked again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirConflict
from fhir_portal.i18n import LANGUAGES, N_
from fhir_portal.resources import patients
from fhir_portal.resources.patients import ProfileData
from fhir_portal.web.context import patient_scope, session, signed_in
from fhir_portal.web.forms import EMAIL
from fhir_portal.web.locale import COOKIE as LANGUAGE_COOKIE
from fhir_portal.web.render import render, translate

PHONE = re.compile(r"^\+?[0-9 ()\-]{6,24}$")


def form_data(form: Mapping[str, Any]) -> ProfileData:
    def text(name: str, limit: int = 200) -> str:
        return str(form.get(name, "")).strip()[:limit]

    return ProfileData(given=text("given"), family=text("family"),
                       birth_date=text("birth_date", 10), email=text("email", 254),
                       mobile=text("mobile", 30), language=text("language", 5))


def validate_profile(data: ProfileData) -> dict[str, str]:
    """Field name -> (untranslated) problem; empty when the profile can be saved."""
    errors: dict[str, str] = {}
    if not data.given:
        errors["given"] = N_("Enter your first name.")
    if not data.family:
        errors["family"] = N_("Enter your last name.")
    try:
        born = date.fromisoformat(data.birth_date)
    except ValueError:
        errors["birth_date"] = N_("Enter your birth date as year-month-day, e.g. 1980-04-23.")
    else:
        if born > date.today() or born.year < 1900:
            errors["birth_date"] = N_("Enter a birth date in the past.")
    if not EMAIL.match(data.email):
        errors["email"] = N_("Enter an email address like name@example.com.")
    if data.mobile and (not PHONE.match(data.mobile) or
                        sum(ch.isdigit() for ch in data.mobile) < 6):
        errors["mobile"] = N_("Enter a mobile number with digits only, e.g. +45 12 34 56 78.")
    if data.language not in LANGUAGES:
        errors["language"] = N_("Choose a language.")
    return errors


def _page(request: web.Request, data: ProfileData, version: str, *, first: bool,
          errors: dict[str, str] | None = None, conflict: ProfileData | None = None,
          saved: bool = False, status: int = 200) -> web.Response:
    return render(request, "profile/profile.html", {
        "data": data, "version": version, "first": first, "errors": errors or {},
        "conflict": conflict, "saved": saved, "language_names": LANGUAGES,
        "account_email": signed_in(request).email,
    }, status=status)


async def profile_form(request: web.Request) -> web.Response:
    who = signed_in(request)
    if not who.is_patient:
        raise web.HTTPForbidden()
    profile = await patients.read_profile(patient_scope(request))
    data = profile.data
    if not data.language:
        data = ProfileData(**{**data.__dict__, "language": who.locale or ""})
    if not data.email and who.email:
        data = ProfileData(**{**data.__dict__, "email": who.email})
    first = not who.profile_complete or request.query.get("first") == "1"
    return _page(request, data, profile.version, first=first,
                 saved=request.query.get("saved") == "1")


async def profile_submit(request: web.Request) -> web.Response:
    who = signed_in(request)
    if not who.is_patient:
        raise web.HTTPForbidden()
    form = await request.post()
    data = form_data(form)
    version = str(form.get("version", ""))
    first = not who.profile_complete
    errors = validate_profile(data)
    if errors:
        return _page(request, data, version, first=first, errors={
            k: translate(request, v) for k, v in errors.items()}, status=400)
    scope = patient_scope(request)
    try:
        profile = await patients.update_profile(scope, data, version)
    except FhirConflict:
        latest = await patients.read_profile(scope)
        return _page(request, latest.data, latest.version, first=first, conflict=data,
                     status=409)
    store = request.app[keys.ACCOUNTS]
    if who.account_id:
        await store.update_account(who.account_id, profile_complete=True,
                                   locale=data.language, display_name=profile.name)
    current = session(request)
    if current is not None and current.data.get("smart"):
        await store.set_session_value(current, ("smart", "name"), profile.name)
    response = web.HTTPSeeOther("/" if first else "/profile?saved=1")
    response.set_cookie(LANGUAGE_COOKIE, data.language, path="/", max_age=365 * 24 * 3600,
                        samesite="Lax", httponly=True,
                        secure=request.app[keys.SETTINGS].cookie_secure)
    raise response
