"""Server-side sessions: cookie in, principal out; revocable, with idle and absolute limits."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal import keys
from fhir_portal.auth.store import Account, Session
from fhir_portal.web.context import PRINCIPAL, SESSION

COOKIE = "portal_session"
_TOUCH_EVERY = 60.0


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
    if session is not None:
        account = await store.account(session.account_id) if session.account_id else None
        request[SESSION] = session
        request[PRINCIPAL] = account.principal() if account else None
        if time.time() - session.last_seen > _TOUCH_EVERY:
            await store.touch_session(session)
    response = await handler(request)
    if expired and not response.prepared:
        response.del_cookie(COOKIE, path="/")
    return response


async def start_session(
    request: web.Request, response: web.StreamResponse, account: Account, **data: object
) -> Session:
    """Sign in: a fresh session id (never the one used before sign-in), cookie set."""
    store = request.app[keys.ACCOUNTS]
    previous = request.get(SESSION)
    if previous is not None:
        await store.delete_session(previous.id_hash)
    session = await store.create_session(account.id, dict(data))
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
    request[PRINCIPAL] = account.principal()
    return session


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    session = request.get(SESSION)
    if session is not None:
        await request.app[keys.ACCOUNTS].delete_session(session.id_hash)
    response.del_cookie(COOKIE, path="/")
    request[SESSION] = None
    request[PRINCIPAL] = None
