"""Settings from the environment, with embedded defaults that run the demo as is.

Every setting has an environment variable ``PORTAL_<NAME>``; nothing else reads the
environment. Defaults point at the embedded HAPI server and a local SMTP sink.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _env_value(name: str, default: Any, kind: type) -> Any:
    raw = os.environ.get(f"PORTAL_{name.upper()}")
    if raw is None:
        return default
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    if kind is Path:
        return Path(raw)
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


@dataclass(frozen=True)
class Settings:
    # the portal
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    title: str = "Contoso Healthcare"
    data_dir: Path = ROOT / "var"
    secret_key: str = ""
    timezone: str = "Europe/Copenhagen"  # the patients' zone: web.context.tz(request) in views
    default_locale: str = "en"
    cookie_secure: bool = False
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # attempts per client address on sign-in, registration, activation, password reset
    ratelimit_burst: int = 20
    ratelimit_per_minute: float = 20.0
    # reverse proxies (addresses or networks) whose X-Forwarded-For names the client; empty:
    # the peer address is the client's (rate limits and audit addresses use it)
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)

    # the FHIR server; empty means the embedded HAPI server
    fhir_base_url: str = ""
    fhir_timeout: float = 10.0
    fhir_connect_timeout: float = 3.0
    hapi_port: int = 8090
    hapi_java_opts: str = "-Xmx1g"
    hapi_jdbc_url: str = ""
    hapi_jdbc_user: str = ""
    hapi_jdbc_password: str = ""

    # notifications
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "Contoso Healthcare <no-reply@contoso.example>"
    sms_webhook_url: str = ""
    sms_webhook_token: str = ""
    demo_mailbox: bool = False
    # a REST-hook Subscription so the FHIR server tells the portal of new messages at once
    # (the periodic sweep runs either way); off for portals the FHIR server cannot reach
    fhir_subscription: bool = True

    # external sign-in
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_name: str = "Microsoft"
    smart_client_id: str = ""
    smart_client_secret: str = ""
    smart_allowed_iss: tuple[str, ...] = field(default_factory=tuple)
    smart_scopes: str = "launch openid fhirUser online_access patient/*.rs"

    # visits
    visit_url_template: str = "https://meet.contoso.example/visit/{appointment_id}"

    @property
    def effective_fhir_base_url(self) -> str:
        return self.fhir_base_url or f"http://127.0.0.1:{self.hapi_port}/fhir"

    @property
    def uses_embedded_fhir(self) -> bool:
        return not self.fhir_base_url

    @property
    def accounts_db(self) -> Path:
        return self.data_dir / "accounts.sqlite3"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc,operator]
            kind = type(default) if default is not None else str
            if isinstance(default, Path):
                kind = Path
            values[f.name] = _env_value(f.name, default, kind)
        settings = cls(**values)
        settings = replace(settings, **overrides)
        if not settings.secret_key:
            settings = replace(settings, secret_key=_persistent_secret(settings.data_dir))
        return settings


def _persistent_secret(data_dir: Path) -> str:
    """A random key kept in the data folder, so sessions and links survive a restart."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
