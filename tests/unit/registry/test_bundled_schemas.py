"""The bundled models in ``schemas/``: valid schemas, valid examples, the Saga City open data
passing through the connector, and crafted invalid documents rejected at the right pointers."""

from __future__ import annotations

import copy
import csv
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import city_os
from city_os.registry.validation import (
    BundledModel,
    SchemaValidator,
    check_schema,
    load_bundled,
)
from connectors import saga_opendata

DERIVED = [
    "AgriParcel", "Alert", "Building", "Device", "DeviceMeasurement", "FloodMonitoring", "Garden",
    "GtfsStop", "IssueReporting", "PointOfInterest", "Vehicle", "WaterObserved", "WeatherObserved",
]  # fmt: skip
JAPANESE = ["AED", "ChildcareFacility", "DisasterReport", "EvacuationShelter", "EvacuationSite"]
CORE_CONTEXT = Path(city_os.__file__).parent / "contexts"
DELETE = object()


@cache
def models() -> dict[str, BundledModel]:
    return {m.type_name: m for m in load_bundled()}


@cache
def validator(type_name: str) -> SchemaValidator:
    return SchemaValidator(models()[type_name].schema)


@cache
def core_terms() -> frozenset[str]:
    with (CORE_CONTEXT / "ngsi-ld-core-context-v1.9.jsonld").open() as f:
        return frozenset(json.load(f)["@context"])


def test_exactly_the_expected_models_are_bundled() -> None:
    assert sorted(models()) == sorted(DERIVED + JAPANESE)


@pytest.mark.parametrize("type_name", DERIVED + JAPANESE)
def test_schema_is_valid_and_resolves_offline(type_name: str) -> None:
    schema = models()[type_name].schema
    check_schema(schema)
    assert schema["description"] and schema["x-description-ja"]
    assert "CC BY 4.0" in schema["$comment"]


@pytest.mark.parametrize("type_name", DERIVED)
def test_derived_schema_keeps_upstream_id_and_attribution(type_name: str) -> None:
    schema = models()[type_name].schema
    assert schema["$id"].startswith("https://smart-data-models.github.io/")
    assert "Smart Data Models" in schema["$comment"] and schema["$id"] in schema["$comment"]
    assert (models()[type_name].path / "NOTICE.md").is_file()


@pytest.mark.parametrize("type_name", JAPANESE)
def test_japanese_schema_describes_every_property_in_both_languages(type_name: str) -> None:
    schema = models()[type_name].schema
    assert schema["properties"]["type"]["enum"] == [type_name]
    for name, prop in schema["properties"].items():
        assert prop.get("description") and prop.get("x-description-ja"), name


@pytest.mark.parametrize("type_name", DERIVED + JAPANESE)
def test_wrong_type_is_rejected(type_name: str) -> None:
    doc = {**first_example(type_name), "type": "NotThisType"}
    assert [(v.pointer, v.keyword) for v in validator(type_name).validate(doc)] == [
        ("/type", "enum")
    ]


@pytest.mark.parametrize(
    ("type_name", "example"),
    [(m.type_name, name) for m in load_bundled() for name in m.examples],
)
def test_bundled_example_validates(type_name: str, example: str) -> None:
    assert validator(type_name).validate(models()[type_name].examples[example]) == []


@pytest.mark.parametrize("type_name", DERIVED + JAPANESE)
def test_every_example_attribute_is_a_term_of_the_model_context(type_name: str) -> None:
    model = models()[type_name]
    terms = set(model.context["@context"]) | core_terms()
    assert type_name in model.context["@context"]
    for name, example in model.examples.items():
        missing = set(example) - terms - {"@context"}
        # upstream's own context lacks the Vehicle leasing terms (see schemas/README.md)
        if type_name == "Vehicle":
            missing.discard("leasingInfo")
        assert not missing, (name, missing)


# -- Saga City open data through the connector ------------------------------------------------


