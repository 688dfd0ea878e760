"""The portal as a SMART on FHIR app (App Launch 2.2): EHR launch and standalone launch.

``/smart/launch?iss=..&launch=..`` (EHR launch, scope ``launch``) or ``?iss=..`` alone
(standalone, scope ``launch/patient``). Only configured ``iss`` values are accepted. The
server's endpoints come from ``{iss}/.well-known/smart-configuration`` (or the older
CapabilityStatement ``oauth-uris`` extension). PKCE S256, a 256-bit ``state`` kept in a
short-lived pre-authentication record, ``aud=iss``. The token response's ``patient`` is
the session's patient; the access token stays in the server-side session.

With ``online_access`` in the scopes, the server may return a refresh token (kept in the
session too): a request that finds the access token expired, or about to, refreshes it
once (``refresh``) and the session goes on; without one, or when the refresh is refused,
the session ends and the patient opens the app again.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from fhir_portal.auth.httpclient import HTTP_TIMEOUT, AsyncOAuth2Client
from fhir_portal.auth.refusal import SignInRefused
from fhir_portal.auth.roles import Principal, Role
from fhir_portal.i18n import N_
from fhir_portal.settings import Settings

log = logging.getLogger(__name__)
# refresh a little before the access token runs out (a request must not start with a
# token that expires on its way to the EHR)
REFRESH_MARGIN_SECONDS = 60.0
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_V2_SCOPE = re.compile(r"^(patient|user|system)/[\w*]+\.c?r?u?d?s?$")
_PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class SmartError(SignInRefused):
    """The launch is refused."""


@dataclass(frozen=True)
class SmartServer:
    iss: str
    authorization_endpoint: str
    token_endpoint: str
    scopes_supported: tuple[str, ...] = field(default_factory=tuple)
    code_challenge_methods: tuple[str, ...] = field(default_factory=tuple)


def normalize_iss(iss: str) -> str:
    return iss.strip().rstrip("/")


def allowed_iss(settings: Settings, iss: str) -> bool:
    wanted = normalize_iss(iss)
    return bool(wanted) and wanted in {normalize_iss(i) for i in settings.smart_allowed_iss}


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/smart/callback"


async def discover(iss: str) -> SmartServer:
    """Endpoints from the SMART configuration, else from the CapabilityStatement."""
    unreachable = N_("The health record system cannot be reached right now. Please try again.")
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        try:
            response = await http.get(f"{iss}/.well-known/smart-configuration",
                                      headers={"Accept": "application/json"})
            if response.status_code == 200:
                config = response.json()
                return SmartServer(
                    iss, config["authorization_endpoint"], config["token_endpoint"],
                    tuple(config.get("scopes_supported") or ()),
                    tuple(config.get("code_challenge_methods_supported") or ()),
                )
            response = await http.get(f"{iss}/metadata",
                                      headers={"Accept": "application/fhir+json"})
            response.raise_for_status()
            statement = response.json()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise SmartError(unreachable, f"discovery failed: {type(exc).__name__}") from exc
    for rest in statement.get("rest", []):
        for extension in (rest.get("security") or {}).get("extension", []):
            if extension.get("url") != OAUTH_URIS:
                continue
            uris = {e.get("url"): e.get("valueUri") for e in extension.get("extension", [])}
            if uris.get("authorize") and uris.get("token"):
                return SmartServer(iss, str(uris["authorize"]), str(uris["token"]))
    raise SmartError(N_("This health record system does not support signing in with SMART."),
                     "no SMART endpoints")


def scopes_for(settings: Settings, server: SmartServer, *, standalone: bool) -> str:
    """The configured scopes; v1 (``.read``) when the server lists no v2 scopes."""
    wanted = settings.smart_scopes.split()
    supports_v2 = not server.scopes_supported or any(
        _V2_SCOPE.match(s) and not s.endswith((".read", ".write", ".*"))
        for s in server.scopes_supported
    )
    result: list[str] = []
    for scope in wanted:
        if scope == "launch" and standalone:
            scope = "launch/patient"
        if not supports_v2 and _V2_SCOPE.match(scope):
            base, _, perms = scope.rpartition(".")
            if "r" in perms or "s" in perms:
                result.append(f"{base}.read")
            if any(p in perms for p in "cud"):
                result.append(f"{base}.write")
            continue
        result.append(scope)
    if standalone and "launch/patient" not in result:
        result.append("launch/patient")
    return " ".join(dict.fromkeys(result))


def _client(settings: Settings, scope: str | None = None) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=settings.smart_client_id,
        client_secret=settings.smart_client_secret or None,
        token_endpoint_auth_method=(
            "client_secret_basic" if settings.smart_client_secret else "none"),
        scope=scope,
        redirect_uri=redirect_uri(settings),
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT,
    )


def authorization_request(
    settings: Settings, server: SmartServer, launch: str | None
) -> tuple[str, str, dict[str, Any]]:
    """The authorize URL, its state, and what the callback needs (kept server-side)."""
    if server.code_challenge_methods and "S256" not in server.code_challenge_methods:
        raise SmartError(N_("This health record system does not support a secure sign-in."),
                         "no S256")
    state = secrets.token_urlsafe(32)  # 256 bits
    verifier = secrets.token_urlsafe(64)
    scope = scopes_for(settings, server, standalone=launch is None)
    extra: dict[str, str] = {"aud": server.iss}
    if launch is not None:
        extra["launch"] = launch
    url, _ = _client(settings, scope).create_authorization_url(
        server.authorization_endpoint, state=state, code_verifier=verifier, **extra
    )
    saved = {"iss": server.iss, "token_endpoint": server.token_endpoint, "verifier": verifier,
             "launch": launch or ""}
    return url, state, saved


async def exchange(settings: Settings, code: str, saved: dict[str, Any]) -> dict[str, Any]:
    """Trade the code for a token; the session's SMART data (token kept server-side)."""
    try:
        async with _client(settings) as client:
            token = await client.fetch_token(
                saved["token_endpoint"], code=code, code_verifier=saved["verifier"],
                grant_type="authorization_code",
            )
    except (httpx.HTTPError, ValueError) as exc:
        raise SmartError(N_("The health record system did not complete the sign-in."),
                         f"token exchange: {type(exc).__name__}") from exc
    except Exception as exc:  # authlib's OAuthError (invalid_grant, ...)
        raise SmartError(N_("The health record system did not complete the sign-in."),
                         f"token exchange refused: {exc}") from exc
    access_token = token.get("access_token")
    if not access_token or str(token.get("token_type", "")).lower() != "bearer":
        raise SmartError(N_("The health record system did not complete the sign-in."),
                         "no bearer token")
    patient = str(token.get("patient") or "")
    if not _PATIENT_ID.match(patient):
        raise SmartError(N_("The health record system did not say which patient to show, so "
                            "the portal cannot open."), "no patient context")
    return {
        "iss": saved["iss"],
        "token_endpoint": saved["token_endpoint"],
        "access_token": str(access_token),
        "refresh_token": str(token.get("refresh_token") or ""),
        "patient": patient,
        "scope": str(token.get("scope") or ""),
        "expires_at": _expires_at(token),
        "encounter": str(token.get("encounter") or ""),
        "name": "",
    }


