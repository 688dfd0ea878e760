"""Appointments: lists, one appointment, cancelling, and the Schedule-new wizard.

The wizard works without JavaScript: each step is a GET form whose hidden fields carry
the choices so far (the contact details and Confirm are POSTs, so an email address never
lands in a URL). Every request re-validates every choice (``resources/booking.validate``)
and Confirm re-checks everything on the server before the one booking transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from fhir_portal import keys
from fhir_portal.i18n import N_
from fhir_portal.notify import outbox
from fhir_portal.resources import appointments, booking, checkin, directory, queue
from fhir_portal.resources.booking import ChoiceError, Contact, SlotTaken
from fhir_portal.web.context import patient_scope
from fhir_portal.web.context import tz as patient_zone
from fhir_portal.web.format import display_context, formatter
from fhir_portal.web.forms import EMAIL
from fhir_portal.web.render import render, translate

STATE_FIELDS = ("kind", "specialty", "postal", "location", "date", "slot")


# -- lists and one appointment --------------------------------------------------------------

async def index(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    lists = await appointments.all_appointments(scope)
    return render(request, "appointments/index.html", {
        "upcoming": lists.upcoming, "past": lists.past,
        "cancelled_now": request.query.get("cancelled") == "1",
        "left_queue": request.query.get("left") == "1",
        **display_context(request),
    })


async def detail(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    item = await appointments.detail(scope, request.match_info["id"])
    settings = request.app[keys.SETTINGS]
    return render(request, "appointments/detail.html", {
        "item": item,
        "booked_now": request.query.get("booked") == "1",
        "checkin_token": checkin.make_token(settings.secret_key, item.id, item.end or item.start)
        if item.can_check_in else None,
        **display_context(request),
    })


async def cancel_form(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    item = await appointments.detail(scope, request.match_info["id"])
    return render(request, "appointments/cancel.html", {
        "item": item, **display_context(request),
    }, status=200 if item.can_cancel else 409)


async def cancel(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    appointment_id = request.match_info["id"]
    try:
        item = await appointments.cancel(scope, appointment_id)
    except appointments.NotCancellable as refused:
        item = refused.item or await appointments.detail(scope, appointment_id)
        return render(request, "appointments/cancel.html", {
            "item": item, **display_context(request),
        }, status=409)
    await _notify_cancelled(request, item)
    raise web.HTTPSeeOther("/appointments?cancelled=1")


async def _notify_cancelled(request: web.Request, item: appointments.AppointmentItem) -> None:
    if item.kind == appointments.INSTANT:
        return  # leaving the queue sends nothing
    scope = patient_scope(request)
    contact = await booking.contact_of(scope)
    fmt = formatter(request)
    subject = translate(request, "Your appointment has been cancelled")
    text = translate(
        request,
        "Your %(kind)s on %(when)s has been cancelled.\n\nYou can book a new time in the "
        "portal: %(url)s",
        kind=translate(request, item.kind_label).lower(), when=fmt.full(item.start),
        url=request.app[keys.SETTINGS].public_url.rstrip("/") + "/appointments/new",
    )
    await booking.notify(
        outbox.sender(request.app), patient_id=scope.patient_id, key=f"cancel-{item.id}",
        contact=contact, subject=subject, email_text=text, sms_text=text,
    )
    outbox.wake(request.app)


# -- the wizard -----------------------------------------------------------------------------

def _state(source: Any) -> dict[str, str]:
    return {name: str(source.get(name, "")).strip()[:80] for name in STATE_FIELDS}


def _url(values: dict[str, str], step: str, **extra: str) -> str:
    query = {k: v for k, v in {**values, **extra}.items() if v}
    query["step"] = step
    return "/appointments/new?" + urlencode(query)


def _previous(choice: booking.Choice, step: str) -> str | None:
    order = choice.steps()
    if step not in order or order.index(step) == 0:
        return None
    return order[order.index(step) - 1]


async def wizard(request: web.Request) -> web.Response:
    scope = patient_scope(request)
    values = _state(request.query)
    requested = request.query.get("step", "kind")
    tz = patient_zone(request)
    error: ChoiceError | None = None
    try:
        choice = await booking.validate(scope.directory, values, requested, tz=tz)
        step = requested if requested in choice.steps() else "kind"
    except ChoiceError as exc:
        step = exc.step
        choice = await booking.validate(scope.directory, values, step, tz=tz) \
            if step != "kind" else booking.Choice()
        order = choice.steps()
        if step == "kind":
            submitted = requested != "kind"
        else:
            submitted = requested in order and order.index(requested) > order.index(step)
        error = exc if submitted else None
    if step == "contact":
        contact = await booking.contact_of(scope)
        return _contact_page(request, choice, values, contact, {})
    return await _step_page(request, scope, choice, values, step, error)


async def _step_page(request: web.Request, scope: Any, choice: booking.Choice,
                     values: dict[str, str], step: str, error: ChoiceError | None,
                     *, status: int = 200) -> web.Response:
    context: dict[str, Any] = {
        "step": step, "values": values, "choice": choice, "error": error,
        "kinds": appointments.KINDS, "previous_url": None,
        **display_context(request),
    }
    before = _previous(choice, step)
    if before:
        context["previous_url"] = _url(values, before)
    order = choice.steps()
    context["step_number"] = order.index(step) + 1 if step in order else 1
    context["step_count"] = len(order) if choice.kind else None
    context["next_step"] = order[order.index(step) + 1] if step in order and \
        order.index(step) + 1 < len(order) else "specialty"
    if step == "specialty":
        assert choice.kind
        context["specialties"] = await directory.specialties(scope.directory, choice.kind)
    elif step == "place":
        assert choice.kind and choice.specialty
        postal = directory.normalise_postal_code(values.get("postal", ""))
        context["places"] = await directory.places_near(
            scope.directory, postal, kind=choice.kind, specialty=choice.specialty.code
        ) if postal else None
        if values.get("postal") and postal is None and error is None:
            error = ChoiceError("place", "postal", N_("Enter a postal code of four digits."))
            context["error"] = error
    elif step == "when":
        tz = patient_zone(request)
        today = datetime.now(tz).date()
        try:
            day = date.fromisoformat(values.get("date", ""))
        except ValueError:
            day = today
        day = min(max(day, today), today + timedelta(days=365))
        choice.day = day
        values = {**values, "date": day.isoformat()}
        context["values"] = values
        context["day"] = day
        context["today"] = today
        context["slots"] = await booking.slots_for_day(scope.directory, choice, day, tz=tz)
        context["next_free"] = [] if context["slots"] else await booking.next_free(
            scope.directory, choice, tz=tz)
        context["next_day"] = (day + timedelta(days=1)).isoformat()
        context["previous_day"] = (day - timedelta(days=1)).isoformat() if day > today else None
        context["step_url"] = _url
    elif step == "confirm" and choice.kind == appointments.INSTANT:
        context["key"] = booking.new_key()
    return render(request, "appointments/wizard.html", context, status=status)


def _contact_page(request: web.Request, choice: booking.Choice, values: dict[str, str],
                  contact: Contact, errors: dict[str, str], *, status: int = 200
                  ) -> web.Response:
    order = choice.steps()
    return render(request, "appointments/contact.html", {
        "values": values, "choice": choice, "contact": contact, "errors": errors,
        "previous_url": _url(values, "when"), "step_number": order.index("contact") + 1,
        "step_count": len(order), **display_context(request),
    }, status=status)


def _check_contact(request: web.Request, form: Any) -> tuple[Contact, dict[str, str]]:
    from fhir_portal.notify.sms import is_phone

    contact = Contact(email=str(form.get("email", "")).strip()[:200],
                      mobile=str(form.get("mobile", "")).strip()[:40])
    errors: dict[str, str] = {}
    if not EMAIL.match(contact.email):
        errors["email"] = translate(request, "Enter an email address like name@example.org.")
    if contact.mobile and not is_phone(contact.mobile):
        errors["mobile"] = translate(request, "Enter a mobile number of digits, "
                                              "for example +45 20 12 34 56, or leave it empty.")
    return contact, errors


async def confirm(request: web.Request) -> web.Response:
    """POST from the contact step: check everything, then show the summary to confirm."""
    scope = patient_scope(request)
    form = await request.post()
    values = _state(form)
    tz = patient_zone(request)
    try:
        choice = await booking.validate(scope.directory, values, "confirm", tz=tz)
    except ChoiceError as exc:
        raise web.HTTPSeeOther(_url(values, exc.step)) from None
    if choice.slot is None:
        raise web.HTTPSeeOther(_url(values, "when"))
    contact, errors = _check_contact(request, form)
    if errors or form.get("back"):
        if form.get("back") == "when":
            raise web.HTTPSeeOther(_url(values, "when"))
        return _contact_page(request, choice, values, contact, errors if not form.get("back")
                             else {}, status=400 if errors and not form.get("back") else 200)
    order = choice.steps()
    return render(request, "appointments/confirm.html", {
        "values": values, "choice": choice, "contact": contact,
        "key": booking.new_key(), "step_number": order.index("confirm") + 1,
        "kinds": appointments.KINDS,
        "step_count": len(order), **display_context(request),
    })


async def book(request: web.Request) -> web.Response:
    """POST Confirm: re-check everything on the server and book in one transaction."""
    scope = patient_scope(request)
    form = await request.post()
    values = _state(form)
    tz = patient_zone(request)
    contact, errors = _check_contact(request, form)
    try:
        if errors:
            choice = await booking.validate(scope.directory, values, "contact", tz=tz)
            return _contact_page(request, choice, values, contact, errors, status=400)
        result = await booking.book(scope, values, key=str(form.get("key", "")), tz=tz)
    except ChoiceError as exc:  # a missing or stale choice: back to the step that needs it
        raise web.HTTPSeeOther(_url(values, exc.step)) from None
    except SlotTaken as taken:
        choice = await booking.validate(scope.directory, values, "when", tz=tz)
        return render(request, "appointments/taken.html", {
            "alternatives": taken.alternatives, "values": values, "choice": choice,
            "step_url": _url, **display_context(request),
        }, status=409)
    if not result.already:
        await booking.save_contact(scope, contact)
        await _notify_booked(request, scope.patient_id, result.appointment_id, contact)
    raise web.HTTPSeeOther(f"/appointments/{result.appointment_id}?booked=1")


async def _notify_booked(request: web.Request, patient_id: str, appointment_id: str,
                         contact: Contact) -> None:
    settings = request.app[keys.SETTINGS]
    item = await appointments.detail(patient_scope(request), appointment_id)
    token = checkin.make_token(settings.secret_key, item.id, item.end or item.start)
    link = f"{settings.public_url.rstrip('/')}/checkin/{token}"
    fmt = formatter(request)
    where = item.location_address and f"{item.location}, {item.location_address}" or \
        translate(request, "online (video)")
    subject = translate(request, "Your appointment is booked")
    email_text = translate(
        request,
        "Your %(kind)s is booked.\n\nWhen: %(when)s\nWith: %(who)s\nWhere: %(where)s\n\n"
        "Check in before your visit: %(link)s\n\nYou can see or cancel the appointment in "
        "the portal: %(portal)s",
        kind=translate(request, item.kind_label).lower(), when=fmt.full(item.start),
        who=item.practitioner, where=where, link=link,
        portal=f"{settings.public_url.rstrip('/')}/appointments/{item.id}",
    )
    sms_text = translate(request, "Booked: %(when)s with %(who)s. Check in: %(link)s",
                         when=fmt.full(item.start), who=item.practitioner, link=link)
    await booking.notify(
        outbox.sender(request.app), patient_id=patient_id, key=f"booked-{appointment_id}",
        contact=contact, subject=subject, email_text=email_text, sms_text=sms_text,
    )
    outbox.wake(request.app)


async def join_queue(request: web.Request) -> web.Response:
    """POST from the instant-visit confirm step: straight into the queue."""
    scope = patient_scope(request)
    form = await request.post()
    values = _state(form)
    try:
        choice = await booking.validate(scope.directory, values, "confirm", tz=patient_zone(request))
    except ChoiceError as exc:
        raise web.HTTPSeeOther(_url(values, exc.step)) from None
    key = str(form.get("key", ""))
    if choice.kind != appointments.INSTANT or choice.specialty is None or \
            not booking.valid_key(key):
        raise web.HTTPSeeOther(_url(values, "kind"))
    appointment_id = await queue.join(scope, choice.specialty, key=key)
    raise web.HTTPSeeOther(f"/appointments/{appointment_id}/queue")
