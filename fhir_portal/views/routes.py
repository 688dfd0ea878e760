"""Every route of the portal, in one list."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.app_paths import STATIC_DIR
from fhir_portal.i18n import N_
from fhir_portal.views import auth, health, home, language
from fhir_portal.web.render import NAV

# The main navigation: (route name, path, label). An entry shows only once its route is
# registered below; labels are translated when shown.
NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("home", "/", N_("Home")),
    ("appointments", "/appointments", N_("Appointments")),
    ("messages", "/messages", N_("Messages")),
    ("records", "/records", N_("Medical records")),
    ("activities", "/activities", N_("Activities")),
    ("knowledge", "/knowledge", N_("Health articles")),
)


def setup(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/", home.home, name="home"),
            web.get("/healthz", health.healthz, name="healthz"),
            web.get("/login", auth.login_form, name="login"),
            web.post("/login", auth.login, name="login-submit"),
            web.post("/logout", auth.logout, name="logout"),
            web.get("/logout", auth.logout_form, name="logout-form"),
            web.post("/language", language.switch, name="language"),
            web.static("/static", STATIC_DIR, name="static", append_version=True),
        ]
    )
    names = set(app.router.named_resources())
    app[NAV] = tuple((path, label) for name, path, label in NAVIGATION if name in names)
