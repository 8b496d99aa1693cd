"""Query entities (§5.7.2, §6.4.3.2, §6.23) over HTTP, on the Saga City designated shelters.

The 112 shelters of the open-data CSV are loaded once into their own tenant; expectations for
georel and paging are computed in Python from the same CSV, so they are independent of SQL.
"""

from __future__ import annotations

import csv
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
CSV = Path(__file__).parents[3] / "connectors/data/412015_saga-city_designated-shelters_gsi.csv"
CTX = {"ex": "https://example.org/ns#", "Shelter": "ex:Shelter", "School": "ex:School"}
KASE_SCHOOL = (130.257802, 33.240969)  # 嘉瀬小学校

Client = TestClient  # type: ignore[type-arg]


def _rows() -> list[dict[str, Any]]:
    with CSV.open(encoding="utf-8-sig") as f:
        return [
            {"no": int(r["NO"]), "name": r["施設・場所名"], "lat": float(r["緯度"]),
             "lon": float(r["経度"])}
            for r in csv.DictReader(f)
        ]  # fmt: skip


ROWS = _rows()


def _entity(row: dict[str, Any]) -> dict[str, Any]:
    school = row["name"].endswith("学校")
    return {
        "id": f"urn:ngsi-ld:Shelter:{row['no']}",
        "type": ["Shelter", "School"] if school else "Shelter",
        "name": {"type": "Property", "value": row["name"]},
        "number": {"type": "Property", "value": row["no"]},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        },
        "@context": CTX,
    }


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
async def saga(client: Client) -> AsyncIterator[str]:
    tenant = "test-saga-" + uuid.uuid4().hex[:8]
    resp = await client.post(
        f"{API}/entityOperations/create",
        json=[_entity(r) for r in ROWS],
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    assert resp.status == 201, await resp.text()
    yield tenant


def hdr(tenant: str, **extra: str) -> dict[str, str]:
    link = f'<{CTX_URL}>; rel="http://www.w3.org/ns/json-ld#context"'
    return {"NGSILD-Tenant": tenant, **({"Link": link} if CTX_URL else {}), **extra}


CTX_URL = ""  # inline contexts are used through POST; GET uses full IRIs or the core context


async def query(client: Client, tenant: str, params: str, **headers: str) -> Any:
    resp = await client.get(f"{API}/entities?{params}", headers=hdr(tenant, **headers))
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def post_query(client: Client, tenant: str, body: dict[str, Any], params: str = "") -> Any:
    resp = await client.post(
        f"{API}/entityOperations/query?{params}",
        json={"type": "Query", "@context": CTX, **body},
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


def ids(body: list[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in body}


SHELTER = quote("https://example.org/ns#Shelter", safe="")
SCHOOL = quote("https://example.org/ns#School", safe="")
NUMBER = "https://example.org/ns#number"  # not in the core context: expands via @vocab? no


async def test_pagination_returns_every_entity_once(client: Client, saga: str) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        resp = await client.get(
            f"{API}/entities?type={SHELTER}&limit=25&offset={offset}&count=true",
            headers={"NGSILD-Tenant": saga},
        )
        assert resp.status == 200
        assert resp.headers["NGSILD-Results-Count"] == str(len(ROWS))
        page = await resp.json()
        seen.extend(e["id"] for e in page)
        links = resp.headers.getall("Link")
        has_next = any('rel="next"' in link for link in links)
        assert any('rel="prev"' in link for link in links) == (offset > 0)
        if not has_next:
            break
        offset += 25
    assert len(seen) == len(set(seen)) == len(ROWS)
    assert seen == sorted(seen)


async def test_limit_zero_with_count_gives_only_the_count(client: Client, saga: str) -> None:
    resp = await client.get(
        f"{API}/entities?type={SHELTER}&limit=0&count=true", headers={"NGSILD-Tenant": saga}
    )
    assert resp.status == 200
    assert await resp.json() == []
    assert resp.headers["NGSILD-Results-Count"] == str(len(ROWS))


async def test_type_or_and_and(client: Client, saga: str) -> None:
    schools = {f"urn:ngsi-ld:Shelter:{r['no']}" for r in ROWS if r["name"].endswith("学校")}
    assert schools
    body = await post_query(client, saga, {"entities": [{"type": "(Shelter;School)"}]}, "limit=200")
    assert ids(body) == schools
    body = await post_query(client, saga, {"entities": [{"type": "School"}]}, "limit=200")
    assert ids(body) == schools


async def test_near_max_distance(client: Client, saga: str) -> None:
    expected = {
        f"urn:ngsi-ld:Shelter:{r['no']}"
        for r in ROWS
        if _metres(KASE_SCHOOL, (r["lon"], r["lat"])) <= 1500
    }
    assert 1 < len(expected) < len(ROWS)
    coords = quote(f"[{KASE_SCHOOL[0]},{KASE_SCHOOL[1]}]")
    body = await query(
        client,
        saga,
        f"type={SHELTER}&georel=near;maxDistance==1500&geometry=Point&coordinates={coords}"
        "&limit=200",
    )
    assert ids(body) == expected


async def test_near_pages_in_id_order_see_every_match_once(client: Client, saga: str) -> None:
    """Geo pages start from the matching geometries (QueryRepository._geo_page); paging
    through them must still give every match once, in id order, with the right count."""
    expected = sorted(
        f"urn:ngsi-ld:Shelter:{r['no']}"
        for r in ROWS
        if _metres(KASE_SCHOOL, (r["lon"], r["lat"])) <= 4000
    )
    assert len(expected) > 6
    coords = quote(f"[{KASE_SCHOOL[0]},{KASE_SCHOOL[1]}]")
    seen: list[str] = []
    for offset in range(0, len(expected) + 3, 3):
        resp = await client.get(
            f"{API}/entities?type={SHELTER}&georel=near;maxDistance==4000&geometry=Point"
            f"&coordinates={coords}&limit=3&offset={offset}&count=true",
            headers={"NGSILD-Tenant": saga},
        )
        assert resp.status == 200
        assert resp.headers["NGSILD-Results-Count"] == str(len(expected))
        seen.extend(e["id"] for e in await resp.json())
    assert seen == expected


async def test_within_polygon_and_disjoint(client: Client, saga: str) -> None:
    box = (130.25, 33.23, 130.30, 33.27)
    inside = {
        f"urn:ngsi-ld:Shelter:{r['no']}"
        for r in ROWS
        if box[0] < r["lon"] < box[2] and box[1] < r["lat"] < box[3]
    }
    assert inside
    ring = [
        [box[0], box[1]],
        [box[2], box[1]],
        [box[2], box[3]],
        [box[0], box[3]],
        [box[0], box[1]],
    ]
    geo = {"georel": "within", "geometry": "Polygon", "coordinates": [ring]}
    body = await post_query(
        client, saga, {"entities": [{"type": "Shelter"}], "geoQ": geo}, "limit=200"
    )
    assert ids(body) == inside
    geo["georel"] = "disjoint"
    body = await post_query(
        client, saga, {"entities": [{"type": "Shelter"}], "geoQ": geo}, "limit=200"
    )
    assert len(ids(body)) == len(ROWS) - len(inside)


@pytest.mark.parametrize(
    ("q", "predicate"),
    [
        ("number==73789", lambda r: r["no"] == 73789),
        ("number!=73789", lambda r: r["no"] != 73789),
        ("number>73850", lambda r: r["no"] > 73850),
        ("number>=73850;number<73860", lambda r: 73850 <= r["no"] < 73860),
        ("number==73789..73795", lambda r: 73789 <= r["no"] <= 73795),
        ("number==73789,73800", lambda r: r["no"] in (73789, 73800)),
        ("number<73790|number>73900", lambda r: r["no"] < 73790 or r["no"] > 73900),
        ('name=="嘉瀬小学校"', lambda r: r["name"] == "嘉瀬小学校"),
        ('name~=".*公民館"', lambda r: r["name"].endswith("公民館")),
        ("number", lambda r: True),
        ("!number", lambda r: False),
    ],
)
async def test_q_operators(client: Client, saga: str, q: str, predicate: Any) -> None:
    expected = {f"urn:ngsi-ld:Shelter:{r['no']}" for r in ROWS if predicate(r)}
    body = await post_query(client, saga, {"entities": [{"type": "Shelter"}], "q": q}, "limit=200")
    assert ids(body) == expected


async def test_id_and_id_pattern(client: Client, saga: str) -> None:
    wanted = "urn:ngsi-ld:Shelter:73789,urn:ngsi-ld:Shelter:73790"
    body = await query(client, saga, f"type={SHELTER}&id={wanted}")
    assert ids(body) == set(wanted.split(","))
    body = await query(
        client, saga, f"type={SHELTER}&idPattern=" + quote("^urn:ngsi-ld:Shelter:7379[0-4]$")
    )
    assert ids(body) == {f"urn:ngsi-ld:Shelter:{n}" for n in range(73790, 73795)}


async def test_output_options(client: Client, saga: str) -> None:
    body = await post_query(
        client,
        saga,
        {
            "entities": [{"type": "Shelter", "id": "urn:ngsi-ld:Shelter:73789"}],
            "pick": ["id", "name"],
        },
        "options=keyValues",
    )
    assert body == [{"id": "urn:ngsi-ld:Shelter:73789", "name": "嘉瀬小学校"}]
    resp = await client.get(
        f"{API}/entities?type={SHELTER}&id=urn:ngsi-ld:Shelter:73789",
        headers={"NGSILD-Tenant": saga, "Accept": "application/geo+json"},
    )
    assert resp.status == 200
    assert resp.content_type == "application/geo+json"
    collection = await resp.json(content_type=None)
    assert collection["type"] == "FeatureCollection"
    assert collection["features"][0]["geometry"]["coordinates"] == list(KASE_SCHOOL)


async def test_scope_query(client: Client, tenant: str) -> None:
    for n, scope in enumerate(["/Saga/Kase", "/Saga/Kubo", "/Fukuoka"]):
        resp = await client.post(
            f"{API}/entities",
            json={"id": f"urn:ngsi-ld:Shelter:s{n}", "type": "Shelter", "scope": scope},
            headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"},
        )
        assert resp.status == 201
    body = await query(client, tenant, "type=Shelter&scopeQ=/Saga/%23")
    assert ids(body) == {"urn:ngsi-ld:Shelter:s0", "urn:ngsi-ld:Shelter:s1"}
    body = await query(client, tenant, "type=Shelter&scopeQ=/%2B/Kase,/Fukuoka")
    assert ids(body) == {"urn:ngsi-ld:Shelter:s0", "urn:ngsi-ld:Shelter:s2"}


async def test_unknown_tenant_is_404(client: Client) -> None:
    resp = await client.get(
        f"{API}/entities?type=Shelter", headers={"NGSILD-Tenant": "nope-" + uuid.uuid4().hex[:8]}
    )
    body = await resp.json()
    assert resp.status == 404 and body["type"] == ERR + "NonexistentTenant"


@pytest.mark.parametrize(
    "params",
    [
        "id=urn:ngsi-ld:Shelter:1",  # no type/attrs/q/geoQ
        "type=Shelter&q=number%3D%3D",  # q syntax
        "type=Shelter&idPattern=" + quote("(unclosed"),
        "type=Shelter&georel=near;maxDistance==0&geometry=Point&coordinates=[130,33]",
        "type=Shelter&georel=within&geometry=Point",
        "type=Shelter&scopeQ=nope",
        "type=Shelter&limit=100000",
        "type=Shelter&limit=-1",
        "type=Shelter&limit=0",
        "type=Shelter&id=not-a-uri",
        "attrs=id,type",
        "type=*&local=false",
        "type=Shelter&count=maybe",
    ],
)
async def test_bad_input_is_400(client: Client, saga: str, params: str) -> None:
    resp = await client.get(f"{API}/entities?{params}", headers={"NGSILD-Tenant": saga})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["type"] == ERR + "BadRequestData"
    assert body["title"] and body["detail"]


async def test_invalid_regex_in_q_is_400(client: Client, saga: str) -> None:
    resp = await client.get(
        f"{API}/entities?type=Shelter&q=" + quote('name~="(["'), headers={"NGSILD-Tenant": saga}
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert body["type"] == ERR + "BadRequestData"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Subscription", "entities": [{"type": "Shelter"}]},
        {"type": "Query", "entities": []},
        {"type": "Query", "entities": [{"id": "urn:ngsi-ld:Shelter:1"}]},
        {"type": "Query", "entities": [{"type": "Shelter", "id": "not a uri"}]},
        {"type": "Query", "attrs": []},
        {"type": "Query", "q": 5},
        {"type": "Query", "entities": [{"type": "Shelter"}], "joinLevel": 0},
        {"type": "Query", "entities": [{"type": "Shelter"}], "temporalQ": {}},
    ],
)
async def test_bad_query_body_is_400(client: Client, saga: str, body: dict[str, Any]) -> None:
    resp = await client.post(
        f"{API}/entityOperations/query",
        json=body,
        headers={"NGSILD-Tenant": saga, "Content-Type": "application/json"},
    )
    problem = await resp.json()
    assert resp.status == 400, problem
    assert problem["type"] == ERR + "BadRequestData"


async def test_transient_entities_past_expiry_are_not_found(client: Client, tenant: str) -> None:
    resp = await client.post(
        f"{API}/entities",
        json={
            "id": "urn:ngsi-ld:Shelter:t",
            "type": "Shelter",
            "expiresAt": "2000-01-01T00:00:00Z",
        },
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"},
    )
    if resp.status != 201:
        pytest.skip("the broker refuses past expiresAt on create")
    assert await query(client, tenant, "type=Shelter") == []


async def test_order_by_attribute_then_id(client: Client, saga: str) -> None:
    body = await query(client, saga, f"type={SHELTER}&limit=200&orderBy=number;desc")
    numbers = [e["number"]["value"] for e in body]
    assert numbers == sorted((r["no"] for r in ROWS), reverse=True)
    bad = await client.get(
        f"{API}/entities?type={SHELTER}&orderBy=number;sideways", headers={"NGSILD-Tenant": saga}
    )
    assert bad.status == 400


async def test_order_by_date_time_is_by_instant(client: Client, tenant: str) -> None:
    """DateTime values sort by the instant they name, whatever their UTC offset."""
    opened = {
        "a": "2024-06-01T01:00:00Z",
        "b": "2024-06-01T09:30:00+09:00",  # 00:30Z: first
        "c": "2024-06-01T00:45:00.5Z",
    }
    for name, when in opened.items():
        resp = await client.post(
            f"{API}/entities",
            json={
                "id": f"urn:ngsi-ld:Gauge:{name}",
                "type": "Gauge",
                "openedAt": {"type": "Property", "value": {"@type": "DateTime", "@value": when}},
            },
            headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"},
        )
        assert resp.status == 201, await resp.text()
    body = await query(client, tenant, "type=Gauge&orderBy=openedAt")
    assert [e["id"][-1] for e in body] == ["b", "c", "a"]
    body = await query(client, tenant, "type=Gauge&orderBy=openedAt;desc")
    assert [e["id"][-1] for e in body] == ["a", "c", "b"]
