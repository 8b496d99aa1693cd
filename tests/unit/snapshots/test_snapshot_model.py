"""The Snapshot data type's checks (snapshots/model.py): members, read-only ones, the purge q."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.errors import BadRequestData
from city_os.snapshots.model import (
    as_record,
    new_snapshot,
    outcome,
    parse_clone,
    parse_create,
    parse_update,
    purge_selection,
    render,
)

QUERY = {"type": "Query", "entities": [{"type": "Vehicle"}]}


def test_create_keeps_the_queries_in_order() -> None:
    second = {**QUERY, "q": "speed>1"}
    body, queries = parse_create({"type": "Snapshot", "snapshotQueries": [QUERY, second]})
    assert queries == [QUERY, second] and body["type"] == "Snapshot"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "JSON object"),
        ({"snapshotQueries": [QUERY]}, '"type": "Snapshot"'),
        ({"type": "Snapshot"}, "non-empty array"),
        ({"type": "Snapshot", "snapshotQueries": [{"type": "TemporalQuery"}]}, '"type": "Query"'),
        ({"type": "Snapshot", "snapshotQueries": [QUERY], "snapshotStatus": "x"}, "read-only"),
        ({"type": "Snapshot", "snapshotQueries": [QUERY], "colour": 1}, "not a member"),
        ({"type": "Snapshot", "snapshotQueries": [QUERY], "snapshotPriority": 0}, "positive"),
        ({"type": "Snapshot", "snapshotQueries": [QUERY], "snapshotPriority": True}, "positive"),
    ],
)
def test_bad_creates(body: Any, detail: str) -> None:
    with pytest.raises(BadRequestData, match=detail):
        parse_create(body)


def test_only_the_priority_changes() -> None:
    assert parse_update({"snapshotPriority": 3}) == 3
    for fragment in ({"snapshotQueries": []}, {"lastUsedAt": "x"}, {}, {"id": "urn:x:1"}):
        with pytest.raises(BadRequestData):
            parse_update(fragment)
    assert parse_clone(None) == {}
    assert parse_clone({"type": "Snapshot", "snapshotPriority": 9}) == {
        "type": "Snapshot",
        "snapshotPriority": 9,
    }


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["success", "success"], "success"),
        (["success", "empty"], "partial"),
        (["failed", "success"], "partial"),
        (["empty"], "failed"),
        ([], "failed"),
    ],
)
def test_outcome(statuses: list[str], expected: str) -> None:
    assert outcome([{"resultStatus": s} for s in statuses]) == expected


def test_purge_q_over_snapshot_members_only() -> None:
    low = as_record(new_snapshot("urn:ngsi-ld:Snapshot:1", [QUERY], 2, "2026-01-01T00:00:00Z"))
    high = as_record(new_snapshot("urn:ngsi-ld:Snapshot:2", [QUERY], 9, "2026-01-01T00:00:00Z"))
    selection = purge_selection("snapshotPriority<5")
    assert selection.matches(low) and not selection.matches(high)
    assert purge_selection("snapshotStatus==preparing").matches(high)
    for q in ("speed>50", "snapshotPriority.x>1", None, " "):
        with pytest.raises(BadRequestData):
            purge_selection(q)


def test_system_members_only_with_sys_attrs() -> None:
    doc = new_snapshot("urn:ngsi-ld:Snapshot:1", [QUERY], 5, "2026-01-01T00:00:00Z")
    assert "createdAt" not in render(doc, False) and "lastUsedAt" in render(doc, False)
    assert render(doc, True)["modifiedAt"] == "2026-01-01T00:00:00Z"
