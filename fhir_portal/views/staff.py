"""``/staff``: the staff console home, listing the staff areas that exist."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.auth.roles import Role
from fhir_portal.i18n import N_
from fhir_portal.web.context import require_roles
from fhir_portal.web.render import render

# (route name, label, description, roles that may open it); shown when the route exists
AREAS: tuple[tuple[str, str, str, frozenset[Role]], ...] = (
    ("staff-queue", N_("Virtual visit queue"),
     N_("Patients waiting for an instant virtual visit."),
     frozenset({Role.CLINICIAN})),
    ("staff-chats", N_("Chats"),
     N_("Chats handed over by the Health Bot."),
     frozenset({Role.AGENT, Role.CLINICIAN, Role.ADMIN})),
    ("staff-messages", N_("Patient messages"),
     N_("Messages from patients waiting for a reply."),
     frozenset({Role.CLINICIAN})),
)
ROLE_LABELS = {
    Role.AGENT: N_("Patient-service agent"),
    Role.CLINICIAN: N_("Clinician"),
    Role.ADMIN: N_("Administrator"),
}


async def console(request: web.Request) -> web.Response:
    who = require_roles(request, Role.AGENT, Role.CLINICIAN, Role.ADMIN)
    names = request.app.router.named_resources()
    areas = [
        {"url": names[name].url_for(), "label": label, "description": description}
        for name, label, description, roles in AREAS
        if name in names and who.has(*roles)
    ]
    roles = [ROLE_LABELS[r] for r in (Role.AGENT, Role.CLINICIAN, Role.ADMIN) if r in who.roles]
    return render(request, "staff/index.html", {"areas": areas, "roles": roles, "who": who})
