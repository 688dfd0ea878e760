"""An external sign-in (OpenID Connect, SMART on FHIR) that is refused."""

from __future__ import annotations


class SignInRefused(Exception):
    """``reason`` is the (untranslated) message for the page; ``detail`` is for the log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
