"""Check-in from the link in the booking notification (or from the appointment page).

Steps: start (details, Start here) → details (Confirm the details) → personal (view and
update the Patient) → insurance (choose or add a Coverage) → join (accept, then Check in
or Wait in queue). The token names the appointment; the signed-in patient must be its
patient (the patient scope answers "not found" otherwise). Used, expired and forged
links get a page that says so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirConflict
from fhir_portal.notify.sms import is_phone
from fhir_portal.resources import checkin
from fhir_portal.web.context import patient_scope, signed_in
from fhir_portal.web.format import display_context
from fhir_portal.web.forms import EMAIL
from fhir_portal.web.render import render, translate

STEPS = ("start", "details", "personal", "insurance", "join")
COVERAGE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _problem(request: web.Request, kind: str, status: int) -> web.Response:
    return render(request, "checkin/problem.html", {"kind": kind}, status=status)


async def _open(request: web.Request) -> tuple[Any, str, checkin.CheckinContext] | web.Response:
    token = request.match_info["token"]
    secret = request.app[keys.SETTINGS].secret_key
    try:
        appointment_id = checkin.read_token(secret, token)
    except checkin.TokenInvalid:
        return _problem(request, "invalid", 400)
    except checkin.TokenExpired:
        return _problem(request, "expired", 410)
    signed_in(request)  # to the login page and back here
    scope = patient_scope(request)
    ctx = await checkin.context(scope, appointment_id)
    return scope, token, ctx


def _page(request: web.Request, step: str, token: str, ctx: checkin.CheckinContext,
          status: int = 200, **extra: Any) -> web.Response:
    return render(request, "checkin/step.html", {
        "step": step, "token": token, "item": ctx.item, "number": STEPS.index(step) + 1,
        "count": len(STEPS), "base": f"/checkin/{token}", **display_context(request), **extra,
    }, status=status)


def _used(request: web.Request, ctx: checkin.CheckinContext) -> web.Response | None:
    if ctx.checked_in:
        return render(request, "checkin/problem.html", {"kind": "used", "item": ctx.item},
                      status=409)
    if not ctx.can_check_in:
        return render(request, "checkin/problem.html", {"kind": "closed", "item": ctx.item},
                      status=409)
    return None


Step = Callable[[web.Request, Any, str, checkin.CheckinContext], Awaitable[web.Response]]


def open_step(handler: Step) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A check-in step: the link checked and the appointment opened (or its problem page),
    and a used or closed check-in refused, before the step itself runs."""

    @functools.wraps(handler)
    async def step(request: web.Request) -> web.Response:
        opened = await _open(request)
        if isinstance(opened, web.Response):
            return opened
        scope, token, ctx = opened
        return _used(request, ctx) or await handler(request, scope, token, ctx)

    return step


@open_step
async def start(request: web.Request, scope: Any, token: str,
                ctx: checkin.CheckinContext) -> web.Response:
    return _page(request, "start", token, ctx)


@open_step
async def details(request: web.Request, scope: Any, token: str,
                  ctx: checkin.CheckinContext) -> web.Response:
    return _page(request, "details", token, ctx)


@open_step
async def personal(request: web.Request, scope: Any, token: str,
                   ctx: checkin.CheckinContext) -> web.Response:
    current = await checkin.personal(scope)
    errors: dict[str, str] = {}
    notice = None
    if request.method == "POST":
        form = await request.post()
        values = checkin.Personal(
            name=current.name, birth_date=current.birth_date,
            email=str(form.get("email", "")).strip()[:200],
            mobile=str(form.get("mobile", "")).strip()[:40],
            address_line=str(form.get("address_line", "")).strip()[:200],
            postal_code=str(form.get("postal_code", "")).strip()[:10],
            city=str(form.get("city", "")).strip()[:100],
            version=str(form.get("version", "")),
        )
        if not EMAIL.match(values.email):
            errors["email"] = translate(request, "Enter an email address like name@example.org.")
        if values.mobile and not is_phone(values.mobile):
            errors["mobile"] = translate(request, "Enter a mobile number of digits, "
                                                  "for example +45 20 12 34 56, or leave it empty.")
        if values.postal_code and not re.fullmatch(r"[0-9]{4}", values.postal_code):
            errors["postal_code"] = translate(request, "Enter a postal code of four digits.")
        if not errors:
            try:
                await checkin.update_personal(scope, values)
            except FhirConflict:
                notice = translate(request, "Your details were changed somewhere else meanwhile. "
                                   "Here they are as they are now; please check them again.")
                current = await checkin.personal(scope)
            else:
                raise web.HTTPSeeOther(f"/checkin/{token}/insurance")
        else:
            current = values
    return _page(request, "personal", token, ctx, status=400 if errors else 200,
                 person=current, errors=errors, notice=notice)


@open_step
async def insurance(request: web.Request, scope: Any, token: str,
                    ctx: checkin.CheckinContext) -> web.Response:
    existing = await checkin.coverages(scope)
    insurers = await checkin.insurers(scope)
    new = checkin.NewCoverage()
    choice = existing[0].id if existing else "new"
    error = None
    if request.method == "POST":
        form = await request.post()
        choice = str(form.get("coverage", ""))
        if choice == "new":
            new = checkin.NewCoverage(
                payor_id=str(form.get("payor_id", "")), payor_name=str(form.get("payor_name", "")),
                member_id=str(form.get("member_id", "")), plan=str(form.get("plan", "")),
                group=str(form.get("group", "")),
                relationship=str(form.get("relationship", "")),
                start=str(form.get("start", "")), end=str(form.get("end", "")),
            )
            if new.validate(insurers):
                coverage_id = await checkin.add_coverage(scope, new, insurers)
                raise web.HTTPSeeOther(f"/checkin/{token}/join?coverage={coverage_id}")
        elif choice == "none":
            raise web.HTTPSeeOther(f"/checkin/{token}/join")
        elif any(c.id == choice for c in existing):
            raise web.HTTPSeeOther(f"/checkin/{token}/join?coverage={choice}")
        else:
            error = translate(request, "Choose one of your insurances, or add a new one.")
    return _page(request, "insurance", token, ctx, status=400 if (error or new.errors) else 200,
                 coverages=existing, insurers=insurers, new=new, choice=choice, error=error,
                 relationships=checkin.RELATIONSHIPS)


@open_step
async def join(request: web.Request, scope: Any, token: str,
               ctx: checkin.CheckinContext) -> web.Response:
    source = await request.post() if request.method == "POST" else request.query
    coverage_id = str(source.get("coverage", ""))
    if coverage_id and not COVERAGE_ID.match(coverage_id):
        coverage_id = ""
    coverage = None
    if coverage_id:
        coverage = next((c for c in await checkin.coverages(scope) if c.id == coverage_id), None)
        if coverage is None:
            coverage_id = ""
    error = None
    if request.method == "POST":
        if source.get("accept") != "yes":
            error = translate(request, "Please accept to continue.")
        else:
            done = await checkin.check_in(scope, ctx.item.id, coverage_id or None)
            if done.virtual:
                raise web.HTTPSeeOther(f"/appointments/{done.appointment_id}/queue")
            raise web.HTTPSeeOther(f"/checkin/{token}/done")
    return _page(request, "join", token, ctx, status=400 if error else 200,
                 coverage=coverage, coverage_id=coverage_id, error=error)


async def done(request: web.Request) -> web.Response:
    opened = await _open(request)
    if isinstance(opened, web.Response):
        return opened
    _, token, ctx = opened
    return render(request, "checkin/problem.html", {"kind": "done", "item": ctx.item},
                  status=200)
