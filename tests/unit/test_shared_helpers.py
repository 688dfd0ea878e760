"""The helpers the areas share: references, time zones, day bounds, page numbers, formats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fhir_portal.fhir.model import aware, day_bounds, reference_id, reference_key
from fhir_portal.web.format import Formatter

CPH = ZoneInfo("Europe/Copenhagen")


def test_reference_key_reads_relative_absolute_and_refuses_the_rest() -> None:
    assert reference_key({"reference": "Patient/pat-anna"}) == "Patient/pat-anna"
    assert reference_key("http://example.org/fhir/Practitioner/p1/") == "Practitioner/p1"
    assert reference_key({"reference": "#med1"}) == ""
    assert reference_key({"reference": "Patient/"}) == ""
    assert reference_key({"display": "Dr. X"}) == ""
    assert reference_key(None) == ""
    assert reference_id({"reference": "Patient/"}) is None
    assert reference_id({"reference": "Patient/a"}, "Practitioner") is None
    assert reference_id({"reference": "Patient/a"}, "Patient") == "a"


def test_aware_keeps_offsets_and_reads_naive_values_in_the_given_zone() -> None:
    naive = datetime(2026, 3, 1, 9, 30)
    assert aware(naive) == naive.replace(tzinfo=UTC)
    assert aware(naive, CPH) == naive.replace(tzinfo=CPH)
    offset = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert aware(offset, CPH) is offset
    assert aware(None) is None


def test_day_bounds_follow_daylight_saving_changes() -> None:
    start, end = day_bounds(date(2026, 3, 29), CPH)  # clocks go forward: a 23-hour day
    assert (start.hour, end.date()) == (0, date(2026, 3, 30))
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def test_formatter_styles_in_the_patients_zone() -> None:
    fmt = Formatter("en", CPH)
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # already 2 March in Copenhagen
    assert fmt.date(moment) == "Mar 2, 2026"
    assert fmt.full(moment) == "Monday, March 2, 2026, 12:30\u202fAM"
    assert fmt.stamp(moment) == "Mar 2, 2026, 12:30\u202fAM"
    assert fmt.when("2026-03") == "Mar 2026"
    assert fmt.when("onset in childhood") == "onset in childhood"
    assert fmt.km(2.46) == "2.5"
    assert Formatter("da", CPH).km(2.46) == "2,5"
    assert fmt.local_iso(moment) == "2026-03-02T00:30:00+01:00"
