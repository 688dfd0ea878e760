"""Sign in and out (local and OpenID Connect), and password reset by an emailed link."""

from __future__ import annotations

import secrets

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth import oidc
from fhir_portal.auth.login import EmailNotVerified, LoginRefused, authenticate
from fhir_portal.auth.mail import send_account_email
from fhir_portal.auth.policy import check_password
from fhir_portal.auth.reset import ResetError, request_reset, reset_password, reset_token
from fhir_portal.auth.store import Account
from fhir_portal.i18n import LANGUAGES, N_
from fhir_portal.resources.audit import Actor
from fhir_portal.web.audit import actor_of, record_authentication
from fhir_portal.web.background import spawn
from fhir_portal.web.client_address import client_address
from fhir_portal.web.context import locale, principal
from fhir_portal.web.locale import COOKIE as LANGUAGE_COOKIE
from fhir_portal.web.origin import safe_next
from fhir_portal.web.render import render, translate
from fhir_portal.web.session import end_session, start_session

PREAUTH_COOKIE = "portal_preauth"


def landing(account: Account, next_url: str) -> str:
    """Where a fresh sign-in goes: first-sign-in profile, staff console, or ``next``."""
    if account.patient_id and not account.profile_complete:
        return "/profile?first=1"
    if account.is_staff_only and next_url == "/":
        return "/staff"
    return next_url


async def complete_sign_in(request: web.Request, account: Account, next_url: str = "/", *,
                           method: str = "password") -> web.HTTPSeeOther:
    """The redirect that finishes any sign-in: fresh session, the account's language, audit."""
    response = web.HTTPSeeOther(landing(account, next_url))
    await start_session(request, response, account)
    if account.locale in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, str(account.locale), path="/",
                            max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                            secure=request.app[keys.SETTINGS].cookie_secure)
    record_authentication(request, _actor(account, request), success=True, method=method)
    return response


def _actor(account: Account, request: web.Request) -> Actor:
    return Actor(account.id, patient_id=account.patient_id,
                 practitioner_id=account.practitioner_id, address=client_address(request))


def _login_page(request: web.Request, *, next_url: str, email: str, error: str | None,
                status: int = 200, unverified: bool = False) -> web.Response:
    settings = request.app[keys.SETTINGS]
    return render(request, "auth/login.html", {
        "next": next_url, "email": email, "error": error, "unverified": unverified,
        "oidc_name": settings.oidc_name if oidc.configured(settings) else None,
    }, status=status)


