"""Typed keys for everything that hangs off the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from fhir_portal.auth.store import AccountStore
    from fhir_portal.fhir import FhirGateway
    from fhir_portal.i18n import Translations
    from fhir_portal.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
HTTP_SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("http_session")
GATEWAY: web.AppKey[FhirGateway] = web.AppKey("gateway")
ACCOUNTS: web.AppKey[AccountStore] = web.AppKey("accounts")
TRANSLATIONS: web.AppKey[Translations] = web.AppKey("translations")
