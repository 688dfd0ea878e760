"""Postal-code ranking and the notification record, without servers."""

from __future__ import annotations

from datetime import timedelta

from fhir_portal.resources import directory, notifications


def _location(ident: str, code: str, position: tuple[float, float] | None = None) -> dict:
    resource = {"resourceType": "Location", "id": ident, "name": ident,
                "address": {"line": ["Vej 1"], "postalCode": code, "city": "By"}}
    if position:
        resource["position"] = {"latitude": position[0], "longitude": position[1]}
    return resource


def test_exact_postal_code_first_then_nearest_by_position() -> None:
    locations = [
        _location("aarhus", "8000", (56.1541, 10.2059)),
        _location("odense", "5000", (55.3957, 10.382)),
        _location("cph", "2100", (55.7093, 12.5772)),
    ]
    ranked = directory.rank_places("5000", locations)
    assert [p.id for p in ranked] == ["odense", "aarhus", "cph"]
    assert ranked[0].exact and ranked[0].distance_km == 0.0
    assert 80 < ranked[1].distance_km < 100  # Odense – Aarhus is about 90 km


def test_a_location_without_position_uses_the_centroid_table() -> None:
    ranked = directory.rank_places("9200", [_location("aalborg", "9000"),
                                            _location("cph", "2100", (55.7093, 12.5772))])
    assert ranked[0].id == "aalborg" and ranked[0].distance_km is not None
    assert ranked[0].distance_km < 10


def test_unknown_postal_codes_fall_back_to_numeric_closeness() -> None:
    ranked = directory.rank_places("4321", [_location("a", "9999"), _location("b", "4300"),
                                            _location("c", "1000")])
    assert [p.id for p in ranked] == ["b", "c", "a"]
    assert all(p.distance_km is None for p in ranked)


def test_haversine_copenhagen_aarhus() -> None:
    km = directory.haversine_km((55.6761, 12.5683), (56.1629, 10.2039))
    assert 150 < km < 160


def test_postal_code_input() -> None:
    assert directory.normalise_postal_code(" 2 100 ") == "2100"
    assert directory.normalise_postal_code("21000") is None
    assert directory.normalise_postal_code("abcd") is None


def test_notification_record_has_no_more_than_it_needs() -> None:
    resource = notifications.build(patient_id="p1", medium="sms", to="+4520000000",
                                   subject="s", body="b", dedupe_key="k1")
    assert resource["medium"][0]["coding"][0]["code"] == "SMSWRIT"
    assert resource["status"] == "in-progress"
    parsed = notifications.parse({**resource, "id": "c1", "meta": {"versionId": "1"}})
    assert parsed is not None and parsed.to == "+4520000000" and parsed.attempts == 0
    assert parsed.due


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [notifications.backoff(n, base=30, cap=600) for n in range(1, 8)]
    assert delays[:5] == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480)]
    assert delays[5] == delays[6] == timedelta(seconds=600)


def test_hapi_lost_race_at_commit_is_a_conflict_not_an_outage() -> None:
    import json

    import pytest

    from fhir_portal.fhir import FhirConflict, FhirUnavailable
    from fhir_portal.fhir.connection import _map_response

    lost = json.dumps({"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "processing",
        "diagnostics": "HAPI-2223: Batch update returned unexpected row count from update"}]})
    with pytest.raises(FhirConflict):
        _map_response("put", "Appointment/1", 500, lost)
    with pytest.raises(FhirUnavailable):
        _map_response("put", "Appointment/1", 500, "")
