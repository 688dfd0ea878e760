"""The client address behind reverse proxies: X-Forwarded-For counts only when the peer is
a trusted proxy, and only up to the first hop that is not one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fhir_portal.app import create_app
from fhir_portal.web.client_address import forwarded_client, trusted_networks
from tests.support import csrf_of

PROXIES = trusted_networks(("10.0.0.0/8", "127.0.0.1"))


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert forwarded_client("203.0.113.9", ["198.51.100.1"], ()) == "203.0.113.9"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_forward() -> None:
    assert forwarded_client("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"


def test_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    # the client wrote a fake first hop; the proxies appended the real ones
    header = ["6.6.6.6, 198.51.100.7, 10.1.2.3"]
    assert forwarded_client("127.0.0.1", header, PROXIES) == "198.51.100.7"
    assert forwarded_client("127.0.0.1", ["198.51.100.7", "10.1.2.3"], PROXIES) == "198.51.100.7"


def test_garbage_hops_never_become_the_key() -> None:
    assert forwarded_client("127.0.0.1", ["not-an-address, 10.1.2.3"], PROXIES) == "10.1.2.3"
    assert forwarded_client("127.0.0.1", ["unknown"], PROXIES) == "127.0.0.1"
    assert forwarded_client("127.0.0.1", [], PROXIES) == "127.0.0.1"
    assert forwarded_client("10.0.0.5", ["2001:db8::1"], PROXIES) == "2001:db8::1"


def test_ports_brackets_and_mapped_addresses_are_read_as_plain_addresses() -> None:
    assert forwarded_client("127.0.0.1", ["203.0.113.5:41234"], PROXIES) == "203.0.113.5"
    assert forwarded_client("127.0.0.1", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert forwarded_client("::ffff:10.0.0.2", ["198.51.100.9"], PROXIES) == "198.51.100.9"
    assert forwarded_client("127.0.0.1", ["198.51.100.9, ::ffff:10.9.9.9"], PROXIES) == "198.51.100.9"


def test_a_bad_setting_stops_the_start() -> None:
    with pytest.raises(ValueError, match="PORTAL_TRUSTED_PROXIES"):
        trusted_networks(("10.0.0.0/8", "proxy.example"))


async def _attempt(client, forwarded: str):  # type: ignore[no-untyped-def]
    page = await client.get("/login", headers={"X-Forwarded-For": forwarded})
    return await client.post(
        "/login",
        data={"csrf_token": csrf_of(await page.text()), "email": "x@example.org", "password": "wrong one!"},
        headers={"X-Forwarded-For": forwarded},
        allow_redirects=False,
    )


async def test_clients_behind_a_trusted_proxy_have_their_own_allowance(aiohttp_client, settings):
    limited = replace(settings, ratelimit_burst=2, ratelimit_per_minute=1)
    behind = await aiohttp_client(create_app(replace(limited, trusted_proxies=("127.0.0.1",))))
    first = [(await _attempt(behind, "198.51.100.1")).status for _ in range(3)]
    second = [(await _attempt(behind, "198.51.100.2")).status for _ in range(3)]
    assert first == [400, 400, 429] and second == [400, 400, 429]
    # with no trusted proxy a forged header does not buy new attempts
    direct = await aiohttp_client(create_app(limited))
    statuses = [(await _attempt(direct, f"198.51.100.{n}")).status for n in range(3)]
    assert statuses == [400, 400, 429]
