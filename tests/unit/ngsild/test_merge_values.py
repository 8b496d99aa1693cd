"""JSON object values: replaced by Partial Attribute Update (§5.6.4), merge-patched (IETF RFC
7396) by Merge Entity (§5.6.17) — docs/interoperability.md."""

from __future__ import annotations

import copy
from typing import Any

from city_os.ngsild import merge

NOW = "2026-12-01T00:00:00Z"
IRI = "https://example.org/address"


def stored() -> dict[str, list[dict[str, Any]]]:
    return {
        IRI: [
            {
                "type": "Property",
                "value": {"street": "本町", "postalCode": "840-0041", "city": "佐賀市"},
                "https://example.org/source": {"type": "Property", "value": {"a": 1, "b": 2}},
            }
        ]
    }


def test_partial_attribute_update_replaces_object_values() -> None:
    attrs = stored()
    patch = {
        "type": "Property",
        "value": {"street": "駅前"},
        "https://example.org/source": {"type": "Property", "value": {"a": 3}},
    }
    assert merge.partial_update(attrs, IRI, patch, NOW)
    inst = attrs[IRI][0]
    assert inst["value"] == {"street": "駅前"}
    assert inst["https://example.org/source"]["value"] == {"a": 3}


def test_partial_attribute_update_keeps_members_not_given() -> None:
    attrs = stored()
    before = copy.deepcopy(attrs[IRI][0])
    assert merge.partial_update(attrs, IRI, {"unitCode": "X"}, NOW)
    inst = attrs[IRI][0]
    assert inst["value"] == before["value"] and inst["unitCode"] == "X"
    assert inst["https://example.org/source"] == before["https://example.org/source"]


def test_merge_entity_merge_patches_object_values() -> None:
    attrs = stored()
    fragment = {IRI: [{"type": "Property", "value": {"street": "駅前", "postalCode": None}}]}
    assert merge.merge_patch(attrs, fragment, NOW) == [IRI]
    assert attrs[IRI][0]["value"] == {"street": "駅前", "city": "佐賀市"}


def test_merge_instance_flag() -> None:
    old = stored()[IRI][0]
    patch = {"value": {"street": "駅前"}}
    assert merge.merge_instance(old, patch, NOW)["value"] == {
        "street": "駅前",
        "postalCode": "840-0041",
        "city": "佐賀市",
    }
    assert merge.merge_instance(old, patch, NOW, merge_values=False)["value"] == {"street": "駅前"}
