"""Pure validation core: formats, offline $refs, schema checks, violation pointers."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from city_os.errors import BadRequestData
from city_os.registry.validation import (
    SchemaValidator,
    ValidatorCache,
    Violation,
    check_schema,
    load_bundled,
)

SDM_COMMON = "https://smart-data-models.github.io/data-models/common-schema.json"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def pointers(schema: dict[str, Any], doc: Any) -> list[tuple[str, str]]:
    return [(v.pointer, v.keyword) for v in SchemaValidator(schema).validate(doc)]


def fmt(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"v": {"type": "string", "format": name}}}


@pytest.mark.parametrize(
    ("format_name", "value", "valid"),
    [
        ("time", "11:00:00", True),  # Smart Data Models: local time without offset
        ("time", "11:00:00.250", True),
        ("time", "11:00:00Z", True),
        ("time", "11:00:00+09:00", True),
        ("time", "23:59:60Z", True),  # leap second
        ("time", "24:00:00", False),
        ("time", "11:60:00", False),
        ("time", "11:00", False),
        ("time", "11:00:00+9", False),
        ("time", "noon", False),
        ("date-time", "2016-11-30T07:00:00", True),  # no offset: accepted
        ("date-time", "2016-11-30T07:00:00.00Z", True),
        ("date-time", "2016-11-30t07:00:00+09:00", True),
        ("date-time", "2016-11-30 07:00:00Z", True),
        ("date-time", "2016-12-31T23:59:60Z", True),
        ("date-time", "2016-13-30T07:00:00Z", False),
        ("date-time", "2016-02-30T07:00:00", False),
        ("date-time", "2016-11-30", False),
        ("date-time", "2016-11-30T07:00", False),
        ("date-time", "yesterday", False),
        ("date", "2024-02-29", True),
        ("date", "2023-02-29", False),
        ("date", "2024-2-9", False),
        ("uri", "https://city-os.jp/x", True),
        ("uri", "urn:ngsi-ld:EvacuationSite:E4120100001201", True),
        ("uri", "not a uri", False),
        ("email", "info@example.jp", True),
        ("email", "info.example.jp", False),
        ("ipv4", "192.168.0.1", True),
        ("ipv4", "999.1.1.1", False),
    ],
)
def test_format_checking(format_name: str, value: str, valid: bool) -> None:
    expected = [] if valid else [("/v", "format")]
    assert pointers(fmt(format_name), {"v": value}) == expected


def test_format_ignores_non_strings() -> None:
    assert pointers({"format": "date-time"}, 12) == []


def test_offline_ref_to_smart_data_models_common_schema() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [
            {"$ref": f"{SDM_COMMON}#/definitions/GSMA-Commons"},
            {"$ref": f"{SDM_COMMON}#/definitions/Location-Commons"},
        ],
    }
    check_schema(schema)
    doc = {"id": "urn:ngsi-ld:Thing:1", "location": {"type": "Point", "coordinates": ["x", 33]}}
    assert pointers(schema, doc) == [("/location/coordinates/0", "type")]
    assert pointers(schema, {"dateModified": "2016-11-30T07:00:00"}) == []


def test_offline_ref_through_a_subject_schema_to_the_common_schema() -> None:
    # agrifood-schema.json itself $refs common-schema.json: resolved offline too
    check_schema(
        {"$ref": "https://smart-data-models.github.io/dataModel.Agrifood/agrifood-schema.json"}
    )


def test_gtfs_schema_with_unknown_dialect_is_usable() -> None:
    # gtfs-schema.json declares "$schema": "http://json-schema.org/schema#"
    check_schema(
        {"$ref": "https://smart-data-models.github.io/dataModel.UrbanMobility/gtfs-schema.json"}
    )


def test_unknown_remote_ref_is_rejected_at_registration() -> None:
    schema = {"properties": {"a": {"$ref": "https://example.org/schemas/unknown.json#/x"}}}
    with pytest.raises(BadRequestData) as err:
        check_schema(schema)
    assert "https://example.org/schemas/unknown.json#/x" in err.value.detail
    with pytest.raises(BadRequestData):
        SchemaValidator(schema)


def test_ref_to_missing_definition_in_known_schema_is_rejected() -> None:
    with pytest.raises(BadRequestData) as err:
        check_schema({"$ref": f"{SDM_COMMON}#/definitions/NoSuchThing"})
    assert "NoSuchThing" in err.value.detail


def test_local_refs_resolve() -> None:
    schema = {
        "$defs": {"pos": {"type": "integer", "minimum": 0}},
        "properties": {"a": {"$ref": "#/$defs/pos"}},
    }
    assert pointers(schema, {"a": -1}) == [("/a", "minimum")]
    with pytest.raises(BadRequestData):
        check_schema({"properties": {"a": {"$ref": "#/$defs/missing"}}})


def test_draft_07_schema() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"n": {"type": "number"}},
        "properties": {"a": {"$ref": "#/definitions/n"}, "b": {"type": "string", "format": "time"}},
    }
    assert pointers(schema, {"a": "x", "b": "10:00:00"}) == [("/a", "type")]


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "strin"}, "/type"),
        ({"properties": {"a": {"minimum": "0"}}}, "/properties/a/minimum"),
        ({"pattern": "(unclosed"}, "pattern"),
        ({"$schema": "http://json-schema.org/schema#"}, "Unsupported $schema"),
        ({"$schema": "https://example.org/my-dialect"}, "Unsupported $schema"),
    ],
)
def test_invalid_schema_is_bad_request_data(schema: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadRequestData) as err:
        check_schema(schema)
    assert fragment in err.value.detail
    assert err.value.status == 400


def test_non_object_schema_is_rejected() -> None:
    with pytest.raises(BadRequestData):
        check_schema([])  # type: ignore[arg-type]


def test_all_violations_sorted_by_pointer_with_numeric_indexes() -> None:
    schema = {
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "z": {"type": "string"},
            "a": {"type": "array", "items": {"type": "integer"}},
            "m": {"type": "object", "properties": {"b~/c": {"type": "boolean"}}},
        },
    }
    doc = {"z": 1, "a": [0, 1, "2", 3, 4, 5, 6, 7, 8, 9, "10"], "m": {"b~/c": "yes"}}
    assert SchemaValidator(schema).validate(doc) == [
        Violation("/a/2", "'2' is not of type 'integer'", "type"),
        Violation("/a/10", "'10' is not of type 'integer'", "type"),
        Violation("/id", "'id' is a required property", "required"),
        Violation("/m/b~0~1c", "'yes' is not of type 'boolean'", "type"),
        Violation("/name", "'name' is a required property", "required"),
        Violation("/z", "1 is not of type 'string'", "type"),
    ]


def test_root_violation_has_empty_pointer() -> None:
    assert pointers({"type": "object"}, []) == [("", "type")]


def test_combinator_without_a_closer_branch_is_reported_as_is() -> None:
    schema = {"properties": {"id": {"anyOf": [{"type": "integer"}, {"format": "uri"}]}}}
    assert pointers(schema, {"id": "not a uri"}) == [("/id", "anyOf")]


def test_combinator_descends_into_the_single_closest_branch() -> None:
    schema = {
        "properties": {
            "v": {
                "oneOf": [
                    {"type": "object", "required": ["k"], "properties": {"k": {"const": "a"}}},
                    {"type": "string"},
                ]
            }
        }
    }
    assert pointers(schema, {"v": {"k": "b"}}) == [("/v/k", "const")]


def test_is_valid() -> None:
    validator = SchemaValidator({"required": ["id"]})
    assert validator.is_valid({"id": 1})
    assert not validator.is_valid({})


def test_validator_cache_compiles_once_and_evicts_least_recently_used() -> None:
    cache = ValidatorCache(maxsize=2)
    schema = {"type": "object"}
    first = cache.get(("t", "A", 1), schema)
    assert cache.get(("t", "A", 1), schema) is first
    cache.get(("t", "B", 1), schema)
    cache.get(("t", "A", 1), schema)  # A is now the most recent
    cache.get(("t", "C", 1), schema)  # evicts B
    assert len(cache) == 2
    assert cache.get(("t", "A", 1), schema) is first


def test_load_bundled_reads_every_model() -> None:
    models = {m.type_name: m for m in load_bundled()}
    assert "common" not in models
    site = models["EvacuationSite"]
    assert site.schema["properties"]["type"]["enum"] == ["EvacuationSite"]
    assert "hazardFlood" in site.context["@context"]
    assert "example.json" in site.examples


def test_every_bundled_schema_has_the_fast_validator() -> None:
    """The write path's speed relies on the compiled Rust validator for every bundled model;
    the crafted invalid documents of test_bundled_schemas go through it too."""
    from city_os.registry.validation import SchemaValidator, load_bundled

    for model in load_bundled():
        validator = SchemaValidator(model.schema)
        assert validator._fast is not None, model.type_name
        for doc in model.examples.values():
            assert validator._fast.is_valid(doc), model.type_name
