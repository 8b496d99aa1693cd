"""TermMap answers must equal pyld's full expand/compact on a corpus of NGSI-LD entities.

These tests also pin the pyld internals TermMap relies on: an upgrade that changes them fails here.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pyld import jsonld

from city_os.core.contexts import bundled_documents
from city_os.errors import BadRequestData
from city_os.ngsild.jsonld import (
    CORE_CONTEXT_URL,
    NGSI_LD,
    MissingContextDocument,
    TermMap,
    canonical_context,
    is_core_context_url,
)

EX = "http://example.org/"
PARKING_URL = "https://fixtures.example/ctx/parking.jsonld"
VEHICLE_URL = "https://fixtures.example/ctx/vehicle.jsonld"
COMMON_URL = "https://fixtures.example/ctx/common.jsonld"

DOCUMENTS: dict[str, Any] = {
    **bundled_documents(),
    PARKING_URL: {
        "@context": {
            "sdm": "https://smartdatamodels.org/",
            "OffStreetParking": "sdm:dataModel.Parking/OffStreetParking",
            "availableSpotNumber": "sdm:dataModel.Parking/availableSpotNumber",
            "totalSpotNumber": "sdm:dataModel.Parking/totalSpotNumber",
            "brandName": "https://schema.org/brand",
        }
    },
    # A document whose @context is itself an array naming another URL (nested resolution).
    VEHICLE_URL: {
        "@context": [
            COMMON_URL,
            {
                "Vehicle": "http://example.org/vehicle/Vehicle",
                "speed": "http://example.org/vehicle/speed",
                "owner": {"@id": "http://example.org/vehicle/owner", "@type": "@id"},
            },
        ]
    },
    COMMON_URL: {"@context": {"ex": EX, "colour": "ex:colour"}},
}


def _loader(url: str, options: object = None) -> dict[str, Any]:
    name = CORE_CONTEXT_URL if is_core_context_url(url) else url
    return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(DOCUMENTS[name])}


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def _rel(target: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": target, **extra}


POINT = {"type": "Point", "coordinates": [13.38, 52.51]}

# (id, request @context, entity attributes and type); ids are urn:ngsi-ld:T:<id>.
FIXTURES: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "core-only",
        None,
        {
            "type": "Building",
            "temperature": _prop(21.5, unitCode="CEL", observedAt="2024-01-01T00:00:00Z"),
            "location": {"type": "GeoProperty", "value": POINT},
            "isPartOf": _rel("urn:ngsi-ld:Campus:1"),
        },
    ),
    (
        "multiple-types",
        None,
        {"type": ["Building", "Shop"], "name": _prop("Kaufhaus")},
    ),
    (
        "user-terms-inline",
        [
            {
                "brandName": "https://schema.org/brand",
                "Car": "https://schema.org/Car",
                "wheels": "https://schema.org/numberOfWheels",
            }
        ],
        {"type": "Car", "brandName": _prop("Mercedes"), "wheels": _prop(4)},
    ),
    (
        "compact-iris",
        {"ex": EX},
        {"type": "ex:Thing", "ex:foo": _prop(1), "ex:bar": _rel("urn:ngsi-ld:Thing:2")},
    ),
    (
        "absolute-iri-names",
        None,
        {
            "type": "http://example.org/types/Car",
            "http://example.org/speed": _prop(80),
            "https://schema.org/name": _prop("x"),
        },
    ),
    (
        "fall-to-core-vocab",
        [{"brandName": "https://schema.org/brand"}],
        {"type": "Sensor", "unmappedThing": _prop(True), "brandName": _prop("b")},
    ),
    (
        "user-vocab-overridden-by-core",
        [{"@vocab": "http://example.org/vocab#", "mapped": "http://example.org/mapped"}],
        {"type": "Widget", "size": _prop(3), "mapped": _prop("m")},
    ),
    (
        "type-id-coercion",
        [{"ex": EX, "owner": {"@id": "http://example.org/owner", "@type": "@id"}}],
        {"type": "ex:Car", "owner": _rel("urn:ngsi-ld:Person:1")},
    ),
    (
        "type-vocab-coercion-term",
        # A node-object value cannot select a term coerced to @vocab: compaction falls to ex:kind.
        [{"ex": EX, "kind": {"@id": "http://example.org/kind", "@type": "@vocab"}}],
        {"type": "Thing", "kind": _prop("a")},
    ),
    (
        "term-also-core-term",
        [{"location": "http://example.org/myLocation", "name": "http://example.org/name"}],
        {
            "type": "Place",
            "location": {"type": "GeoProperty", "value": POINT},
            "name": _prop("n"),
        },
    ),
    (
        "language-property",
        None,
        {
            "type": "Street",
            "street": {"type": "LanguageProperty", "languageMap": {"en": "Main", "de": "Haupt"}},
        },
    ),
    (
        "vocab-property",
        [{"ex": EX, "Residential": "http://example.org/categories/Residential"}],
        {
            "type": "Building",
            "category": {"type": "VocabProperty", "vocab": "Residential"},
            "usage": {"type": "VocabProperty", "vocab": "ex:Industrial"},
            "zone": {"type": "VocabProperty", "vocab": "Commercial"},
        },
    ),
    (
        "json-property",
        None,
        {"type": "Device", "config": {"type": "JsonProperty", "json": {"a": 1, "b": [1, 2]}}},
    ),
    (
        "list-property",
        None,
        {"type": "Device", "readings": {"type": "ListProperty", "valueList": [1, 2, 3]}},
    ),
    (
        "sub-properties",
        [{"ex": EX, "accuracy": "ex:accuracy"}],
        {
            "type": "Sensor",
            "temperature": _prop(
                20,
                accuracy=_prop(0.5),
                providedBy=_rel("urn:ngsi-ld:Device:1"),
                **{"ex:calibrated": _prop(True)},
            ),
        },
    ),
    (
        "document-url",
        PARKING_URL,
        {
            "type": "OffStreetParking",
            "availableSpotNumber": _prop(12),
            "totalSpotNumber": _prop(100),
            "brandName": _prop("ACME"),
            "location": {"type": "GeoProperty", "value": POINT},
        },
    ),
    (
        "nested-document-urls",
        [VEHICLE_URL],
        {
            "type": ["Vehicle", "ex:Car"],
            "speed": _prop(50),
            "colour": _prop("red"),
            "owner": _rel("urn:ngsi-ld:Person:9"),
        },
    ),
    (
        "url-and-inline-and-versioned-core",
        [
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld",
            PARKING_URL,
            {"ex": EX, "brandName": "http://example.org/brandOverride"},
        ],
        {"type": "OffStreetParking", "brandName": _prop("x"), "ex:note": _prop("y")},
    ),
    (
        "multi-attribute-dataset-ids",
        None,
        {
            "type": "Sensor",
            "speed": [
                _prop(1, datasetId="urn:ngsi-ld:Dataset:a"),
                _prop(2, datasetId="urn:ngsi-ld:Dataset:b"),
            ],
        },
    ),
    (
        "core-geo-and-temporal-terms",
        None,
        {
            "type": "Drone",
            "observationSpace": {"type": "GeoProperty", "value": POINT},
            "operationSpace": {"type": "GeoProperty", "value": POINT},
            "status": _prop("ok", observedAt="2024-05-01T10:00:00Z"),
        },
    ),
    (
        "set-container-term",
        [{"tags": {"@id": "http://example.org/tags", "@container": "@set"}}],
        {"type": "Thing", "tags": _prop("t")},
    ),
]

ENTITY_KEYS = {"id", "type", "@context"}
NODE_KEYS = {"type", "value", "object", "languageMap", "vocab", "json", "valueList"}
NODE_KEYS |= {"datasetId", "observedAt", "unitCode", "createdAt", "modifiedAt"}


def _pyld_expand(entity: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    result = jsonld.expand({**entity, "@context": items}, {"documentLoader": _loader})
    assert len(result) == 1
    node: dict[str, Any] = result[0]
    return node


def _pyld_compact(expanded: dict[str, Any], context: Any) -> dict[str, Any]:
    result: dict[str, Any] = jsonld.compact(expanded, context, {"documentLoader": _loader})
    return result


def _attribute_nodes(value: Any) -> list[dict[str, Any]]:
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]


def _sub_attribute_keys(node: dict[str, Any]) -> list[str]:
    return [k for k in node if k not in NODE_KEYS]


def _types(entity: dict[str, Any]) -> list[str]:
    types = entity["type"]
    return types if isinstance(types, list) else [types]


@pytest.fixture(scope="module")
def term_maps() -> dict[str, TermMap]:
    return {name: TermMap(context, DOCUMENTS) for name, context, _ in FIXTURES}


@pytest.mark.parametrize(("name", "context", "attrs"), FIXTURES, ids=[f[0] for f in FIXTURES])
def test_expansion_equals_pyld(
    name: str, context: Any, attrs: dict[str, Any], term_maps: dict[str, TermMap]
) -> None:
    tm = term_maps[name]
    entity = {"id": f"urn:ngsi-ld:T:{name}", **attrs}
    expanded = _pyld_expand(entity, canonical_context(context))

    keys = {k for k in entity if k not in ENTITY_KEYS}
    assert {tm.expand_attr(k) for k in keys} == set(expanded) - {"@id", "@type"}
    assert [tm.expand_type(t) for t in _types(entity)] == expanded["@type"]
    assert tm.expand_attr("id") == "@id"
    assert tm.expand_attr("type") == "@type"

    for key in keys:
        iri = tm.expand_attr(key)
        assert iri is not None
        for node, expanded_node in zip(_attribute_nodes(entity[key]), expanded[iri], strict=True):
            subs = _sub_attribute_keys(node)
            members = {tm.expand_attr(k) for k in NODE_KEYS}
            assert {tm.expand_attr(s) for s in subs} == set(expanded_node) - members
            if "vocab" in node:
                assert expanded_node[NGSI_LD + "hasVocab"] == [
                    {"@id": tm.expand_vocab_value(node["vocab"])}
                ]


@pytest.mark.parametrize(("name", "context", "attrs"), FIXTURES, ids=[f[0] for f in FIXTURES])
def test_compaction_equals_pyld(
    name: str, context: Any, attrs: dict[str, Any], term_maps: dict[str, TermMap]
) -> None:
    tm = term_maps[name]
    entity = {"id": f"urn:ngsi-ld:T:{name}", **attrs}
    expanded = _pyld_expand(entity, canonical_context(context))
    compacted = _pyld_compact(expanded, tm.context_value)

    iris = [k for k in expanded if k not in ("@id", "@type")]
    assert {tm.compact_attr(iri) for iri in iris} == set(compacted) - ENTITY_KEYS
    compacted_types = (
        compacted["type"] if isinstance(compacted["type"], list) else [compacted["type"]]
    )
    assert [tm.compact_type(t) for t in expanded["@type"]] == compacted_types

    for iri in iris:
        key = tm.compact_attr(iri)
        assert tm.expand_attr(key) == iri
        for expanded_node, node in zip(
            expanded[iri], _attribute_nodes(compacted[key]), strict=True
        ):
            members = {tm.expand_attr(k) for k in NODE_KEYS}
            subs = [k for k in expanded_node if k not in members]
            assert {tm.compact_attr(s) for s in subs} == set(node) - NODE_KEYS
            if NGSI_LD + "hasVocab" in expanded_node:
                (vocab,) = expanded_node[NGSI_LD + "hasVocab"]
                assert tm.compact_vocab_value(vocab["@id"]) == node["vocab"]


def test_compaction_of_core_iris_gives_core_terms() -> None:
    tm = TermMap([{"location": "http://example.org/myLocation"}], DOCUMENTS)
    assert tm.compact_attr(NGSI_LD + "location") == "location"
    assert tm.compact_attr("http://example.org/myLocation") == "http://example.org/myLocation"
    assert tm.compact_attr(NGSI_LD + "default-context/speed") == "speed"
    assert tm.compact_type(NGSI_LD + "default-context/Building") == "Building"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.10.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.1.jsonld", True),
        ("http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/ngsi-ld-core-context-v1.8.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/ngsi-ld-core-context.jsonld", True),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld", False),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.jsonld", False),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.json", False),
        ("https://example.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", False),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld?x=1", False),
        ("ftp://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", False),
    ],
)
def test_is_core_context_url(url: str, expected: bool) -> None:
    assert is_core_context_url(url) is expected


@pytest.mark.parametrize(
    ("context", "value"),
    [
        (None, CORE_CONTEXT_URL),
        (CORE_CONTEXT_URL, CORE_CONTEXT_URL),
        ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", CORE_CONTEXT_URL),
        (PARKING_URL, [PARKING_URL, CORE_CONTEXT_URL]),
        ([CORE_CONTEXT_URL, PARKING_URL], [PARKING_URL, CORE_CONTEXT_URL]),
        ({"ex": EX}, [{"ex": EX}, CORE_CONTEXT_URL]),
    ],
)
def test_core_is_processed_last_and_context_value(context: Any, value: Any) -> None:
    tm = TermMap(context, DOCUMENTS)
    assert tm.context_value == value
    assert tm.items[-1] == CORE_CONTEXT_URL


def test_key_is_stable_and_hashable() -> None:
    a = TermMap([{"b": "http://x/b", "a": "http://x/a"}], DOCUMENTS)
    b = TermMap([{"a": "http://x/a", "b": "http://x/b"}, CORE_CONTEXT_URL], DOCUMENTS)
    assert a.key == b.key
    assert hash(a.key) == hash(b.key)
    assert TermMap(PARKING_URL, DOCUMENTS).key != a.key


def test_urls_lists_documents_used() -> None:
    tm = TermMap(VEHICLE_URL, DOCUMENTS)
    assert {VEHICLE_URL, COMMON_URL, CORE_CONTEXT_URL} <= tm.urls


def test_missing_document_is_reported_by_url() -> None:
    with pytest.raises(MissingContextDocument) as caught:
        TermMap(["https://fixtures.example/unknown.jsonld"], DOCUMENTS)
    assert caught.value.url == "https://fixtures.example/unknown.jsonld"


@pytest.mark.parametrize(
    "context",
    [
        5,
        [5],
        [{"x": "not an iri"}],
        [{"x": {"@id": "http://x/x", "@type": "notaniri"}}],
        [{"@vocab": 5}],
        ["not a uri"],
        [{"@import": "relative.jsonld"}],
    ],
)
def test_invalid_context_is_bad_request_data(context: Any) -> None:
    with pytest.raises(BadRequestData) as caught:
        TermMap(context, DOCUMENTS)
    assert caught.value.detail.startswith("Invalid @context")


def test_repeated_lookups_hit_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    tm = TermMap({"ex": EX}, DOCUMENTS)
    processor = tm._processor
    calls: list[str] = []
    expand_iri, compact_iri = processor._expand_iri, processor._compact_iri

    def counting_expand(*args: Any, **kwargs: Any) -> Any:
        calls.append("expand")
        return expand_iri(*args, **kwargs)

    def counting_compact(*args: Any, **kwargs: Any) -> Any:
        calls.append("compact")
        return compact_iri(*args, **kwargs)

    monkeypatch.setattr(processor, "_expand_iri", counting_expand)
    monkeypatch.setattr(processor, "_compact_iri", counting_compact)
    for _ in range(3):
        assert tm.expand_attr("ex:speed") == EX + "speed"
        assert tm.expand_type("Car") == NGSI_LD + "default-context/Car"
        assert tm.expand_vocab_value("ex:Blue") == EX + "Blue"
        assert tm.compact_attr(EX + "speed") == "ex:speed"
        assert tm.compact_type(NGSI_LD + "default-context/Car") == "Car"
        assert tm.compact_vocab_value(EX + "Blue") == "ex:Blue"
    assert calls == ["expand"] * 3 + ["compact"] * 3
    assert len(tm._attr_expanded) == 1
    assert len(tm._attr_compacted) == 1


def test_an_attribute_named_like_a_core_member_keeps_its_name() -> None:
    """An attribute called ``vocab`` expands to the core ngsi-ld:hasVocab; pyld would compact
    it to that compact IRI (the core term's @vocab coercion does not fit an attribute node),
    the client named it ``vocab`` (ETSI 422_08_01)."""
    tm = TermMap([], DOCUMENTS)
    assert tm.expand_attr("vocab") == NGSI_LD + "hasVocab"
    assert tm.compact_attr(NGSI_LD + "hasVocab") == "vocab"
    assert tm.compact_attr(NGSI_LD + "hasJSON") == "json"
