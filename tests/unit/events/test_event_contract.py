"""The event contract: what events/model.py builds matches schemas/events/entity-change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from city_os.events.consume import ChangeEvent, SeenIds, matches, parse
from city_os.events.model import attribute_changes, change_event, claim_check, subscription_event

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas/events/entity-change.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
LEVEL = "https://smartdatamodels.org/dataModel.Environment/waterLevel"
TYPE = "https://smartdatamodels.org/dataModel.Environment/WaterObserved"


def entity(level: float) -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:WaterObserved:1",
        "types": [TYPE],
        "scopes": None,
        "attrs": {LEVEL: [{"type": "Property", "value": level}]},
        "createdAt": "2026-01-01T00:00:00.000000Z",
        "modifiedAt": "2026-01-01T00:00:01.000000Z",
        "expiresAt": None,
    }


def event(kind: Any, before: float | None, after: float | None) -> dict[str, Any]:
    old = entity(before)["attrs"] if before is not None else None
    new = entity(after)["attrs"] if after is not None else None
    return change_event(
        kind=kind,
        tenant="saga",
        entity_id="urn:ngsi-ld:WaterObserved:1",
        types=[TYPE],
        changes=attribute_changes(old, new),
        entity=entity(after) if after is not None else None,
        time="2026-01-01T00:00:01.000000Z",
        source="http://127.0.0.1:1026",
    )["payload"]


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [
        ("created", None, 1.0),
        ("updated", 1.0, 2.0),
        ("replaced", 1.0, 3.0),
        ("deleted", 2.0, None),
        ("expired", 2.0, None),
        ("purged", 2.0, None),
    ],
)
def test_every_kind_matches_the_schema(
    kind: str, before: float | None, after: float | None
) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(event(kind, before, after))]
    assert not errors


def test_the_schema_refuses_a_broken_envelope() -> None:
    broken = event("created", None, 1.0)
    broken["type"] = "jp.city-os.entity.renamed"
    del broken["data"]["entityId"]
    assert len(list(VALIDATOR.iter_errors(broken))) == 2


def test_change_event_reads_back_for_consumers() -> None:
    parsed = ChangeEvent.from_envelope(event("updated", 1.0, 2.5))
    assert (parsed.kind, parsed.tenant, parsed.entity_id) == (
        "updated",
        "saga",
        "urn:ngsi-ld:WaterObserved:1",
    )
    assert parsed.value("waterLevel") == 2.5
    assert parsed.value(LEVEL) == 2.5
    assert parsed.value("flow") is None


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [("created", None, 1.0), ("updated", 1.0, 2.0), ("purged", 2.0, None)],
)
def test_a_claim_check_matches_the_schema_and_reads_back(
    kind: str, before: float | None, after: float | None
) -> None:
    full = event(kind, before, after)
    check = claim_check(full, "https://broker.example/")
    assert not [e.message for e in VALIDATOR.iter_errors(check)]
    assert {k: v for k, v in check.items() if k not in ("data", "dataref")} == {
        k: v for k, v in full.items() if k != "data"
    }
    omitted = ["entity"] if kind == "created" else ["changes", "entity"]  # what it left out
    assert check["data"] == {
        "tenant": "saga",
        "entityId": "urn:ngsi-ld:WaterObserved:1",
        "types": [TYPE],
        "omitted": omitted,
    }
    parsed = ChangeEvent.from_envelope(check)
    assert parsed.omitted == tuple(omitted)
    assert (parsed.changes, parsed.entity) == ({}, None)
    if kind == "purged":  # nothing left to read
        assert "dataref" not in check and parsed.dataref is None
    else:
        url = "https://broker.example/ngsi-ld/v1/entities/urn%3Angsi-ld%3AWaterObserved%3A1"
        assert check["dataref"] == parsed.dataref == url


def test_a_created_event_leaves_the_changes_to_its_entity() -> None:
    created = event("created", None, 1.0)
    assert created["cityosversion"] == "2"
    assert "changes" not in created["data"]
    assert created["data"]["entity"]["attrs"] == {LEVEL: [{"type": "Property", "value": 1.0}]}
    parsed = ChangeEvent.from_envelope(created)  # consumers read the same changes as before
    assert parsed.changes == {
        LEVEL: {"previous": None, "new": [{"type": "Property", "value": 1.0}]}
    }
    assert parsed.value("waterLevel") == 1.0
    with_changes = event("created", None, 1.0)
    with_changes["data"]["changes"] = attribute_changes(None, entity(1.0)["attrs"])
    assert [e.message for e in VALIDATOR.iter_errors(with_changes)]  # version 2 has none


def test_only_a_claim_check_may_leave_the_data_out() -> None:
    broken = event("updated", 1.0, 2.0)
    del broken["data"]["changes"]
    assert len(list(VALIDATOR.iter_errors(broken))) == 1


@pytest.mark.parametrize(
    ("types", "tenants", "kinds", "expected"),
    [
        (None, None, None, True),
        (["WaterObserved"], None, None, True),
        ([TYPE], ["saga"], ["updated"], True),
        (["Alert"], None, None, False),
        (None, ["other"], None, False),
        (None, None, ["deleted"], False),
        (["Observed"], None, None, False),  # a suffix must be a whole segment
    ],
)
def test_filters(
    types: list[str] | None, tenants: list[str] | None, kinds: list[str] | None, expected: bool
) -> None:
    parsed = ChangeEvent.from_envelope(event("updated", 1.0, 2.5))
    assert matches(parsed, types, tenants, kinds) is expected


def test_seen_ids_is_bounded_and_forgets_the_oldest() -> None:
    seen = SeenIds(2)
    assert not seen.check("a")
    assert not seen.check("b")
    assert seen.check("a")  # a is now the most recent
    assert not seen.check("c")  # forgets b
    assert seen.check("a")
    assert not seen.check("b")


@pytest.mark.parametrize("raw", [b"", b"not json", b"{}", b'{"id": "x", "data": 1}', None])
def test_malformed_messages_parse_to_none(raw: bytes | None) -> None:
    assert parse(raw) is None


def test_the_example_consumer_reports_a_threshold_crossing_once() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "examples/alert_consumer.py"
    spec = importlib.util.spec_from_file_location("alert_consumer", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rising = ChangeEvent.from_envelope(event("updated", 2.0, 4.0))
    still_high = ChangeEvent.from_envelope(event("updated", 4.0, 5.0))
    assert "WATER LEVEL" in example.alert_line(rising, 3.0)
    assert example.alert_line(still_high, 3.0) is None


def test_a_removed_entity_keeps_its_system_members() -> None:
    before = entity(2.0)
    removed = change_event(
        kind="deleted",
        tenant="saga",
        entity_id=before["id"],
        types=[TYPE],
        changes=attribute_changes(before["attrs"], None),
        entity=before,
        time="2026-01-01T00:00:02.000000Z",
        source="http://127.0.0.1:1026",
    )["payload"]
    assert not [e.message for e in VALIDATOR.iter_errors(removed)]
    assert removed["data"]["entity"] is None
    assert removed["data"]["previous"] == {
        "createdAt": before["createdAt"],
        "modifiedAt": before["modifiedAt"],
        "scopes": None,
    }


SUBSCRIPTION_VALIDATOR = jsonschema.Draft202012Validator(
    json.loads(
        (
            Path(__file__).resolve().parents[3] / "schemas/events/subscription-change.schema.json"
        ).read_text()
    ),
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
)


@pytest.mark.parametrize("kind", ["created", "updated", "deleted"])
def test_subscription_events_match_their_schema(kind: Any) -> None:
    doc = None
    if kind != "deleted":
        doc = {
            "id": "urn:ngsi-ld:Subscription:1",
            "entities": [{"type": [[TYPE]]}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:18061/notify"}},
        }
    row = subscription_event(
        kind=kind,
        tenant="saga",
        subscription_id="urn:ngsi-ld:Subscription:1",
        subscription=doc,
        time="2026-01-01T00:00:02.000000Z",
        source="http://127.0.0.1:1026",
    )
    assert row["entity_id"] == "urn:ngsi-ld:Subscription:1"
    assert not [e.message for e in SUBSCRIPTION_VALIDATOR.iter_errors(row["payload"])]
    assert list(VALIDATOR.iter_errors(row["payload"]))  # not an entity change