def _expires_at(token: dict[str, Any]) -> float:
    expires_in = token.get("expires_in")
    try:
        seconds = float(expires_in) if expires_in else 3600.0
    except (TypeError, ValueError):
        seconds = 3600.0
    return time.time() + seconds


def token_expired(data: dict[str, Any], *, margin: float = 0.0) -> bool:
    return float(data.get("expires_at") or 0) <= time.time() + margin


def needs_refresh(data: dict[str, Any]) -> bool:
    return token_expired(data, margin=REFRESH_MARGIN_SECONDS)


async def refresh(settings: Settings, data: dict[str, Any]) -> dict[str, Any] | None:
    """The session's SMART data with a new access token, or None (no refresh token, or the
    server refused: the session must end). The patient context cannot change here."""
    refresh_token = str(data.get("refresh_token") or "")
    endpoint = str(data.get("token_endpoint") or "")
    if not refresh_token or not endpoint:
        return None
    try:
        async with _client(settings) as client:
            token = await client.refresh_token(endpoint, refresh_token=refresh_token)
    except Exception as exc:  # network, invalid_grant, a malformed answer: sign in again
        log.info("SMART token refresh refused: %s", type(exc).__name__)
        return None
    access_token = token.get("access_token")
    if not access_token or str(token.get("token_type", "")).lower() != "bearer":
        log.info("SMART token refresh gave no bearer token")
        return None
    patient = token.get("patient")
    if patient and str(patient) != data.get("patient"):
        log.warning("SMART token refresh named another patient: session ended")
        return None
    return {
        **data,
        "access_token": str(access_token),
        # a server that rotates refresh tokens sends a new one; otherwise the old one stays
        "refresh_token": str(token.get("refresh_token") or refresh_token),
        "scope": str(token.get("scope") or data.get("scope") or ""),
        "expires_at": _expires_at(token),
    }


def smart_principal(data: dict[str, Any]) -> Principal:
    """The principal of a SMART session: the launch's patient context, nothing more."""
    return Principal(
        account_id=0,
        email="",
        display_name=str(data.get("name") or data.get("patient") or ""),
        roles=frozenset({Role.PATIENT}),
        patient_id=str(data["patient"]),
        profile_complete=True,
    )
