"""Home-page latency against the slowest single FHIR query the page needs, in one run.

The portal runs in this process on a free loopback port, over the given FHIR server. One
home-page request is traced to learn exactly which FHIR requests the page makes; then,
after a warm-up, each round times one home-page request and each of those FHIR requests
replayed alone through the same connection pool (interleaved, so both see the same
server state). The page runs its queries in parallel, so its p50 should stay close to
the slowest single query's p50: target ratio <= 1.5.

    .venv/bin/python bench/home_latency.py --fhir http://127.0.0.1:8092/fhir
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_portal import keys  # noqa: E402
from fhir_portal.app import create_app  # noqa: E402
from fhir_portal.auth.passwords import hash_password  # noqa: E402
from fhir_portal.auth.roles import Role  # noqa: E402
from fhir_portal.settings import Settings  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "bench password that is long enough"
TARGET = 1.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe(call: tuple[tuple[Any, ...], dict[str, Any]]) -> str:
    args, kwargs = call
    method, path = args[0], args[1]
    params = kwargs.get("params") or {}
    query = "&".join(f"{k}={v[0] if isinstance(v, list) and len(v) == 1 else v}" for k, v in params.items())
    return f"{method.upper()} {path}{'?' + query if query else ''}"


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fhir", default="http://127.0.0.1:8092/fhir", help="FHIR base URL (with fixtures)")
    parser.add_argument("--patient", default="pat-anna", help="patient id whose home page is measured")
    parser.add_argument("--requests", type=int, default=60, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up rounds")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        settings = Settings(
            host="127.0.0.1",
            port=port,
            public_url=f"http://127.0.0.1:{port}",
            data_dir=Path(data_dir),
            secret_key=uuid.uuid4().hex,
            fhir_base_url=options.fhir,
            fhir_subscription=False,  # a measuring portal asks the server for no hooks
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await measure(app, f"http://127.0.0.1:{port}", options)
        finally:
            await runner.cleanup()


async def measure(app: web.Application, base: str, options: argparse.Namespace) -> int:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
    await app[keys.ACCOUNTS].create_account(
        email,
        password_hash=await hash_password(PASSWORD),
        roles={Role.PATIENT},
        display_name="Bench",
        patient_id=options.patient,
        email_verified=True,
        profile_complete=True,
    )
    client = app[keys.GATEWAY].client
    original = client._do_request
    traced: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def tracing(*args: Any, **kwargs: Any) -> Any:
        traced.append((args, kwargs))
        return await original(*args, **kwargs)

    async with aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        login = await (await browser.get("/login")).text()
        token = CSRF.search(login)
        assert token, "no CSRF token on the sign-in page"
        response = await browser.post(
            "/login",
            data={"csrf_token": token.group(1), "email": email, "password": PASSWORD},
            allow_redirects=False,
        )
        assert response.status in (302, 303), f"sign-in failed: {response.status}"

        async def home() -> float:
            started = time.perf_counter()
            async with browser.get("/", allow_redirects=False) as page:
                await page.read()
                assert page.status == 200, f"home page answered {page.status}"
            return time.perf_counter() - started

        client._do_request = tracing  # type: ignore[method-assign]
        await home()
        client._do_request = original  # type: ignore[method-assign]
        queries = [call for call in traced if call[0][0].lower() == "get"]
        assert queries, "the home page made no FHIR request"

        async def query(call: tuple[tuple[Any, ...], dict[str, Any]]) -> float:
            started = time.perf_counter()
            await original(*call[0], **call[1])
            return time.perf_counter() - started

        for _ in range(options.warmup):
            await home()
            for call in queries:
                await query(call)

        async def all_at_once() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(original(*call[0], **call[1]) for call in queries))
            return time.perf_counter() - started

        page_times: list[float] = []
        together: list[float] = []
        query_times: list[list[float]] = [[] for _ in queries]
        for _ in range(options.requests):
            page_times.append(await home())
            for index, call in enumerate(queries):
                query_times[index].append(await query(call))
            together.append(await all_at_once())

    ms = 1000.0
    print(
        f"home page over {options.fhir} for {options.patient}: {options.requests} requests after "
        f"{options.warmup} warm-up rounds; it makes {len(queries)} FHIR requests"
    )
    medians = [statistics.median(times) for times in query_times]
    for call, times in sorted(zip(queries, query_times, strict=True), key=lambda x: -statistics.median(x[1])):
        print(
            f"  query p50 {statistics.median(times) * ms:7.1f} ms  p95 {percentile(times, 95) * ms:7.1f} ms  "
            f"{describe(call)[:120]}"
        )
    slowest = max(medians)
    home_p50, home_p95 = statistics.median(page_times), percentile(page_times, 95)
    sum_p50 = sum(medians)
    ratio = home_p50 / slowest
    print(f"home p50 {home_p50 * ms:.1f} ms, p95 {home_p95 * ms:.1f} ms")
    print(
        f"slowest single query p50 {slowest * ms:.1f} ms "
        f"(all queries one after another: {sum_p50 * ms:.1f} ms)"
    )
    floor = statistics.median(together)
    print(
        "the same queries sent all at once without the portal: "
        f"p50 {floor * ms:.1f} ms (what the FHIR server allows in parallel)"
    )
    print(
        f"ratio all-at-once p50 / slowest query p50 = {floor / slowest:.2f} "
        "(the floor for any portal making these queries on this machine)"
    )
    print(f"portal's own time over that floor: {(home_p50 - floor) * ms:.1f} ms")
    print(f"ratio home p50 / slowest query p50 = {ratio:.2f} (target <= {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
