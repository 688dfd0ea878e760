"""create_app(settings): wiring only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from fhir_portal import keys
from fhir_portal.app_paths import TEMPLATES_DIR
from fhir_portal.auth.store import AccountStore
from fhir_portal.chat import wiring as chat_wiring
from fhir_portal.fhir import FhirGateway
from fhir_portal.fhir.connection import PooledFhirClient
from fhir_portal.i18n import Translations
from fhir_portal.notify import inbox_watch, outbox
from fhir_portal.settings import Settings
from fhir_portal.views import demo_mailbox, routes
from fhir_portal.web import (
    audit,
    audit_trail,
    background,
    csrf,
    errors,
    headers,
    locale,
    ratelimit,
    render,
    session,
)

MAX_UPLOAD_BYTES = 12 * 1024 * 1024


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    app = web.Application(
        middlewares=[
            headers.security_headers,
            errors.errors,
            session.sessions,
            locale.locales,
            ratelimit.rate_limit,
            csrf.csrf,
            audit.audit,
            render.nav_badges,
        ],
        client_max_size=MAX_UPLOAD_BYTES,
    )
    app[keys.SETTINGS] = settings
    app[keys.TRANSLATIONS] = Translations.load()
    app[audit_trail.AUDIT_TRAIL] = audit_trail.AuditTrail(app)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined] # real ones come per request
    env.globals["static"] = render.static_urls(app)
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(_accounts)
    app.cleanup_ctx.append(background.background_tasks)  # after the pools: drained first
    app.cleanup_ctx.append(audit_trail.audit_trail_lifecycle)  # its last flush, before that
    ratelimit.setup(app)
    app.cleanup_ctx.append(inbox_watch.inbox_watch)
    app.cleanup_ctx.append(demo_mailbox.smtp_sink)  # only listens in demo mode
    app.cleanup_ctx.append(outbox.outbox_worker)
    chat_wiring.setup(app)  # knowledge index refresher + chat hub
    routes.setup(app)
    return app


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=50, keepalive_timeout=30)
    timeout = aiohttp.ClientTimeout(
        total=settings.fhir_timeout, sock_connect=settings.fhir_connect_timeout
    )
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        app[keys.HTTP_SESSION] = http
        client = PooledFhirClient(settings.effective_fhir_base_url, http, timeout=timeout)
        app[keys.GATEWAY] = FhirGateway(client)
        yield


async def _accounts(app: web.Application) -> AsyncIterator[None]:
    store = await AccountStore.open(app[keys.SETTINGS].accounts_db)
    app[keys.ACCOUNTS] = store
    yield
    await store.close()


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
