"""A token bucket per client address for the pages that take passwords, codes and links.

Sign-in, registration, activation and password reset allow a burst of attempts and then
one more every few seconds per address; beyond that the answer is a friendly 429 page
with ``Retry-After``. A form that succeeds (it redirects) gives its token back, so people
signing in from one shared address are not held up by their own successful sign-ins.
This sits beside the per-account lock in ``auth/login.py``: the lock
stops guessing one account's password, the bucket stops one address trying many.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from fhir_portal import keys
from fhir_portal.web.client_address import client_address, trusted_networks

LIMITED_PREFIXES = ("/login", "/register", "/activate", "/password-reset")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_TRACKED = 50_000


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``capacity`` tokens per key, refilled at ``per_minute`` a minute."""

    def __init__(self, capacity: int, per_minute: float) -> None:
        self.capacity = float(max(capacity, 1))
        self.rate = max(per_minute, 0.001) / 60.0
        self._buckets: dict[str, Bucket] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed (a token is used), else the seconds until the next token."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._prune(now)
            bucket = self._buckets[key] = Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def refund(self, key: str) -> None:
        """Give back the token of an attempt that succeeded."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self.capacity, bucket.tokens + 1.0)

    def _prune(self, now: float) -> None:
        """Forget addresses whose bucket is full again (they would start full anyway)."""
        full = [k for k, b in self._buckets.items()
                if b.tokens + (now - b.updated) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_TRACKED:
            self._buckets.clear()


BUCKETS: web.AppKey[TokenBuckets] = web.AppKey("rate_limit_buckets", TokenBuckets)


def setup(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    trusted_networks(settings.trusted_proxies)  # a bad PORTAL_TRUSTED_PROXIES stops the start
    app[BUCKETS] = TokenBuckets(settings.ratelimit_burst, settings.ratelimit_per_minute)


def is_limited(request: web.Request) -> bool:
    path = request.path
    if not any(path == p or path.startswith(p + "/") or path.startswith(p + "?")
               for p in LIMITED_PREFIXES):
        return False
    # posting a form, or opening a link that carries a secret, costs a token
    return (request.method not in SAFE_METHODS or "token" in request.query
            or path.startswith("/password-reset/"))


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_limited(request):
        return await handler(request)
    buckets = request.app[BUCKETS]
    address = client_address(request)
    wait = buckets.take(address)
    if wait > 0:
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(math.ceil(wait))})
    try:
        response = await handler(request)
    except web.HTTPRedirection:
        # a form that worked (sign-in, activation, new password) redirects: only the
        # attempts that fail keep using up the address's allowance
        if request.method not in SAFE_METHODS:
            buckets.refund(address)
        raise
    return response
