"""``/activate``: take up an invitation (link, or code + email) and choose a password."""

from __future__ import annotations

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth.activation import ActivationError, EmailInUse, activate, find_invitation
from fhir_portal.auth.policy import check_password
from fhir_portal.i18n import N_
from fhir_portal.views.auth import complete_sign_in
from fhir_portal.web.context import locale
from fhir_portal.web.render import render, translate

INVALID = N_("This activation link or code cannot be used. It may have expired or been used "
             "already, or the email address is not the one it was sent to.")


def _page(request: web.Request, *, token: str, code: str, email: str,
          errors: dict[str, str] | None = None, status: int = 200) -> web.Response:
    return render(request, "auth/activate.html", {
        "token": token, "code": code, "email": email, "errors": errors or {},
    }, status=status)


async def activate_form(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    if token:
        try:
            invitation = await find_invitation(request.app[keys.ACCOUNTS], secret=token)
        except ActivationError:
            return _page(request, token="", code="", email="",
                         errors={"form": translate(request, INVALID)}, status=400)
        return _page(request, token=token, code="", email=invitation.email or "")
    return _page(request, token="", code="", email="")


async def activate_submit(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form.get("token", "")).strip()
    code = str(form.get("code", "")).strip()[:20]
    email = str(form.get("email", "")).strip()[:254]
    password = str(form.get("password", ""))
    store = request.app[keys.ACCOUNTS]
    errors: dict[str, str] = {}
    if not token and not code:
        errors["code"] = translate(request, "Enter the activation code from your letter or email.")
    if not token and not email:
        errors["email"] = translate(request, "Enter the email address the code was sent to.")
    problem = check_password(password)
    if problem:
        errors["password"] = translate(request, problem)
    elif password != str(form.get("confirm", "")):
        errors["confirm"] = translate(request, "The two passwords are not the same.")
    if errors:
        return _page(request, token=token, code=code, email=email, errors=errors, status=400)
    try:
        invitation = await find_invitation(store, secret=token or None, code=code or None,
                                           email=email)
        account = await activate(store, invitation, password, locale(request))
    except ActivationError:
        return _page(request, token="", code=code, email=email,
                     errors={"form": translate(request, INVALID)}, status=400)
    except EmailInUse:
        return _page(request, token=token, code=code, email=email, errors={"form": translate(
            request, "This email address already belongs to another account. Contact us so we "
                     "can help.")}, status=409)
    raise await complete_sign_in(request, account, method="activation")
