"""Discovery of registrations (§5.10.2): by type, id, idPattern, attrs, q and csf on the
registration, geoQ on its location, timerel on its intervals, scopeQ, pages and counts."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.api.keys import POOL, TENANTS
from tests.integration.federation.support import (
    LINK,
    REGS,
    Client,
    create,
    host_context,
    problem,
    registration,
)


@pytest.fixture
async def ctx_url(client: Client, tenant: str) -> str:
    return await host_context(client, tenant)


async def ids(client: Client, tenant: str, ctx_url: str, **params: str) -> list[str]:
    resp = await client.get(
        REGS, params=params, headers={"NGSILD-Tenant": tenant, "Link": LINK.format(ctx_url)}
    )
    assert resp.status == 200, await resp.text()
    return [r["id"] for r in await resp.json()]


def info(entities: list[dict[str, Any]] | None = None, **names: list[str]) -> list[dict[str, Any]]:
    item: dict[str, Any] = dict(names)
    if entities is not None:
        item["entities"] = entities
    return [item]


@pytest.fixture
async def regs(client: Client, tenant: str) -> None:
    await create(
        client,
        tenant,
        registration(
            id="urn:reg:a",
            information=info(
                [{"type": "Shelter", "id": "urn:saga:shelter:1"}], propertyNames=["capacity"]
            ),
            endpoint="http://a.example.org/",
            location={"type": "Point", "coordinates": [130.30, 33.26]},
            scope="/Saga/Flood",
            sourceType="sensor",
            observationInterval={
                "startAt": "2020-01-01T00:00:00Z",
                "endAt": "2099-01-01T00:00:00Z",
            },
        ),
    )
    await create(
        client,
        tenant,
        registration(
            id="urn:reg:b",
            information=info(
                [{"type": "Shelter", "idPattern": "^urn:ogi:"}], relationshipNames=["owner"]
            ),
            endpoint="http://b.example.org/",
            location={"type": "Point", "coordinates": [130.20, 33.27]},
            scope="/Ogi",
            sourceType="model",
            managementInterval={"startAt": "2026-01-01T00:00:00Z"},
        ),
    )
    await create(
        client,
        tenant,
        registration(
            id="urn:reg:c",
            information=info([{"type": "Vehicle"}]),
            endpoint="http://c.example.org/",
        ),
    )
    await create(
        client, tenant, registration(id="urn:reg:d", information=info(propertyNames=["speed"]))
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "Shelter"}, ["urn:reg:a", "urn:reg:b", "urn:reg:d"]),  # d: any entity
        ({"type": "Vehicle"}, ["urn:reg:c", "urn:reg:d"]),
        ({"type": "Shelter,Vehicle"}, ["urn:reg:a", "urn:reg:b", "urn:reg:c", "urn:reg:d"]),
        ({"type": "Shelter", "attrs": "capacity"}, ["urn:reg:a"]),
        ({"attrs": "owner"}, ["urn:reg:b", "urn:reg:c"]),  # c names no attributes: all
        ({"attrs": "speed"}, ["urn:reg:c", "urn:reg:d"]),
        ({"id": "urn:saga:shelter:1"}, ["urn:reg:a", "urn:reg:c", "urn:reg:d"]),
        ({"id": "urn:ogi:shelter:9", "type": "Shelter"}, ["urn:reg:b", "urn:reg:d"]),
        ({"type": "Shelter", "idPattern": "^urn:saga"}, ["urn:reg:a", "urn:reg:b", "urn:reg:d"]),
        ({"type": "Shelter", "idPattern": "^urn:kanzaki"}, ["urn:reg:b", "urn:reg:d"]),
        ({"type": "Shelter", "q": 'sourceType=="sensor"'}, ["urn:reg:a"]),
        ({"type": "Shelter", "csf": 'endpoint=="http://b.example.org/"'}, ["urn:reg:b"]),
        ({"type": "Shelter", "scopeQ": "/Saga/#"}, ["urn:reg:a"]),
        (
            {"type": "Shelter", "georel": "near;maxDistance==2000", "geometry": "Point",
             "coordinates": "[130.301,33.261]"},
            ["urn:reg:a"],
        ),
        (
            {"type": "Shelter", "georel": "within", "geometry": "Polygon",
             "coordinates": "[[[130.1,33.2],[130.3,33.2],[130.2,33.4],[130.1,33.2]]]"},
            ["urn:reg:b"],
        ),
        ({"type": "Shelter", "timerel": "before", "timeAt": "2021-01-01T00:00:00Z"}, ["urn:reg:a"]),
        (
            {"type": "Shelter", "timerel": "after", "timeAt": "2027-01-01T00:00:00Z",
             "timeproperty": "modifiedAt"},
            ["urn:reg:b"],
        ),
        (
            {"type": "Shelter", "timerel": "between", "timeAt": "2019-01-01T00:00:00Z",
             "endTimeAt": "2019-06-01T00:00:00Z"},
            [],
        ),
    ],
)  # fmt: skip
async def test_query_selects(
    client: Client,
    tenant: str,
    ctx_url: str,
    regs: None,
    params: dict[str, str],
    expected: list[str],
) -> None:
    assert await ids(client, tenant, ctx_url, **params) == expected


async def test_historical_sources_only_with_a_temporal_query(
    client: Client, tenant: str, ctx_url: str
) -> None:
    past = {"startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"}
    await create(client, tenant, registration(id="urn:reg:old", observationInterval=past))
    await create(client, tenant, registration(id="urn:reg:now"))
    assert await ids(client, tenant, ctx_url, type="Shelter") == ["urn:reg:now"]
    found = await ids(
        client, tenant, ctx_url, type="Shelter", timerel="before", timeAt="2020-06-01T00:00:00Z"
    )
    assert found == ["urn:reg:old"]


async def test_pages_count_and_links(client: Client, tenant: str, ctx_url: str) -> None:
    for n in range(5):
        await create(client, tenant, registration(id=f"urn:reg:{n}"))
    headers = {"NGSILD-Tenant": tenant, "Link": LINK.format(ctx_url)}
    resp = await client.get(
        REGS,
        params={"type": "Shelter", "limit": "2", "offset": "2", "count": "true"},
        headers=headers,
    )
    assert resp.status == 200
    assert [r["id"] for r in await resp.json()] == ["urn:reg:2", "urn:reg:3"]
    assert resp.headers["NGSILD-Results-Count"] == "5"
    links = [link for link in resp.headers.getall("Link") if "json-ld#context" not in link]
    typed = 'type="application/ld+json"'
    assert links == [
        f'<{REGS}?type=Shelter&count=true&limit=2&offset=0>; rel="prev"; {typed}',
        f'<{REGS}?type=Shelter&count=true&limit=2&offset=4>; rel="next"; {typed}',
    ]
    resp = await client.get(
        REGS, params={"type": "Shelter", "limit": "0", "count": "true"}, headers=headers
    )
    assert await resp.json() == [] and resp.headers["NGSILD-Results-Count"] == "5"


async def test_expired_registrations_are_not_found(
    client: Client, tenant: str, ctx_url: str
) -> None:
    # written straight into the store: the API refuses an expiresAt in the past
    rid = await create(client, tenant, registration(id="urn:reg:soon"))
    schema = await client.app[TENANTS].schema(tenant, create=False)
    async with client.app[POOL].acquire() as conn:
        await conn.execute(
            f"UPDATE {schema}.csource_registrations SET doc = doc || "
            """'{"expiresAt": "2020-01-01T00:00:00Z"}'::jsonb WHERE id = $1""",
            rid,
        )
    assert await ids(client, tenant, ctx_url, type="Shelter") == []


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({}, "BadRequestData"),
        ({"id": "invalidUri"}, "BadRequestData"),
        ({"type": "Shelter", "q": "(invalidQuery"}, "BadRequestData"),
        ({"type": "Shelter", "csf": "a=="}, "BadRequestData"),
        ({"type": "Shelter", "georel": "within"}, "BadRequestData"),
        ({"type": "Shelter", "timerel": "before"}, "BadRequestData"),
        (
            {"type": "Shelter", "timerel": "during", "timeAt": "2020-01-01T00:00:00Z"},
            "BadRequestData",
        ),
        (
            {
                "type": "Shelter",
                "timeproperty": "bornAt",
                "timerel": "before",
                "timeAt": "2020-01-01T00:00:00Z",
            },
            "BadRequestData",
        ),
        ({"type": "Shelter", "scopeQ": "no-slash"}, "BadRequestData"),
        ({"type": "Shelter", "idPattern": "(?=x)"}, "BadRequestData"),
        ({"type": "Shelter", "limit": "-1"}, "BadRequestData"),
        ({"type": "Shelter", "options": "keyValues"}, "InvalidRequest"),
        ({"type": "Shelter", "colour": "red"}, "InvalidRequest"),
    ],
)
async def test_bad_queries(
    client: Client, tenant: str, regs: None, params: dict[str, str], kind: str
) -> None:
    resp = await client.get(REGS, params=params, headers={"NGSILD-Tenant": tenant})
    await problem(resp, 400, kind)
