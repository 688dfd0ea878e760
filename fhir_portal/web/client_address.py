"""The client's address: the peer, or behind trusted reverse proxies, the forwarded one.

With ``Settings.trusted_proxies`` empty (the default) the TCP peer is the client, and any
``X-Forwarded-For`` header is ignored (a client could write anything in it). When the peer
is one of the trusted proxies, the header is read from the right: each hop a trusted proxy
added is skipped, and the first address that is not a trusted proxy is the client. A hop
that is not an IP address ends the walk at the last trusted address (never a made-up key);
ports and IPv4-mapped IPv6 forms are read as the plain address.
Rate limits and AuditEvent agent addresses use this.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from aiohttp import web

from fhir_portal import keys

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse the setting (addresses or CIDR networks); a bad entry is a start-up error."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"PORTAL_TRUSTED_PROXIES: not an address or network: {entry!r}") from exc
    return tuple(networks)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a peer or a forwarded hop: ``[v6]:port`` and ``v4:port`` lose their
    port, and an IPv4-mapped IPv6 address (a dual-stack socket) counts as its IPv4 one."""
    text = value.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.5:41234
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: list[str], networks: tuple[Network, ...]) -> str:
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = str(_ip(peer))
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            break
        client = str(address)
        if not _trusted(client, networks):
            break
    return client


def client_address(request: web.Request) -> str:
    peer = request.remote or "unknown"
    networks = trusted_networks(request.app[keys.SETTINGS].trusted_proxies)
    if not networks:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", []), networks)
