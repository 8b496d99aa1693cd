"""The parsed CSourceRegistration: operation groups, coverage, overlap, storage round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from city_os.federation.model import (
    GROUPS,
    OPERATIONS,
    EntityInfo,
    Management,
    Registration,
    RegistrationInfo,
    Status,
    TimeInterval,
    expand_operations,
)

V = "https://example.org/ns#"
VEHICLE, PARKING = V + "Vehicle", V + "OffStreetParking"
SPEED, BRAND, PARKED = V + "speed", V + "brandName", V + "isParked"


def _registration(**kw: object) -> Registration:
    base: dict[str, object] = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:1",
        "endpoint": "http://source.example.org:1026",
        "information": (
            RegistrationInfo(
                entities=(EntityInfo(id="urn:ngsi-ld:Vehicle:A456", types=(VEHICLE,)),),
                property_names=(SPEED, BRAND),
                relationship_names=(PARKED,),
            ),
            RegistrationInfo(entities=(EntityInfo(id_pattern=".*downtown$", types=(PARKING,)),)),
        ),
    }
    base.update(kw)
    return Registration(**base)  # type: ignore[arg-type]


def test_groups_are_made_of_operations() -> None:
    for members in GROUPS.values():
        assert members <= OPERATIONS
    assert GROUPS["retrieveOps"] == {"retrieveEntity", "queryEntity"}
    assert GROUPS["updateOps"] == {"updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs"}
    assert "createSubscription" in GROUPS["federationOps"]
    assert "createEntity" not in GROUPS["federationOps"]
    assert "createEntity" in GROUPS["redirectionOps"]


def test_default_operations_are_federation_ops() -> None:
    reg = _registration()
    assert reg.mode == "inclusive"
    assert reg.operations == GROUPS["federationOps"]
    assert reg.serves("queryEntity") and reg.serves("federationOps")
    assert not reg.serves("updateEntity") and not reg.serves("updateOps")


def test_groups_and_names_mix() -> None:
    assert expand_operations(["queryTemporal", "updateOps"]) == GROUPS["updateOps"] | {
        "queryTemporal"
    }
    reg = _registration(operations_asked=("queryTemporal", "updateOps"))
    assert reg.serves("replaceAttrs") and reg.serves("queryTemporal")
    assert not reg.serves("retrieveEntity")


@pytest.mark.parametrize(
    ("entity_id", "types", "attrs", "expected"),
    [
        ("urn:ngsi-ld:Vehicle:A456", [VEHICLE], None, True),
        ("urn:ngsi-ld:Vehicle:A456", [VEHICLE], [SPEED], True),
        ("urn:ngsi-ld:Vehicle:A456", [VEHICLE], [V + "colour"], False),
        ("urn:ngsi-ld:Vehicle:B1", [VEHICLE], None, False),
        (None, [VEHICLE], [PARKED], True),  # a query by type: the id is not known
        ("urn:ngsi-ld:OffStreetParking:downtown", [PARKING], [V + "anything"], True),
        ("urn:ngsi-ld:OffStreetParking:uptown", [PARKING], None, False),
        ("urn:ngsi-ld:OffStreetParking:downtown", [VEHICLE], None, False),
        ("urn:ngsi-ld:OffStreetParking:downtown", None, None, True),  # types unknown
    ],
)
def test_covers(
    entity_id: str | None, types: list[str] | None, attrs: list[str] | None, expected: bool
) -> None:
    assert _registration().covers(entity_id, types, attrs) is expected


def test_registered_attrs() -> None:
    reg = _registration()
    assert reg.registered_attrs("urn:ngsi-ld:Vehicle:A456", [VEHICLE]) == {SPEED, BRAND, PARKED}
    assert reg.registered_attrs("urn:ngsi-ld:OffStreetParking:downtown", [PARKING]) is None
    assert reg.registered_attrs("urn:ngsi-ld:Other:1", [V + "Other"]) == frozenset()


def test_no_entities_covers_every_entity() -> None:
    reg = _registration(information=(RegistrationInfo(property_names=(SPEED,)),))
    assert reg.covers("urn:x:1", [V + "Any"], [SPEED])
    assert not reg.covers("urn:x:1", [V + "Any"], [BRAND])


def test_overlaps_needs_a_common_id_and_attribute() -> None:
    a = _registration(mode="exclusive")
    same = _registration(id="urn:r:2", mode="exclusive")
    other_attr = _registration(
        id="urn:r:3",
        information=(
            RegistrationInfo(
                entities=(EntityInfo(id="urn:ngsi-ld:Vehicle:A456"),), property_names=(V + "x",)
            ),
        ),
    )
    other_id = _registration(
        id="urn:r:4",
        information=(
            RegistrationInfo(
                entities=(EntityInfo(id="urn:ngsi-ld:Vehicle:B"),), property_names=(SPEED,)
            ),
        ),
    )
    assert a.overlaps(same) and same.overlaps(a)
    assert not a.overlaps(other_attr)
    assert not a.overlaps(other_id)


def test_time_interval_overlap() -> None:
    interval = TimeInterval("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    jan15 = datetime(2026, 1, 15, tzinfo=UTC)
    mar = datetime(2026, 3, 1, tzinfo=UTC)
    assert interval.overlaps(jan15, None)
    assert not interval.overlaps(mar, None)
    assert interval.overlaps(datetime(2025, 12, 1, tzinfo=UTC), jan15)
    assert TimeInterval("2026-01-01T00:00:00Z").overlaps(mar, None)


def test_expired() -> None:
    reg = _registration(expires_at="2026-01-01T00:00:00Z")
    assert reg.expired(datetime(2026, 1, 2, tzinfo=UTC))
    assert not reg.expired(datetime(2025, 12, 31, tzinfo=UTC))
    assert not _registration().expired(datetime(2100, 1, 1, tzinfo=UTC))


def test_doc_round_trip() -> None:
    reg = _registration(
        mode="redirect",
        operations_asked=("queryEntity", "updateOps"),
        registration_name="Saga City",
        description="the city broker",
        tenant="saga",
        context_source_info=(("Authorization", "Bearer x"),),
        scope=("/Saga/Flood",),
        location={"type": "Point", "coordinates": [130.3, 33.26]},
        observation_interval=TimeInterval("2026-01-01T00:00:00Z"),
        management_interval=TimeInterval("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        expires_at="2030-01-01T00:00:00Z",
        refresh_rate="PT1M",
        management=Management(local_only=True, timeout=500),
        properties={V + "sourceType": {"type": "Property", "value": "sensor"}},
        context=("https://example.org/context.jsonld",),
        created_at="2026-12-01T16:00:00Z",
        status=Status(status="ok", times_sent=3),
    )
    doc = reg.to_doc()
    assert doc["operations"] == ["queryEntity", "updateOps"]
    assert doc["information"][1]["entities"] == [{"idPattern": ".*downtown$", "type": [PARKING]}]
    assert Registration.from_doc(doc) == reg
