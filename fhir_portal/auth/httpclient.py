"""authlib's httpx OAuth 2 client, imported once with its httpx2 deprecation notice muted.

authlib announces that its ``httpx`` integration will move to ``httpx2``; the module still
works with the httpx we pin, so the notice is filtered where we import it.
"""

from __future__ import annotations

import warnings

import authlib.deprecate  # noqa: F401 - installs its own "always" filter first

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from authlib.oauth2.rfc7636 import create_s256_code_challenge

__all__ = ["AsyncOAuth2Client", "create_s256_code_challenge"]

HTTP_TIMEOUT = 10.0
