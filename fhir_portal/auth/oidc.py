"""Sign in with any OpenID Connect provider (e.g. Microsoft Entra ID), by configuration.

Authorization code flow with PKCE S256, ``state`` and ``nonce`` kept in a short-lived
pre-authentication record on the server (bound to the browser by a cookie). The id_token
is validated with joserfc against the provider's JWKS: signature, ``iss``, ``aud``,
``exp`` and ``nonce``. An external identity (issuer + subject) is linked to a local
account only by a signed-in patient (after activation) or by a *verified* email that
matches exactly one account, never by an unverified claim.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_portal.auth.httpclient import HTTP_TIMEOUT, AsyncOAuth2Client
from fhir_portal.auth.refusal import SignInRefused
from fhir_portal.auth.store import Account, AccountStore
from fhir_portal.i18n import N_
from fhir_portal.settings import Settings

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
SCOPE = "openid email profile"
LEEWAY_SECONDS = 60


class OidcError(SignInRefused):
    """External sign-in refused."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/oidc/callback"


async def discover(settings: Settings) -> Provider:
    url = settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            response = await http.get(url)
            response.raise_for_status()
            config = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(N_("The sign-in service cannot be reached right now. Please try "
                           "again later."), str(exc)) from exc
    if config.get("issuer", "").rstrip("/") != settings.oidc_issuer.rstrip("/"):
        raise OidcError(N_("The sign-in service is not configured correctly."),
                        "discovery issuer mismatch")
    try:
        return Provider(config["issuer"], config["authorization_endpoint"],
                        config["token_endpoint"], config["jwks_uri"])
    except KeyError as exc:
        raise OidcError(N_("The sign-in service is not configured correctly."),
                        f"discovery lacks {exc}") from exc


def _client(settings: Settings) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret or None,
        token_endpoint_auth_method="client_secret_post" if settings.oidc_client_secret else "none",
        scope=SCOPE,
        redirect_uri=redirect_uri(settings),
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT,
    )


def authorization_request(settings: Settings, provider: Provider) -> tuple[str, str, dict[str, Any]]:
    """The provider URL to send the browser to, its ``state``, and what to keep for later."""
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    client = _client(settings)
    url, _ = client.create_authorization_url(
        provider.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier,
    )
    return url, state, {"nonce": nonce, "verifier": verifier}


async def complete(
    settings: Settings, provider: Provider, code: str, saved: dict[str, Any]
) -> Identity:
    """Exchange the code and validate the id_token; the identity it proves."""
    try:
        async with _client(settings) as client:
            token = await client.fetch_token(
                provider.token_endpoint, code=code, code_verifier=saved["verifier"],
                grant_type="authorization_code",
            )
            jwks_response = await client.get(provider.jwks_uri)
            jwks_response.raise_for_status()
            jwks = jwks_response.json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise OidcError(N_("The sign-in could not be completed. Please try again."),
                        f"token exchange failed: {type(exc).__name__}") from exc
    except Exception as exc:  # authlib's OAuthError and friends
        raise OidcError(N_("The sign-in could not be completed. Please try again."),
                        f"token exchange refused: {exc}") from exc
    id_token = token.get("id_token")
    if not id_token:
        raise OidcError(N_("The sign-in could not be completed. Please try again."), "no id_token")
    claims = validate_id_token(id_token, jwks, issuer=provider.issuer,
                               audience=settings.oidc_client_id, nonce=saved["nonce"])
    return Identity(
        issuer=str(claims["iss"]), subject=str(claims["sub"]),
        email=str(claims["email"]).strip() if claims.get("email") else None,
        email_verified=claims.get("email_verified") is True,
        name=str(claims["name"]) if claims.get("name") else None,
    )


def validate_id_token(
    id_token: str, jwks: dict[str, Any], *, issuer: str, audience: str, nonce: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of an id_token whose signature, iss, aud, exp and nonce all hold."""
    refused = N_("The sign-in could not be verified, so it was refused. Please try again.")
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        decoded = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise OidcError(refused, f"id_token signature: {exc}") from exc
    registry = jwt.JWTClaimsRegistry(
        now=int(now if now is not None else time.time()),
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError as exc:
        raise OidcError(refused, f"id_token claims: {exc}") from exc
    azp = decoded.claims.get("azp")
    auds = decoded.claims.get("aud")
    if isinstance(auds, list) and len(auds) > 1 and azp != audience:
        raise OidcError(refused, "id_token azp")
    return dict(decoded.claims)


class NotLinked(Exception):
    """No local account for this identity (and nothing allowed to link it)."""


async def account_for(
    store: AccountStore, identity: Identity, *, linking_account: Account | None = None
) -> Account:
    """The local account for an external identity, linking it where that is allowed."""
    linked = await store.identity(identity.issuer, identity.subject)
    if linked is not None:
        if linking_account is not None and linked.account_id != linking_account.id:
            raise OidcError(N_("This external account is already linked to another account."))
        account = await store.account(linked.account_id)
        if account is None:
            raise NotLinked()
        return account
    if linking_account is not None:
        await store.link_identity(identity.issuer, identity.subject, linking_account.id,
                                  identity.email)
        return linking_account
    if identity.email and identity.email_verified:
        account = await store.account_by_email(identity.email)
        # accounts.email is unique (case-insensitive): a match is exactly one account
        if account is not None and account.email_verified and account.email.casefold() == \
                identity.email.casefold():
            await store.link_identity(identity.issuer, identity.subject, account.id,
                                      identity.email)
            return account
    raise NotLinked()
