"""federation/temporal_merge.py: temporal entities from several places, merged by mode."""

from __future__ import annotations

from typing import Any

from city_os.federation.temporal_merge import Part, merge_temporal

T = [f"2026-07-0{d}T00:00:00Z" for d in range(1, 8)]


def inst(value: Any, at: str, iid: str | None = None, **more: Any) -> dict[str, Any]:
    out = {"type": "Property", "value": value, "observedAt": at, **more}
    if iid is not None:
        out["instanceId"] = iid
    return out


def entity(**attrs: Any) -> dict[str, Any]:
    return {"id": "urn:x", "type": "Shelter", **attrs}


def test_inclusive_union_in_time_order_dedup_by_instance_id_then_last_n() -> None:
    local = Part(entity(c=[inst(1, T[0], "i1"), inst(3, T[2], "i3")]))
    remote = Part(entity(c=[inst(2, T[1], "i2"), inst(3, T[2], "i3")]), "inclusive")
    merged = merge_temporal([local, remote])
    assert [i["value"] for i in merged["c"]] == [1, 2, 3]
    merged = merge_temporal([local, remote], last_n=2)
    assert [i["value"] for i in merged["c"]] == [2, 3]


def test_owner_replaces_local_instances_even_when_it_sent_none() -> None:
    local = Part(entity(c=[inst(1, T[0])], n=[inst("a", T[0])]))
    owner = Part(entity(c=[inst(9, T[3])]), "exclusive", frozenset({"c", "f"}), owner=True)
    empty_owner = Part(entity(), "redirect", frozenset({"n"}), owner=True)
    merged = merge_temporal([local, owner, empty_owner])
    assert [i["value"] for i in merged["c"]] == [9]
    assert "n" not in merged


def test_auxiliary_only_where_nobody_else_has_instances() -> None:
    local = Part(entity(c=[inst(1, T[0])], e=[]))
    aux = Part(entity(c=[inst(5, T[5])], f=[inst(True, T[5])], e=[inst(0, T[1])]), "auxiliary")
    merged = merge_temporal([local, aux])
    assert [i["value"] for i in merged["c"]] == [1]
    assert [i["value"] for i in merged["f"]] == [True]
    assert [i["value"] for i in merged["e"]] == [0]  # local listed it empty


def test_temporal_values_merged_per_dataset_without_repeats() -> None:
    local = Part(entity(c={"type": "Property", "values": [[1, T[0]], [3, T[2]]]}))
    remote = Part(
        entity(
            c=[
                {"type": "Property", "values": [[2, T[1]], [3, T[2]]]},
                {"type": "Property", "datasetId": "urn:d", "values": [[7, T[4]]]},
            ],
            type=["Shelter", "Site"],
        ),
        "inclusive",
    )
    merged = merge_temporal([local, remote], last_n=2)
    assert merged["type"] == ["Shelter", "Site"]
    assert merged["c"] == [
        {"type": "Property", "values": [[2, T[1]], [3, T[2]]]},
        {"type": "Property", "datasetId": "urn:d", "values": [[7, T[4]]]},
    ]