def test_every_saga_emergency_site_validates() -> None:
    sites = saga_opendata.emergency_sites(key_values=True)
    assert len(sites) == 113
    assert len({s["id"] for s in sites}) == 113
    for site in sites:
        assert validator("EvacuationSite").validate(site) == [], site["id"]


def test_every_saga_shelter_validates() -> None:
    shelters = saga_opendata.shelters(key_values=True)
    assert len(shelters) == 112
    assert len({s["id"] for s in shelters}) == 112
    for shelter in shelters:
        assert validator("EvacuationShelter").validate(shelter) == [], shelter["id"]


def test_connector_entity_shape() -> None:
    site = saga_opendata.emergency_sites(key_values=True)[0]
    assert site["id"] == "urn:ngsi-ld:EvacuationSite:E4120100001201"
    assert site["location"] == {"type": "Point", "coordinates": [130.257802, 33.240969]}
    assert site["address"]["addressRegion"] == "佐賀県"
    assert site["address"]["addressLocality"] == "佐賀市"
    assert site["address"]["streetAddress"] == "嘉瀬町十五12-1"
    assert (site["hazardFlood"], site["hazardTsunami"]) == (True, False)
    assert "国土地理院" in site["source"]


def test_connector_normalized_form() -> None:
    shelter = saga_opendata.shelters()[0]
    assert shelter["id"] == "urn:ngsi-ld:EvacuationShelter:E4120100001111"
    assert shelter["location"]["type"] == "GeoProperty"
    assert shelter["name"] == {"type": "Property", "value": "嘉瀬小学校"}
    context, core = shelter["@context"]
    assert context == models()["EvacuationShelter"].context["@context"]
    assert core == saga_opendata.CORE_CONTEXT
    by_url = saga_opendata.shelters(context="https://city-os.jp/ctx/EvacuationShelter.jsonld")
    assert by_url[0]["@context"][0] == "https://city-os.jp/ctx/EvacuationShelter.jsonld"


def test_connector_attributes_are_context_terms() -> None:
    for type_name, entities in [
        ("EvacuationSite", saga_opendata.emergency_sites(key_values=True)),
        ("EvacuationShelter", saga_opendata.shelters(key_values=True)),
    ]:
        terms = set(models()[type_name].context["@context"]) | core_terms()
        for entity in entities:
            assert set(entity) <= terms


def test_connector_rejects_a_bad_flag() -> None:
    with saga_opendata.EMERGENCY_SITES_CSV.open(encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    row["洪水"] = "○"
    with pytest.raises(ValueError, match="洪水"):
        saga_opendata.emergency_site(row)


# -- crafted invalid documents ------------------------------------------------------------------


def first_example(type_name: str) -> dict[str, Any]:
    return copy.deepcopy(models()[type_name].examples["example.json"])


def mutated(type_name: str, changes: dict[str, Any]) -> dict[str, Any]:
    doc = first_example(type_name)
    for pointer, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in pointer.split("/")[1:]]
        target: Any = doc
        for part in parents:
            target = target[part]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return doc


