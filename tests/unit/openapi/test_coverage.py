"""docs/api-routes.md lists every route with how completely the document describes it, and is
regenerated (``python -m city_os.openapi.coverage > docs/api-routes.md``) when routes change."""

from __future__ import annotations

from pathlib import Path

from city_os.app import create_app
from city_os.config import Settings
from city_os.openapi.coverage import HEADER, rows, table
from city_os.openapi.document import build, routes_of

ROUTES_MD = Path(__file__).resolve().parents[3] / "docs" / "api-routes.md"


def test_the_routes_table_is_current() -> None:
    app = create_app(Settings())
    document = build(app)
    assert len(rows(document)) == len(routes_of(app))
    expected = HEADER + table(document)
    assert ROUTES_MD.read_text() == expected, (
        "docs/api-routes.md is stale: python -m city_os.openapi.coverage > docs/api-routes.md"
    )


def test_kinds_follow_the_schemas() -> None:
    document = build(create_app(Settings()))
    by_id = {r[2]: r for r in rows(document)}
    assert by_id["createEntity"][3:] == ("full", "201 none")
    assert by_id["queryEntity"][3:] == ("none", "200 loose")  # options reshape entities
    assert by_id["retrieveEntityTypeInfo"][4] == "200 full"
    assert by_id["batchEntityUpsert"][4] == "201 full, 204 none, 207 full"
