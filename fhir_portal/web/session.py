"""Server-side sessions: cookie in, principal out; revocable, with idle and absolute limits."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal import keys
from fhir_portal.auth.store import Account, Session
from fhir_portal.web.background import keyed_locks
from fhir_portal.web.context import PRINCIPAL, SESSION

COOKIE = "portal_session"
_TOUCH_EVERY = 60.0
# what a patient may open before the first-sign-in profile is complete
FIRST_SIGN_IN_OPEN = (
    "/profile", "/account", "/logout", "/login", "/static/", "/language", "/healthz",
    "/register", "/activate", "/password-reset", "/oidc/", "/smart/",
)


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.ACCOUNTS]
    request[SESSION] = None
    request[PRINCIPAL] = None
    token = request.cookies.get(COOKIE)
    session = await store.session(token) if token else None
    expired = False
    if session is not None:
        now = time.time()
        idle = now - session.last_seen > settings.session_idle_minutes * 60
        too_old = now - session.created_at > settings.session_absolute_hours * 3600
        if idle or too_old:
            await store.delete_session(session.id_hash)
            session, expired = None, True
    if session is not None and session.data.get("smart"):
        from fhir_portal.auth.smart import smart_principal

        assert token is not None
        session = await _current_smart_session(request, session, token)
        if session is None:
            expired = True
        else:
            request[SESSION] = session
            request[PRINCIPAL] = smart_principal(session.data["smart"])
    elif session is not None:
        account = await store.account(session.account_id) if session.account_id else None
        request[SESSION] = session
        request[PRINCIPAL] = account.principal() if account else None
    if session is not None and time.time() - session.last_seen > _TOUCH_EVERY:
        await store.touch_session(session)
    who = request[PRINCIPAL]
    if (who is not None and who.is_patient and not who.profile_complete
            and request.method == "GET" and not request.path.startswith(FIRST_SIGN_IN_OPEN)):
        # first sign-in: the profile comes first, every other patient page waits for it
        raise web.HTTPSeeOther("/profile?first=1")
    response = await handler(request)
    if expired and not response.prepared:
        response.del_cookie(COOKIE, path="/")
    return response


async def _current_smart_session(
    request: web.Request, session: Session, token: str
) -> Session | None:
    """The SMART session with a usable access token (refreshed once if it runs out), or
    None once it cannot be had (the session is then deleted)."""
    from fhir_portal.auth import smart

    if not smart.needs_refresh(session.data["smart"]):
        return session
    store = request.app[keys.ACCOUNTS]
    # one refresh per session at a time: a server that rotates refresh tokens would refuse
    # the second of two parallel refreshes and end a session that is fine
    async with keyed_locks(request.app)(f"smart-refresh:{session.id_hash}"):
        current = await store.session(token)
        if current is None:
            return None
        data = current.data.get("smart") or {}
        if data and not smart.needs_refresh(data):
            return current  # another request refreshed it meanwhile
        if data and data.get("refresh_refused") and not smart.token_expired(data):
            return current  # refused once: use the token while it lasts, do not ask again
        renewed = await smart.refresh(request.app[keys.SETTINGS], data) if data else None
        if renewed is not None:
            await store.set_session_value(current, "smart", renewed)
            return current
        if data and not smart.token_expired(data):
            await store.set_session_value(current, ("smart", "refresh_refused"), True)
            return current  # not refreshed, but still valid for now
        await store.delete_session(current.id_hash)
        return None


async def start_session(
    request: web.Request, response: web.StreamResponse, account: Account, **data: object
) -> Session:
    """Sign in: a fresh session id (never the one used before sign-in), cookie set."""
    session = await _new_session(request, response, account.id, dict(data))
    request[PRINCIPAL] = account.principal()
    return session


async def start_smart_session(
    request: web.Request, response: web.StreamResponse, smart: dict[str, object]
) -> Session:
    """A session whose principal is the SMART launch's patient context (no local account)."""
    from fhir_portal.auth.smart import smart_principal

    session = await _new_session(request, response, None, {"smart": smart})
    request[PRINCIPAL] = smart_principal(smart)
    return session


async def _new_session(
    request: web.Request, response: web.StreamResponse, account_id: int | None,
    data: dict[str, object],
) -> Session:
    store = request.app[keys.ACCOUNTS]
    previous = request.get(SESSION)
    if previous is not None:
        await store.delete_session(previous.id_hash)
    session = await store.create_session(account_id, data)
    assert session.token is not None
    settings = request.app[keys.SETTINGS]
    response.set_cookie(
        COOKIE,
        session.token,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
        max_age=settings.session_absolute_hours * 3600,
    )
    request[SESSION] = session
    return session


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    session = request.get(SESSION)
    if session is not None:
        await request.app[keys.ACCOUNTS].delete_session(session.id_hash)
    response.del_cookie(COOKIE, path="/")
    request[SESSION] = None
    request[PRINCIPAL] = None
