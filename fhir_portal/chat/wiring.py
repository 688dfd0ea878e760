"""Start-up wiring of the chat and the knowledge index (called from ``create_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fhir_portal import keys
from fhir_portal.chat.hub import HUB, hub_context
from fhir_portal.fhir.scope import DirectoryReader
from fhir_portal.resources import chat, knowledge


async def _knowledge_index(app: web.Application) -> AsyncIterator[None]:
    """The knowledge library: built in the background at start-up, refreshed every 30 s."""
    async for _ in knowledge.refresher(app, DirectoryReader(app[keys.GATEWAY])):
        yield


async def _close_sockets(app: web.Application) -> None:
    hub = app.get(HUB)
    if hub is not None:
        await hub.close_all()


def setup(app: web.Application) -> None:
    """Add after the HTTP session (the refresher reads through the app's gateway)."""
    app[chat.FACTS] = chat.FactsCache()  # the bot's facts, cached per article watermark
    app.cleanup_ctx.append(_knowledge_index)
    app.cleanup_ctx.append(hub_context)
    app.on_shutdown.append(_close_sockets)
