"""The signed check-in link: HMAC over appointment id and expiry, no itsdangerous."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from fhir_portal.resources import checkin


def test_a_token_names_its_appointment() -> None:
    token = checkin.make_token("secret", "appt-1", datetime.now(UTC) + timedelta(days=3))
    assert checkin.read_token("secret", token) == "appt-1"
    assert "appt-1" not in token  # base64url, so a link never shows it in clear


def test_a_changed_token_or_another_key_is_refused() -> None:
    token = checkin.make_token("secret", "appt-1", datetime.now(UTC) + timedelta(days=1))
    payload, _, signature = token.partition(".")
    other = checkin.make_token("secret", "appt-2", datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(checkin.TokenInvalid):
        checkin.read_token("another secret", token)
    with pytest.raises(checkin.TokenInvalid):
        checkin.read_token("secret", other.partition(".")[0] + "." + signature)
    with pytest.raises(checkin.TokenInvalid):
        checkin.read_token("secret", payload)
    with pytest.raises(checkin.TokenInvalid):
        checkin.read_token("secret", "garbage")


def test_a_token_expires_a_while_after_the_appointment() -> None:
    end = datetime.now(UTC) - timedelta(hours=1)
    token = checkin.make_token("secret", "appt-1", end)
    assert checkin.read_token("secret", token) == "appt-1"  # within the grace period
    later = time.time() + checkin.TOKEN_GRACE.total_seconds()
    with pytest.raises(checkin.TokenExpired):
        checkin.read_token("secret", token, now=later)


def test_new_coverage_is_validated() -> None:
    new = checkin.NewCoverage(payor_name="", member_id="!", relationship="cousin",
                              start="", end="2020-01-01")
    assert not new.validate({})
    assert set(new.errors) == {"payor", "member_id", "relationship", "start", "end"}
    good = checkin.NewCoverage(payor_id="org-ins", member_id="AB-123", relationship="self",
                               start="2026-01-01")
    assert good.validate({"org-ins": "Insurer"})
    assert not checkin.NewCoverage(payor_id="org-unknown", member_id="AB1", start="2026-01-01",
                                   ).validate({"org-ins": "Insurer"})