INVALID = [
    # Japanese models
    ("EvacuationSite", {"/location/coordinates/0": 200}, [("/location/coordinates/0", "maximum")]),
    ("EvacuationSite", {"/location/coordinates/1": "33.2"}, [("/location/coordinates/1", "type")]),
    ("EvacuationSite", {"/location/coordinates": [130.2]}, [("/location/coordinates", "minItems")]),
    ("EvacuationSite", {"/hazardFlood": "1"}, [("/hazardFlood", "type")]),
    ("EvacuationSite", {"/hazardTsunami": DELETE}, [("/hazardTsunami", "required")]),
    ("EvacuationSite", {"/commonId": "E41201-00001"}, [("/commonId", "pattern")]),
    ("EvacuationSite", {"/address/postalCode": "840"}, [("/address/postalCode", "pattern")]),
    ("EvacuationSite", {"/id": "not a uri"}, [("/id", "format")]),
    (
        "EvacuationSite",
        {"/hazardVolcano": 1, "/location/type": "Polygon", "/name": DELETE},
        [("/hazardVolcano", "type"), ("/location/type", "enum"), ("/name", "required")],
    ),
    ("EvacuationShelter", {"/name": DELETE}, [("/name", "required")]),
    (
        "EvacuationShelter",
        {"/sameAddressAsEmergencySite": "yes"},
        [("/sameAddressAsEmergencySite", "type")],
    ),
    ("EvacuationShelter", {"/municipalityCode": "41201"}, [("/municipalityCode", "pattern")]),
    ("EvacuationShelter", {"/url": "not a uri"}, [("/url", "format")]),
    ("AED", {"/installationLocation": DELETE}, [("/installationLocation", "required")]),
    ("AED", {"/startTime": "8:30am"}, [("/startTime", "pattern")]),
    ("AED", {"/email": "aed.example.jp"}, [("/email", "format")]),
    ("ChildcareFacility", {"/facilityType": "daycare"}, [("/facilityType", "enum")]),
    ("ChildcareFacility", {"/capacity": -1}, [("/capacity", "minimum")]),
    ("ChildcareFacility", {"/approvalDate": "2015-13-01"}, [("/approvalDate", "format")]),
    ("ChildcareFacility", {"/acceptedAge/maxYears": 30}, [("/acceptedAge/maxYears", "maximum")]),
    ("DisasterReport", {"/category": "alien-invasion"}, [("/category", "enum")]),
    ("DisasterReport", {"/moderationStatus": "hidden"}, [("/moderationStatus", "enum")]),
    ("DisasterReport", {"/reportedAt": "yesterday"}, [("/reportedAt", "format")]),
    ("DisasterReport", {"/reporter": DELETE}, [("/reporter", "required")]),
    (
        "DisasterReport",
        {"/photos": ["https://a.example/1.jpg", "photo 2"]},
        [("/photos/1", "format")],
    ),
    # derived Smart Data Models
    ("PointOfInterest", {"/name": DELETE}, [("/name", "required")]),
    ("PointOfInterest", {"/location/coordinates/0": "x"}, [("/location/coordinates/0", "type")]),
    ("PointOfInterest", {"/dateModified": "yesterday"}, [("/dateModified", "format")]),
    ("Building", {"/category": ["castle"]}, [("/category/0", "enum")]),
    ("Garden", {"/dateLastWatering": "2024-13-01T00:00:00Z"}, [("/dateLastWatering", "format")]),
    ("WeatherObserved", {"/dateObserved": "yesterday"}, [("/dateObserved", "format")]),
    ("WeatherObserved", {"/relativeHumidity": 1.5}, [("/relativeHumidity", "maximum")]),
    ("WeatherObserved", {"/location": DELETE}, [("/location", "required")]),
    ("WaterObserved", {"/dateObserved": DELETE}, [("/dateObserved", "required")]),
    ("FloodMonitoring", {"/id": DELETE}, [("/id", "required")]),
    ("Device", {"/ipAddress": ["999.1.1.1"]}, [("/ipAddress/0", "oneOf")]),
    ("DeviceMeasurement", {"/numValue": "x"}, [("/numValue", "type")]),
    ("Alert", {"/category": "zombies"}, [("/category", "enum")]),
    ("Alert", {"/severity": "extreme"}, [("/severity", "enum")]),
    ("IssueReporting", {"/dateCreated": "bad"}, [("/dateCreated", "format")]),
    ("GtfsStop", {"/name": DELETE}, [("/name", "required")]),
    ("Vehicle", {"/vehicleType": "spaceship"}, [("/vehicleType", "enum")]),
    ("AgriParcel", {"/location/type": "Circle"}, [("/location/type", "enum")]),
]


@pytest.mark.parametrize(("type_name", "changes", "expected"), INVALID)
def test_invalid_document_rejected_at_pointer(
    type_name: str, changes: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    violations = validator(type_name).validate(mutated(type_name, changes))
    assert [(v.pointer, v.keyword) for v in violations] == expected
    assert all(v.message for v in violations)