async def login_form(request: web.Request) -> web.Response:
    if principal(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return _login_page(request, next_url=safe_next(request.query.get("next")), email="",
                       error=None)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")))
    store = request.app[keys.ACCOUNTS]
    error = None
    unverified = False
    if not email or not password:
        error = translate(request, "Enter your email and password.")
    else:
        try:
            account = await authenticate(store, email, password)
        except LoginRefused as refused:
            error = translate(request, "The email or password is not right, or the account is "
                            "locked for a while after too many attempts.")
            actor = (_actor(refused.account, request) if refused.account
                     else Actor(None, address=client_address(request)))
            record_authentication(request, actor, success=False)
        except EmailNotVerified:
            error = translate(request, "Please confirm your email address first: open the link "
                            "we sent you.")
            unverified = True
        else:
            raise await complete_sign_in(request, account, next_url)
    return _login_page(request, next_url=next_url, email=email, error=error,
                       status=400 if error else 200, unverified=unverified)


async def logout_form(request: web.Request) -> web.Response:
    return render(request, "auth/logout.html")


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/login?signed_out=1")
    if principal(request) is not None:
        record_authentication(request, actor_of(request), success=True, logout=True)
    await end_session(request, response)
    raise response


# -- password reset ------------------------------------------------------------------------
async def reset_form(request: web.Request) -> web.Response:
    return render(request, "auth/reset_request.html", {"email": "", "error": None})


async def reset_request(request: web.Request) -> web.Response:
    form = await request.post()
    email = str(form.get("email", "")).strip()
    if "@" not in email:
        return render(request, "auth/reset_request.html", {
            "email": email, "error": translate(request, "Enter the email address of your account."),
        }, status=400)
    app = request.app

    async def send() -> None:
        message = await request_reset(app[keys.ACCOUNTS], app[keys.SETTINGS],
                                      app[keys.TRANSLATIONS], email, locale(request))
        if message is not None:
            await send_account_email(app[keys.SETTINGS], email, message)

    # in the background: the answer takes as long whether or not the account exists
    spawn(app, send(), what="password reset email")
    return render(request, "auth/message.html", {
        "heading": translate(request, "Check your email"),
        "lines": [translate(request, "If an account uses %(email)s, we have sent it a link to "
                                     "choose a new password. The link works for one hour.",
                            email=email)],
    })


async def reset_token_form(request: web.Request) -> web.Response:
    secret = request.match_info["token"]
    try:
        await reset_token(request.app[keys.ACCOUNTS], secret)
    except ResetError:
        return _reset_invalid(request)
    return render(request, "auth/reset.html", {"token": secret, "error": None})


def _reset_invalid(request: web.Request) -> web.Response:
    return render(request, "auth/message.html", {
        "heading": translate(request, "This link cannot be used"),
        "lines": [translate(request, "The link has expired or was used already. You can ask "
                                     "for a new one.")],
        "link": ("/password-reset", translate(request, "Reset your password")),
    }, status=400)


async def reset_submit(request: web.Request) -> web.Response:
    secret = request.match_info["token"]
    store = request.app[keys.ACCOUNTS]
    form = await request.post()
    password = str(form.get("password", ""))
    confirm = str(form.get("confirm", ""))
    try:
        token = await reset_token(store, secret)
    except ResetError:
        return _reset_invalid(request)
    problem = check_password(password)
    error = translate(request, problem) if problem else None
    if error is None and password != confirm:
        error = translate(request, "The two passwords are not the same.")
    if error:
        return render(request, "auth/reset.html", {"token": secret, "error": error}, status=400)
    try:
        await reset_password(store, token, password)
    except ResetError:
        return _reset_invalid(request)
    response = web.HTTPSeeOther("/login?reset=1")
    await end_session(request, response)
    raise response


# -- OpenID Connect ----------------------------------------------------------------------
async def oidc_start(request: web.Request) -> web.Response:
    """Send the browser to the provider (also used by a signed-in patient to link)."""
    settings = request.app[keys.SETTINGS]
    if not oidc.configured(settings):
        raise web.HTTPNotFound()
    form = await request.post()
    who = principal(request)
    linking = str(form.get("link", "")) == "1" and who is not None and who.account_id > 0
    try:
        provider = await oidc.discover(settings)
    except oidc.OidcError as exc:
        return _oidc_refused(request, exc)
    url, state, saved = oidc.authorization_request(settings, provider)
    saved.update(provider=provider.__dict__, next=safe_next(str(form.get("next", ""))),
                 link_account=who.account_id if linking and who else None)
    browser = request.cookies.get(PREAUTH_COOKIE) or secrets.token_urlsafe(24)
    await request.app[keys.ACCOUNTS].save_auth_state(state, "oidc", browser, saved)
    response = web.HTTPSeeOther(url)
    response.set_cookie(PREAUTH_COOKIE, browser, path="/", httponly=True, samesite="Lax",
                        secure=settings.cookie_secure, max_age=600)
    raise response


def _oidc_refused(request: web.Request, exc: Exception, status: int = 400) -> web.Response:
    reason = getattr(exc, "reason", None) or N_("The sign-in could not be completed.")
    settings = request.app[keys.SETTINGS]
    return render(request, "auth/message.html", {
        "heading": translate(request, "Sign-in with %(provider)s was refused",
                             provider=settings.oidc_name),
        "lines": [translate(request, reason)],
        "link": ("/login", translate(request, "Back to sign in")),
    }, status=status)


async def oidc_callback(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.ACCOUNTS]
    if not oidc.configured(settings):
        raise web.HTTPNotFound()
    state = request.query.get("state", "")
    browser = request.cookies.get(PREAUTH_COOKIE, "")
    saved = await store.take_auth_state(state, "oidc", browser) if state and browser else None
    if saved is None:
        return _oidc_refused(request, oidc.OidcError(N_(
            "The sign-in took too long or was started elsewhere. Please start again.")))
    if request.query.get("error"):
        return _oidc_refused(request, oidc.OidcError(N_(
            "The sign-in was cancelled or refused at the provider.")))
    code = request.query.get("code", "")
    if not code:
        return _oidc_refused(request, oidc.OidcError(N_("The sign-in could not be completed.")))
    try:
        identity = await oidc.complete(settings, oidc.Provider(**saved["provider"]), code, saved)
    except oidc.OidcError as exc:
        record_authentication(request, Actor(None, address=client_address(request)), success=False,
                              method="oidc")
        return _oidc_refused(request, exc)
    linking = None
    if saved.get("link_account"):
        who = principal(request)
        if who is None or who.account_id != saved["link_account"]:
            return _oidc_refused(request, oidc.OidcError(N_(
                "Sign in to the portal first, then link your account.")))
        linking = await store.account(who.account_id)
    try:
        account = await oidc.account_for(store, identity, linking_account=linking)
    except oidc.NotLinked:
        return render(request, "auth/message.html", {
            "heading": translate(request, "No portal account for this sign-in yet"),
            "lines": [
                translate(request, "Your %(provider)s account is not connected to a patient "
                                   "account here.", provider=settings.oidc_name),
                translate(request, "If you received an activation letter or email, activate "
                                   "your account first; then you can connect %(provider)s on "
                                   "the Account page.", provider=settings.oidc_name),
            ],
            "link": ("/activate", translate(request, "Activate your account")),
        }, status=403)
    except oidc.OidcError as exc:
        return _oidc_refused(request, exc, status=409)
    if linking is not None:
        raise web.HTTPSeeOther("/account?linked=1")
    response = await complete_sign_in(request, account, saved.get("next") or "/",
                                      method="oidc")
    response.del_cookie(PREAUTH_COOKIE, path="/")
    raise response
