"""``/account``: change password, sign out other sessions or everywhere, linked sign-ins."""

from __future__ import annotations

from aiohttp import web

from fhir_portal import keys
from fhir_portal.auth import oidc
from fhir_portal.auth.policy import check_password
from fhir_portal.auth.reset import WrongPassword, change_password
from fhir_portal.auth.store import Account
from fhir_portal.i18n import N_
from fhir_portal.web.context import session, signed_in
from fhir_portal.web.render import render, translate
from fhir_portal.web.session import end_session


async def _account(request: web.Request) -> Account:
    who = signed_in(request)
    account = await request.app[keys.ACCOUNTS].account(who.account_id) if who.account_id else None
    if account is None:  # a SMART launch session has no local account
        raise web.HTTPForbidden(reason="This session has no portal account.")
    return account


async def _page(request: web.Request, account: Account, *, errors: dict[str, str] | None = None,
                notice: str | None = None, status: int = 200) -> web.Response:
    store = request.app[keys.ACCOUNTS]
    settings = request.app[keys.SETTINGS]
    return render(request, "account/account.html", {
        "account": account,
        "errors": errors or {},
        "notice": notice,
        "session_count": await store.count_sessions_of(account.id),
        "identities": await store.identities_of(account.id),
        "oidc_name": settings.oidc_name if oidc.configured(settings) else None,
    }, status=status)


_NOTICES = {
    "password": N_("Your password is changed. Other sessions were signed out."),
    "others": N_("All your other sessions are signed out."),
    "linked": N_("Your external account is connected. You can now sign in with it."),
    "unlinked": N_("The external account is no longer connected."),
}


async def account_page(request: web.Request) -> web.Response:
    account = await _account(request)
    notice = None
    for key, text in _NOTICES.items():
        if request.query.get(key) == "1":
            notice = translate(request, text)
    return await _page(request, account, notice=notice)


async def password_submit(request: web.Request) -> web.Response:
    account = await _account(request)
    form = await request.post()
    current = str(form.get("current", ""))
    new = str(form.get("password", ""))
    errors: dict[str, str] = {}
    problem = check_password(new)
    if not current:
        errors["current"] = translate(request, "Enter your current password.")
    if problem:
        errors["password"] = translate(request, problem)
    elif new != str(form.get("confirm", "")):
        errors["confirm"] = translate(request, "The two passwords are not the same.")
    if not errors:
        mine = session(request)
        try:
            await change_password(request.app[keys.ACCOUNTS], account, current, new,
                                  mine.id_hash if mine else None)
        except WrongPassword:
            errors["current"] = translate(request, "Your current password is not right.")
        else:
            raise web.HTTPSeeOther("/account?password=1")
    return await _page(request, account, errors=errors, status=400)


async def sign_out_others(request: web.Request) -> web.Response:
    account = await _account(request)
    mine = session(request)
    await request.app[keys.ACCOUNTS].delete_sessions_of(
        account.id, except_hash=mine.id_hash if mine else None)
    raise web.HTTPSeeOther("/account?others=1")


async def sign_out_everywhere(request: web.Request) -> web.Response:
    account = await _account(request)
    await request.app[keys.ACCOUNTS].delete_sessions_of(account.id)
    response = web.HTTPSeeOther("/login?signed_out=1")
    await end_session(request, response)
    raise response


async def unlink_identity(request: web.Request) -> web.Response:
    account = await _account(request)
    form = await request.post()
    await request.app[keys.ACCOUNTS].unlink_identity(
        account.id, str(form.get("issuer", "")), str(form.get("subject", "")))
    raise web.HTTPSeeOther("/account?unlinked=1")
