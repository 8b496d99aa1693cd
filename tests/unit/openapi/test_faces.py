"""The rooms' declarations: the NGSIv2 face answers Orion errors, the temporal routes carry
the ETSI operation ids and data types, and a room cannot silently replace a component."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.app import create_app
from city_os.openapi.components import register
from city_os.openapi.document import build
from tests.conftest import test_settings as settings_for_tests

V2_PREFIXES = ("/v2", "/version", "/statistics")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build(create_app(settings_for_tests()))


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_the_v2_face_answers_orion_errors(document: dict[str, Any]) -> None:
    v2 = [(p, op) for p, _, op in _operations(document) if p.startswith(V2_PREFIXES)]
    assert len(v2) >= 25
    for path, op in v2:
        errors = {k: v for k, v in op["responses"].items() if k[0] in "45"}
        assert errors, path
        for ref in errors.values():
            name = ref["$ref"].rsplit("/", 1)[-1]
            assert name.startswith("v2."), (path, name)
            body = document["components"]["responses"][name]["content"]["application/json"]
            assert body == {"schema": {"$ref": "#/components/schemas/OrionError"}}
        for p in op["parameters"]:
            assert "NGSILD" not in p["$ref"] and "/Link" not in p["$ref"], (path, p)
    ld = [(p, op) for p, _, op in _operations(document) if p.startswith("/ngsi-ld/")]
    for path, op in ld:
        assert op["responses"]["4XX"] == {"$ref": "#/components/responses/4XX"}, path


def test_temporal_routes_have_etsi_ids_and_temporal_types(document: dict[str, Any]) -> None:
    ids = {
        (p, m): op["operationId"]
        for p, m, op in _operations(document)
        if p.startswith("/ngsi-ld/v1/temporal/")
        and not p.startswith("/ngsi-ld/v1/temporal/entityMaps")  # EntityMaps (§5.14.5)
    }
    assert set(ids.values()) == {
        "queryTemporal", "temporalQueryBatch", "upsertTemporal", "retrieveTemporal",
        "deleteTemporal", "appendAttrsTemporal", "deleteAttrsTemporal", "updateAttrsTemporal",
        "deleteAttrInstanceTemporal",
    }  # fmt: skip
    retrieve = document["paths"]["/ngsi-ld/v1/temporal/entities/{entity_id}"]["get"]
    assert set(retrieve["responses"]) >= {"200", "206", "4XX"}
    assert "Content-Range" in retrieve["responses"]["206"]["headers"]
    names = {p["$ref"].rsplit("/", 1)[-1] for p in retrieve["parameters"]}
    assert {"timerel", "timeAt", "lastN", "aggrMethods", "temporalOptions"} <= names
    schemas = document["components"]["schemas"]
    for name in ("TemporalEntity", "TemporalValues", "AggregatedValues", "TemporalQuery"):
        assert name in schemas, name


def test_a_component_cannot_be_replaced_by_another_room() -> None:
    with pytest.raises(ValueError, match=r"components\.schemas\.Entity is already defined"):
        register(schemas={"Entity": {"type": "string"}})
    with pytest.raises(ValueError, match=r"components\.parameters\.q is already defined"):
        register(parameters={"q": {"name": "q", "in": "header"}})
