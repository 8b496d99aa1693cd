"""The OpenAPI document covers exactly the routes of the app, and is a valid OpenAPI 3.1 document.

A route added without a declaration fails ``test_every_route_is_declared`` with its method, path
and handler; a declaration whose route was removed or renamed fails ``test_no_declaration_...``.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from city_os.app import create_app
from city_os.openapi.declare import Paths, no_content
from city_os.openapi.document import build, check_routes, declared, routes_of
from city_os.openapi.registry import TABLES
from tests.conftest import test_settings as settings_for_tests


@pytest.fixture(scope="module")
def app() -> web.Application:
    return create_app(settings_for_tests())


@pytest.fixture(scope="module")
def document(app: web.Application) -> dict[str, Any]:
    return build(app)


def test_every_route_is_declared(app: web.Application) -> None:
    check = check_routes(app)
    assert not check.undeclared, "\n" + check.report()


def test_no_declaration_without_a_route(app: web.Application) -> None:
    check = check_routes(app)
    assert not check.unrouted, "\n" + check.report()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises with the JSON path of the first error


def test_every_route_is_in_the_document(app: web.Application, document: dict[str, Any]) -> None:
    routes = routes_of(app)
    assert len(routes) >= 70
    for method, path, _ in routes:
        assert method.lower() in document["paths"][path], (method, path)
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert len(operations) == len(routes)
    assert not [op for op in operations if op.get("x-cityos-undocumented")]


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for target in set(refs(document)):
        section, kind, name = target.removeprefix("#/").split("/", 2)
        assert name in document[section][kind], target


def test_errors_are_problem_details(document: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    assert document["components"]["responses"]["4XX"]["content"]["application/json"] == {
        "schema": problem
    }
    for item in document["paths"].values():
        for op in item.values():
            assert "4XX" in op["responses"], op["operationId"]


def test_ngsild_headers_and_extensions_are_described(document: dict[str, Any]) -> None:
    query = document["paths"]["/ngsi-ld/v1/entities"]["get"]
    names = {p["$ref"].rsplit("/", 1)[-1] for p in query["parameters"]}
    assert {"Link", "NGSILD-Tenant", "q", "georel", "limit", "count"} <= names
    assert set(query["responses"]["200"]["headers"]) == {"NGSILD-Results-Count", "Link"}
    assert set(query["responses"]["200"]["content"]) == {
        "application/json",
        "application/ld+json",
        "application/geo+json",
    }
    register = document["paths"]["/cityos/v1/schemas"]["post"]
    assert register["x-cityos-extension"] is True
    assert "x-cityos-extension" not in query
    for name in ("Entity", "Property", "Relationship", "GeoProperty", "LanguageProperty",
                 "Subscription", "Query", "BatchOperationResult", "ProblemDetails"):  # fmt: skip
        assert name in document["components"]["schemas"], name


def test_a_missing_route_and_a_stale_declaration_are_named() -> None:
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/ngsi-ld/v1/temporal/entities{_slash:/?}", handler)
    stale = Paths("Gone")
    stale.delete("/gone/{id}", "gone", "removed long ago", replies=(no_content(),))
    check = check_routes(app, (stale,))
    assert check.undeclared == [f"GET /ngsi-ld/v1/temporal/entities ({__name__}.handler)"]
    assert check.unrouted == ["DELETE /gone/{id} (gone)"]
    assert "GET /ngsi-ld/v1/temporal/entities" in check.report()
    # The undeclared route is still in the document, flagged.
    doc = build(app, (stale,))
    op = doc["paths"]["/ngsi-ld/v1/temporal/entities"]["get"]
    assert op["x-cityos-undocumented"] is True


def test_a_route_declared_twice_is_refused() -> None:
    a, b = Paths("A"), Paths("B")
    a.get("/x", "x1", "x")
    b.get("/x", "x2", "x")
    with pytest.raises(ValueError, match="GET /x is declared twice"):
        declared((a, b))


def test_a_broken_declaration_fails_the_validator(app: web.Application) -> None:
    broken = Paths("Broken")
    broken.get("/health", "health", "bad reply", replies=(no_content(),))
    doc = build(app, (*TABLES[:-1], broken))
    doc["paths"]["/health"]["get"]["responses"]["204"] = {"content": {}}  # no description
    with pytest.raises(OpenAPIValidationError):
        validate(doc)
