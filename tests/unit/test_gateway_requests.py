"""What the gateway sends: single-page searches go with _offset=0 (fresh, not stored by
HAPI) and no Cache-Control; counts with no-store; fresh stored searches with no-cache."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from fhir_portal.fhir.connection import PooledFhirClient
from fhir_portal.fhir.gateway import FhirGateway


async def test_search_headers_and_offsets(aiohttp_server) -> None:
    seen: list[tuple[dict[str, str], str | None]] = []

    async def search(request: web.Request) -> web.Response:
        seen.append((dict(request.query), request.headers.get("Cache-Control")))
        return web.json_response({"resourceType": "Bundle", "type": "searchset", "total": 7})

    app = web.Application()
    app.router.add_get("/fhir/CarePlan", search)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as http:
        gateway = FhirGateway(PooledFhirClient(str(server.make_url("/fhir")), http))
        await gateway.search("CarePlan", {"status": "active"}, single_page=True)
        await gateway.search("CarePlan", {"_offset": "20"}, single_page=True, fresh=True)
        await gateway.search("CarePlan", {"status": "active"}, fresh=True)
        await gateway.search("CarePlan", {"status": "active"})
        assert await gateway.count("CarePlan", {"status": "active"}) == 7
        ehr = FhirGateway(PooledFhirClient(str(server.make_url("/fhir")), http), offset_paging=False)
        await ehr.search("CarePlan", {"status": "active"}, single_page=True, fresh=True)
    assert seen == [
        ({"status": "active", "_offset": "0"}, None),
        ({"_offset": "20"}, None),
        ({"status": "active"}, "no-cache"),
        ({"status": "active"}, None),
        ({"status": "active", "_summary": "count"}, "no-store"),
        ({"status": "active"}, "no-cache"),  # a SMART EHR gets a standard, fresh search
    ]
