"""Notices a page shows after a redirect (``?done=...``), shared by the pages that link there."""

from __future__ import annotations

from aiohttp import web

from fhir_portal.web.render import translate


def activity_done_notice(request: web.Request) -> str | None:
    """After "mark as done" (home page or activities): what happened, or None."""
    done = request.query.get("done")
    if done == "1":
        return translate(request, "Well done! The activity is marked as done.")
    if done == "already":
        return translate(request, "This activity was already marked as done.")
    return None
