"""Self-registration (``/register``) and the email confirmation link."""

from __future__ import annotations

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth.mail import send_account_email
from fhir_portal.auth.policy import check_password
from fhir_portal.auth.registration import VerificationError, register, resend, verify
from fhir_portal.i18n import LANGUAGES, N_
from fhir_portal.notify.email import EmailError
from fhir_portal.resources.patients import ProfileData
from fhir_portal.views.profile import form_data, validate_profile
from fhir_portal.web.background import spawn
from fhir_portal.web.context import locale, principal
from fhir_portal.web.render import render, translate


def _page(request: web.Request, data: ProfileData, errors: dict[str, str],
          status: int = 200) -> web.Response:
    return render(request, "auth/register.html", {
        "data": data, "errors": errors, "language_names": LANGUAGES,
    }, status=status)


async def register_form(request: web.Request) -> web.Response:
    if principal(request) is not None:
        raise web.HTTPSeeOther("/")
    return _page(request, ProfileData("", "", "", "", "", locale(request)), {})


async def register_submit(request: web.Request) -> web.Response:
    form = await request.post()
    data = form_data(form)
    password = str(form.get("password", ""))
    errors = validate_profile(data)
    problem = check_password(password)
    if problem:
        errors["password"] = problem
    elif password != str(form.get("confirm", "")):
        errors["confirm"] = N_("The two passwords are not the same.")
    if errors:
        return _page(request, data, {k: translate(request, v) for k, v in errors.items()},
                     status=400)
    app = request.app
    outgoing = await register(app[keys.ACCOUNTS], app[keys.SETTINGS], app[keys.TRANSLATIONS],
                              data=data, email=data.email, password=password)
    try:
        await send_account_email(app[keys.SETTINGS], outgoing.to, outgoing.message)
    except EmailError:
        return render(request, "auth/message.html", {
            "heading": translate(request, "We could not send the email"),
            "lines": [translate(request, "Your registration is saved, but the confirmation "
                                         "email could not be sent. Please try again in a few "
                                         "minutes.")],
            "link": ("/register", translate(request, "Try again")),
        }, status=503)
    return render(request, "auth/message.html", {
        "heading": translate(request, "Check your email"),
        "lines": [
            translate(request, "We have sent a link to %(email)s. Open it to confirm your "
                               "email address and finish creating your account.",
                      email=data.email),
            translate(request, "The link works for 48 hours. If you do not see the email, "
                               "look in your spam folder."),
        ],
    })


async def resend_link(request: web.Request) -> web.Response:
    """Send the confirmation link again (same answer whether or not it was needed)."""
    form = await request.post()
    email = str(form.get("email", "")).strip()[:254]
    app = request.app
    language = locale(request)

    async def send() -> None:
        outgoing = await resend(app[keys.ACCOUNTS], app[keys.SETTINGS], app[keys.TRANSLATIONS],
                                email, language)
        if outgoing is not None:
            await send_account_email(app[keys.SETTINGS], outgoing.to, outgoing.message)

    if "@" in email:
        spawn(app, send(), what="confirmation email")
    return render(request, "auth/message.html", {
        "heading": translate(request, "Check your email"),
        "lines": [translate(request, "If %(email)s is waiting for confirmation, we have sent it a "
                                     "new link. The link works for 48 hours.", email=email)],
        "link": ("/login", translate(request, "Back to sign in")),
    })


async def verify_email(request: web.Request) -> web.Response:
    secret = request.query.get("token", "")
    store = request.app[keys.ACCOUNTS]
    try:
        account = await verify(store, request.app[keys.GATEWAY], secret)
    except VerificationError:
        return render(request, "auth/message.html", {
            "heading": translate(request, "This link cannot be used"),
            "lines": [translate(request, "The link has expired or was used already. If you "
                                         "already confirmed your email, just sign in.")],
            "link": ("/login", translate(request, "Sign in")),
        }, status=400)
    # The link confirms the address but does not sign in: whoever opens a link someone
    # else was sent must never land in that person's account (login CSRF).
    del account
    raise web.HTTPSeeOther("/login?confirmed=1")
